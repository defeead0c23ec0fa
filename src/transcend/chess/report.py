"""The chess run's self-contained HTML page: verdicts, ratings by temperature, plots, ladder, config.

``write_chess_report(run_dir)`` reads ``metrics.json`` and the two plots that
``chess.pipeline`` writes into the run folder and puts them on one page
(``report.html``, written atomically), with the PNGs embedded as base64 so the page
has no outside references. Names that come from the run (players, paths) are escaped.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from transcend.errors import TranscendError
from transcend.report.html import PAGE_STYLE, REPORT, _e, write_page

PLOTS = (("chess_rating_vs_temperature.png", "Glicko-2 rating against sampling temperature, ± 2·RD; dashed: the "
          "best player in the cutoff's data (grey band: its ± 2·RD); dotted: the ideal learner (the exact mixture)"),
         ("chess_favor.png", "Favor: at the model's own positions, the engine's win probability of the model's move "
          "distribution at low τ minus at τ = 1"))


def _r(rating: dict) -> str:
    return f"{rating['rating']:.0f} ± {2 * rating['rd']:.0f}"


def _yes(flag: bool) -> str:
    return "<b>yes</b>" if flag else "no"


def render_chess_report(run_dir: Path, metrics: dict | None = None) -> str:
    """The page for ``run_dir``, from ``metrics`` or the run's ``metrics.json``."""
    path = Path(run_dir) / "metrics.json"
    if metrics is None and not path.is_file():
        raise TranscendError(f"no finished chess run in {run_dir}: run transcend chess reproduce --out {run_dir} "
                             "first.")
    m = metrics if metrics is not None else json.loads(path.read_text())
    taus = sorted({float(t) for e in m["cutoffs"].values() for t in e["by_temperature"]})
    labels = list(m["cutoffs"])
    head = "<th>τ</th>" + "".join(f"<th>model, cutoff {_e(c)}</th>" for c in labels)
    rows = []
    for t in taus:
        cells = []
        for c in labels:
            r = m["cutoffs"][c]["by_temperature"].get(repr(t))
            cells.append(f"<td>{_r(r)} (score {r['score']:.2f})</td>" if r else "<td>–</td>")
        rows.append(f"<tr><td>{t:g}</td>{''.join(cells)}</tr>")
    rows.append("<tr><td><b>best player</b></td>" + "".join(
        f"<td><b>{m['cutoffs'][c]['best_player_rating']:.0f} ± {2 * m['cutoffs'][c]['best_player_rd']:.0f}</b> "
        f"({_e(m['cutoffs'][c]['best_player'])}, {m['cutoffs'][c].get('best_player_games', '?')} games)</td>"
        for c in labels) + "</tr>")
    names = sorted({n for c in labels for n in m["cutoffs"][c].get("players_rerated", {})})
    for n in names:
        rows.append(f"<tr><td>{_e(n)} (re-rated)</td>" + "".join(
            f"<td>{_r(m['cutoffs'][c]['players_rerated'][n])}</td>" if n in m["cutoffs"][c].get("players_rerated", {})
            else "<td>–</td>" for c in labels) + "</tr>")
    ideal_taus = sorted({float(t) for e in m["cutoffs"].values() for t in e["ideal"]})
    for t in ideal_taus:
        rows.append(f"<tr><td>ideal learner τ = {t:g}</td>" + "".join(
            f"<td>{_r(m['cutoffs'][c]['ideal'][repr(t)])}</td>" if repr(t) in m["cutoffs"][c]["ideal"] else "<td>–</td>"
            for c in labels) + "</tr>")
    verdicts = []
    for c in labels:
        e, v = m["cutoffs"][c], m["transcends"][c]
        f, mp = e["favor"], e["move_prediction"]
        low = (f"{_yes(v['transcends_low_tau'])} (τ = {v['low_temperature']:g}: lower bound "
               f"{v['model_low_lower_bound']:.0f} vs {v['best_player_upper_bound']:.0f})"
               if v["low_temperature"] is not None else "– (the low temperature was not rated)")
        verdicts.append(
            f"<tr><td>{_e(c)}</td><td>{len(e['players'])}</td><td>{e['positions']}</td><td>{low}</td>"
            f"<td>{_yes(v['transcends_tau1'])}</td>"
            f"<td>{f['mean']:+.4f} [{f['ci95'][0]:+.4f}, {f['ci95'][1]:+.4f}]</td>"
            f"<td>{mp['top1_vs_plurality']:.3f}</td>"
            f"<td>{mp['cross_entropy_vs_mixture']:.2f} vs {mp['mixture_entropy']:.2f}</td>"
            f"<td>{_gain(v)}</td></tr>")
    ent = m["entropy"]
    ent_text = ", ".join(f"cutoff {_e(k)}: {v['normalised_entropy']:.3f}" for k, v in ent["by_cutoff"].items())
    if "by_band" in ent:
        ent_text += "; each band's own players at the same states: " + ", ".join(
            f"{_e(k)}: {v['normalised_entropy']:.3f}" for k, v in ent["by_band"].items())
    if "visited_by_cutoff" in ent:
        ent_text += ". The paper's way (each cutoff's or band's own states visited at least " + str(
            next(iter(ent["visited_by_cutoff"].values()))["min_visits"]) + " times, counted moves): " + ", ".join(
            f"cutoff {_e(k)}: {v['normalised_entropy']:.3f}" for k, v in ent["visited_by_cutoff"].items()) + "; " + \
            ", ".join(f"{_e(k)}: {v['normalised_entropy']:.3f}" for k, v in ent["visited_by_band"].items())
    ladder = "".join(f"<tr><td>{_e(name)}</td><td>{r['rating']:.0f} ± {2 * r['rd']:.0f}</td></tr>"
                     for name, r in sorted(m["ladder"].items(), key=lambda kv: kv[1]["rating"]))
    population = _population(m.get("population"))
    figs = []
    for name, caption in PLOTS:
        png = Path(run_dir) / name
        if png.is_file():
            b = base64.b64encode(png.read_bytes()).decode("ascii")
            figs.append(f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{b}">'
                        f"<figcaption>{_e(caption)}</figcaption></figure>")
    config = json.dumps(m["config"], indent=2, default=str)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>transcend: chess</title>
<style>
{PAGE_STYLE}
table {{ margin: 1em 0; }}
</style></head><body>
<h1>Chess: does a model trained on weaker players play better than all of them?</h1>
<p>Run folder <code>{_e(m['run_dir'])}</code>; engine {_e(m['engine'])}; {m['seconds'] / 60:.1f} min
in the invocation that finished the run (stages reused from earlier ones not counted).
Ratings are Glicko-2 against a ladder calibrated by a maximum-likelihood round robin, ± 2·RD.</p>
<h2>Verdict by cutoff</h2>
<table><thead><tr><th>cutoff</th><th>players</th><th>training moves</th><th>transcends at low τ
(intervals apart)</th><th>at τ = 1</th><th>favor mean [95% CI]</th><th>held-out top-1 = plurality</th>
<th>H(f̄, model) vs H(f̄), nats</th><th>share of the ideal's gain [95%]</th></tr></thead><tbody>
{''.join(verdicts)}
</tbody></table>
<p>Action entropy of the data over {ent['common_states']} common states: {ent_text}.</p>
{''.join(figs)}
<h2>Rating against temperature</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{''.join(rows)}
</tbody></table>
{population}
<h2>Ladder</h2>
<table><thead><tr><th>entrant</th><th>rating</th></tr></thead><tbody>{ladder}</tbody></table>
<h2>Configuration</h2>
<pre>{_e(config)}</pre>
<p>Query every number: <code>transcend results --sql "SELECT * FROM results WHERE experiment = 'chess'"</code></p>
</body></html>
"""


def _population(pop: dict | None) -> str:
    """The population rule's calibration curve and every player: band, target, weakness, measured rating."""
    if not pop:
        return ""
    probes = "".join(f"<tr><td>{p['weakness']:.2f}</td><td>{p['rating']:.0f} ± {2 * p['rd']:.0f}</td>"
                     f"<td>{fit:.0f}</td></tr>"
                     for p, fit in zip(sorted(pop["probes"].values(), key=lambda p: p["weakness"]),
                                       pop["curve"]["rating"], strict=True))
    players = "".join(f"<tr><td>{_e(name)}</td><td>{_e(p['band'])}</td><td>{p['target']:.0f}"
                      f"{' (clamped)' if p['clamped'] else ''}</td><td>{p['weakness']:.3f}</td>"
                      f"<td>{p['measured']:.0f}</td></tr>" for name, p in pop["players"].items())
    bands = ", ".join(f"{_e(b)} {lo:.0f}–{hi:.0f}" for b, (lo, hi) in pop["bands"].items())
    return f"""<h2>Population (fixed by the rule before any model)</h2>
<p>Floor (calibrated rating of weakness 1) {pop['floor']:.0f}; bands' target ranges: {bands}.</p>
<table><thead><tr><th>probe weakness</th><th>rating ± 2·RD</th><th>isotonic fit</th></tr></thead>
<tbody>{probes}</tbody></table>
<table><thead><tr><th>player</th><th>band</th><th>target</th><th>weakness</th><th>measured rating</th></tr></thead>
<tbody>{players}</tbody></table>"""


def _gain(v: dict) -> str:
    if v.get("gain_recovered") is None:
        return _e(v.get("gain_recovered_note") or "–")
    lo, hi = v["gain_recovered_ci95"]
    return f"{v['gain_recovered']:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def write_chess_report(run_dir: Path, metrics: dict | None = None) -> Path:
    """Write ``run_dir/report.html`` atomically; returns its path."""
    return write_page(Path(run_dir) / REPORT, render_chess_report(Path(run_dir), metrics))
