"""One self-contained HTML page per experiment: figures, the config, the results table.

``write_report(name, root)`` reads ``root/<name>/experiment.json`` (the spec the
runner saved) and every ``results.parquet`` under ``root/<name>/``, averages
each grid point over its seeds (error bars: one standard deviation over seeds;
none with one seed), and draws the experiment's figures with the ideal learner,
the theory and the best expert beside the model. Figures are PNGs embedded as
base64, so the page has no outside references. Every string that came from a
user (experiment fields, entity names in the text sample, paths) is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from transcend.errors import TranscendError  # noqa: E402
from transcend.experiments.runner import SPEC  # noqa: E402
from transcend.results.store import RESULTS, quote_literal, readable_tables  # noqa: E402

REPORT = "report.html"
#: The CSS of every report page (the experiment pages and the chess page).
PAGE_STYLE = """body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
figure { margin: 1.5em 0; } img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ccc; padding: 2px 6px;
text-align: right; } pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }"""
COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]


# --- reading the runs -----------------------------------------------------------------------------------------

class Runs:
    """The finished runs of an experiment: each run's grid parameters and its numbers."""

    def __init__(self, exp_dir: Path, spec: dict):
        self.spec = spec
        self.fields: list[str] = list(dict.fromkeys(
            k for g in (spec["grid"] if isinstance(spec["grid"], list) else [spec["grid"]]) for k in g))
        self.runs: dict[str, dict[str, Any]] = {}
        for path, table in readable_tables(sorted(exp_dir.glob(f"*/{RESULTS}"))):
            for row in table.to_pylist():
                run = self.runs.setdefault(row["run_id"], {"seed": row.get("seed"), "values": {},
                                                           "params": {}, "dir": path.parent.name})
                for f in self.fields:
                    run["params"][f] = row.get(f"cfg.{f}")
                t = row.get("temperature")
                t = None if t is None or (isinstance(t, float) and math.isnan(t)) else float(t)
                k = row.get("k")
                run["values"][(row["metric"], t, None if k is None else int(k))] = row["value"]

    def __len__(self) -> int:
        return len(self.runs)

    def value(self, run: dict, metric: str, temperature: float | None = None, k: int | None = None) -> float:
        return run["values"].get((metric, temperature, k), math.nan)

    def select(self, **where: Any) -> list[dict]:
        """Runs whose grid parameters match ``where`` (dotted fields with '.' as '__')."""
        want = {k.replace("__", "."): v for k, v in where.items()}
        return [r for r in self.runs.values() if all(_same(r["params"].get(k), v) for k, v in want.items())]

    def values_of(self, field: str, runs: list[dict] | None = None) -> list[Any]:
        vals = {r["params"].get(field) for r in (self.runs.values() if runs is None else runs)}
        return sorted((v for v in vals if v is not None), key=lambda v: (isinstance(v, str), v))

    def series(self, x_field: str, metric: str, temperature: float | None = None, k: int | None = None,
               runs: list[dict] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, mean over seeds, standard deviation over seeds (0 with one seed)."""
        groups: dict[Any, list[float]] = defaultdict(list)
        for r in self.runs.values() if runs is None else runs:
            v = self.value(r, metric, temperature, k)
            if not math.isnan(v):
                groups[r["params"].get(x_field)].append(v)
        xs = sorted((x for x in groups if x is not None), key=lambda v: (isinstance(v, str), v))
        mean = np.array([np.mean(groups[x]) for x in xs])
        sd = np.array([np.std(groups[x], ddof=1) if len(groups[x]) > 1 else 0.0 for x in xs])
        return np.array(xs, dtype=object), mean, sd


def _same(a: Any, b: Any) -> bool:
    if a is None and b is None:
        return True
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b))
    return a == b


# --- figures --------------------------------------------------------------------------------------------------

def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _line(ax, runs: Runs, x_field: str, metric: str, *, temperature=None, k=None, subset=None, **style) -> None:
    xs, mean, sd = runs.series(x_field, metric, temperature, k, subset)
    if len(xs) == 0:
        return
    x = np.array([float(v) for v in xs])
    if np.any(sd > 0):
        ax.errorbar(x, mean, yerr=sd, capsize=3, **style)
    else:
        ax.plot(x, mean, **style)


def _finish(ax, xlabel: str, ylabel: str = "exact-match accuracy", title: str = "") -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # beside, not over


def fig_temperature(runs: Runs) -> list[tuple[str, str]]:
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    taus = sorted({t for r in runs.runs.values() for (m, t, _) in r["values"] if m == "model_accuracy"})
    for i, n in enumerate(runs.values_of("experts.experts")):
        sub = runs.select(experts__experts=n)
        c = COLORS[i % len(COLORS)]
        xs, mean, sd = [], [], []
        ideal = []
        for t in taus:
            v = [runs.value(r, "model_accuracy", t) for r in sub]
            xs.append(t), mean.append(np.mean(v)), sd.append(np.std(v, ddof=1) if len(v) > 1 else 0.0)
            ideal.append(np.mean([runs.value(r, "ideal_learner_by_temperature", t) for r in sub]))
        ax.errorbar(xs, mean, yerr=sd if any(sd) else None, color=c, marker="o", capsize=3, label=f"model, {n} experts")
        ax.plot(xs, ideal, color=c, ls=":", lw=1, label=f"ideal learner, {n}")
        best = np.mean([runs.value(r, "best_expert_accuracy") for r in sub])
        ax.axhline(best, color=c, ls="--", lw=0.8, label=f"best expert, {n}")
        ax.plot([0], [np.mean([runs.value(r, "theory_accuracy") for r in sub])], marker="*", ms=12, color=c,
                ls="none", label=f"theory (vote), {n}")
    _finish(ax, "sampling temperature τ (0 = greedy)", title="Accuracy vs temperature")
    return [("Accuracy vs sampling temperature", _png(fig))]


def fig_coverage(runs: Runs) -> list[tuple[str, str]]:
    fig, axes = plt.subplots(2, 1, figsize=(6.4, 8.4), sharex=True)
    for ax, (t, label) in zip(axes, ((0.0, "greedy (τ = 0)"), (1.0, "τ = 1"))):
        ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls="-", label="accuracy = coverage")
        for i, n in enumerate(runs.values_of("experts.experts")):
            sub = runs.select(experts__experts=n)
            c = COLORS[i % len(COLORS)]
            _line(ax, runs, "experts.coverage", "model_accuracy", temperature=t, subset=sub, color=c, marker="o",
                  label=f"model, {n} experts")
            _line(ax, runs, "experts.coverage", "ideal_learner_by_temperature", temperature=t, subset=sub, color=c,
                  ls=":", lw=1, label=f"ideal learner, {n}")
            if t == 0.0:
                _line(ax, runs, "experts.coverage", "theory_accuracy", subset=sub, color=c, ls="none", marker="*",
                      ms=9, label=f"theory (vote), {n}")
            _line(ax, runs, "experts.coverage", "best_expert_accuracy", subset=sub, color=c, ls="--", lw=0.8,
                  label=f"best expert, {n}")
        _finish(ax, "coverage c", title=label)
    return [("Accuracy vs coverage, greedy and τ = 1", _png(fig))]


def fig_selection(runs: Runs) -> list[tuple[str, str]]:
    out = []
    for cov in runs.values_of("experts.coverage"):
        fig, axes = plt.subplots(2, 1, figsize=(6.4, 8.0), sharex=True)
        for ax, (t, label) in zip(axes, ((0.0, "greedy"), (1.0, "τ = 1"))):
            for i, n in enumerate(runs.values_of("experts.experts")):
                sub = runs.select(experts__experts=n, experts__coverage=cov)
                c = COLORS[i % len(COLORS)]
                _line(ax, runs, "experts.alpha", "model_accuracy", temperature=t, subset=sub, color=c, marker="o",
                      label=f"model, {n} experts")
                _line(ax, runs, "experts.alpha", "ideal_learner_by_temperature", temperature=t, subset=sub, color=c,
                      ls=":", lw=1, label=f"ideal learner, {n}")
                _line(ax, runs, "experts.alpha", "theory_accuracy" if t == 0 else "theory_tau1_accuracy", subset=sub,
                      color=c, ls="none", marker="*", ms=9, label=f"theory, {n}")
                _line(ax, runs, "experts.alpha", "ceiling", subset=sub, color=c, ls="-.", lw=0.8,
                      label=f"ceiling 1−(1−c)ⁿ, {n}")
                _line(ax, runs, "experts.alpha", "best_expert_accuracy", subset=sub, color=c, ls="--", lw=0.8,
                      label=f"best expert, {n}")
            _finish(ax, "α (how much experts write about what they know)", title=f"coverage {cov}, {label}")
        out.append((f"Skill selection, coverage {cov}", _png(fig)))
    return out


def fig_generalization(runs: Runs) -> list[tuple[str, str]]:
    out = []
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    size_runs = [r for r in runs.runs.values() if r["params"].get("two_hop.phrasing") in (None, 1)]
    for cot, c in ((False, "tab:blue"), (True, "tab:purple")):
        sub = [r for r in size_runs if bool(r["params"].get("two_hop.cot")) == cot]
        name = "chain of thought" if cot else "latent"
        _line(ax, runs, "two_hop.train", "two_hop.across.model_accuracy", subset=sub, color=c, marker="o",
              label=f"model, across-expertise ({name})")
        _line(ax, runs, "two_hop.train", "two_hop.within.model_accuracy", subset=sub, color=c, marker="s", ls=":",
              label=f"model, within-expertise held out ({name})")
    base = [r for r in size_runs if not r["params"].get("two_hop.cot")]
    for metric, label, c in (("two_hop.across.best_expert_accuracy", "best expert (across)", "black"),
                             ("two_hop.across.majority_relation_baseline", "majority relation", "tab:orange"),
                             ("two_hop.across.direct_connection_baseline", "direct connection", "tab:green")):
        _line(ax, runs, "two_hop.train", metric, subset=base, color=c, ls="--", lw=1, label=label)
    _finish(ax, "within-expertise two-hop facts in training", title="Across-expertise accuracy vs training size")
    out.append(("Skill generalization: size of the two-hop training set", _png(fig)))
    phr = [r for r in runs.runs.values() if r["params"].get("two_hop.phrasing") is not None
           and not r["params"].get("two_hop.cot")]
    if len({r["params"]["two_hop.phrasing"] for r in phr}) > 1:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        _line(ax, runs, "two_hop.phrasing", "two_hop.across.model_accuracy", subset=phr, color="tab:blue",
              marker="o", label="model, across-expertise")
        _line(ax, runs, "two_hop.phrasing", "two_hop.within.model_accuracy", subset=phr, color="tab:blue",
              marker="s", ls=":", label="model, within-expertise held out")
        _line(ax, runs, "two_hop.phrasing", "one_hop_accuracy", subset=phr, color="tab:gray", marker="^",
              label="model, one-hop")
        _line(ax, runs, "two_hop.phrasing", "two_hop.across.majority_relation_baseline", subset=phr,
              color="tab:orange", ls="--", label="majority relation")
        _line(ax, runs, "two_hop.phrasing", "two_hop.across.best_expert_accuracy", subset=phr, color="black",
              ls="--", label="best expert (across)")
        _finish(ax, "phrasing diversity level (one-hop)", title="Across-expertise accuracy vs phrasing")
        out.append(("Skill generalization: phrasing diversity", _png(fig)))
    return out


def fig_correlation(runs: Runs) -> list[tuple[str, str]]:
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    single = runs.select(experts__experts=1)
    many = [n for n in runs.values_of("experts.experts") if n != 1]
    for i, n in enumerate(many):
        sub = [r for r in runs.select(experts__experts=n)]
        for r in sub:  # rho left out means 0
            if r["params"].get("experts.rho") is None:
                r["params"]["experts.rho"] = 0.0
        c = COLORS[i % len(COLORS)]
        _line(ax, runs, "experts.rho", "model_accuracy", temperature=0.0, subset=sub, color=c, marker="o",
              label=f"model greedy, {n} experts")
        _line(ax, runs, "experts.rho", "model_accuracy", temperature=1.0, subset=sub, color=c, marker=".", ls="-.",
              lw=1, label=f"model τ = 1, {n}")
        _line(ax, runs, "experts.rho", "ideal_learner_accuracy", subset=sub, color=c, ls=":", lw=1,
              label=f"ideal learner, {n}")
        _line(ax, runs, "experts.rho", "theory_accuracy", subset=sub, color=c, ls="none", marker="*", ms=10,
              label=f"theory: vote with a shared misconception, {n}")
        _line(ax, runs, "experts.rho", "best_expert_accuracy", subset=sub, color=c, ls="--", lw=0.8,
              label=f"best expert, {n}")
    if single:
        ax.axhline(np.mean([runs.value(r, "model_accuracy", 0.0) for r in single]), color="black", lw=1.2,
                   label="single-expert model (greedy)")
    _finish(ax, "error correlation ρ", title="Transcendence vs correlated errors")
    return [("Correlated experts", _png(fig))]


def fig_vote(runs: Runs) -> list[tuple[str, str]]:
    out = []
    ks = sorted({k for r in runs.runs.values() for (m, _, k) in r["values"] if m == "vote.inference" and k})
    for cov in runs.values_of("experts.coverage"):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for i, n in enumerate(runs.values_of("experts.experts")):
            sub = runs.select(experts__experts=n, experts__coverage=cov)
            c = COLORS[i % len(COLORS)]
            mean = [np.mean([runs.value(r, "vote.inference", 1.0, k) for r in sub]) for k in ks]
            sd = [np.std([runs.value(r, "vote.inference", 1.0, k) for r in sub], ddof=1) if len(sub) > 1 else 0
                  for k in ks]
            ax.errorbar(ks, mean, yerr=sd if any(sd) else None, color=c, marker="o", capsize=3,
                        label=f"inference-time vote of k samples, {n} experts")
            for metric, ls, name in (("vote.training_vote", "-", "training-time vote (greedy)"),
                                     ("vote.experts_vote", "--", "experts' explicit vote"),
                                     ("best_expert_accuracy", ":", "best expert")):
                ax.axhline(np.mean([runs.value(r, metric) for r in sub]), color=c, ls=ls, lw=0.9,
                           label=f"{name}, {n}")
        ax.set_xscale("log", base=2)
        _finish(ax, "k (samples at τ = 1 per question)", title=f"Three votes, coverage {cov}")
        out.append((f"Inference-time vs training-time voting, coverage {cov}", _png(fig)))
    return out


def fig_generic(runs: Runs) -> list[tuple[str, str]]:
    if not runs.fields:
        return []
    x = runs.fields[0]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    _line(ax, runs, x, "model_accuracy", temperature=0.0, color="tab:blue", marker="o", label="model, greedy")
    _line(ax, runs, x, "ideal_learner_accuracy", color="tab:green", ls=":", label="ideal learner")
    _line(ax, runs, x, "best_expert_accuracy", color="black", ls="--", label="best expert")
    _line(ax, runs, x, "theory_accuracy", color="tab:red", ls="none", marker="*", label="theory")
    _finish(ax, x)
    return [(f"Accuracy vs {x}", _png(fig))]


FIGURES: dict[str, Callable[[Runs], list[tuple[str, str]]]] = {
    "temperature": fig_temperature, "coverage": fig_coverage, "selection": fig_selection,
    "generalization": fig_generalization, "correlation": fig_correlation, "vote": fig_vote,
}

# Columns of the results table: (metric, temperature, k, header).
TABLE = [("model_accuracy", 0.0, None, "model greedy"), ("model_accuracy", 1.0, None, "model τ=1"),
         ("ideal_learner_accuracy", None, None, "ideal"), ("best_expert_accuracy", None, None, "best expert"),
         ("theory_accuracy", None, None, "theory"), ("transcendence_gap", None, None, "gap"),
         ("two_hop.across.model_accuracy", None, None, "across (2-hop)"),
         ("two_hop.within.model_accuracy", None, None, "within (2-hop)"),
         ("vote.experts_vote", None, None, "experts' vote")]


# --- the page -------------------------------------------------------------------------------------------------

def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.3f}"
    return "–" if v is None else str(v)


def _sample_text(exp_dir: Path, lines: int = 40) -> str:
    for run_dir in sorted(p for p in exp_dir.iterdir() if (p / "corpus" / "sample.txt").is_file()):
        text = (run_dir / "corpus" / "sample.txt").read_text(encoding="utf-8", errors="replace")
        return "\n".join(line for line in text.splitlines() if line.strip())  # the corpus's own sample
    return ""


def render_report(exp_dir: Path) -> str:
    spec_path = exp_dir / SPEC
    if not spec_path.is_file():
        raise TranscendError(f"no experiment in {exp_dir}: run it first (transcend reproduce NAME).")
    try:
        spec = json.loads(spec_path.read_text())
        spec["name"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TranscendError(f"{spec_path} is damaged ({type(e).__name__}); run the experiment again "
                             "(transcend reproduce NAME) to rewrite it.") from None
    runs = Runs(exp_dir, spec)
    if not len(runs):
        raise TranscendError(f"experiment {spec['name']} in {exp_dir} has no finished runs yet.")
    figures = FIGURES.get(spec["name"], fig_generic)(runs)
    fields = runs.fields
    cols = [c for c in TABLE if any(not math.isnan(runs.value(r, c[0], c[1], c[2])) for r in runs.runs.values())]
    order = sorted(runs.runs.values(), key=lambda r: tuple(str(r["params"].get(f)) for f in fields) + (r["seed"],))
    head = "".join(f"<th>{_e(f)}</th>" for f in fields) + "<th>seed</th>" + "".join(f"<th>{_e(c[3])}</th>"
                                                                                  for c in cols) + "<th>run</th>"
    body = "\n".join(
        "<tr>" + "".join(f"<td>{_e(_fmt(r['params'].get(f)))}</td>" for f in fields) + f"<td>{_e(r['seed'])}</td>"
        + "".join(f"<td>{_e(_fmt(runs.value(r, *c[:3])))}</td>" for c in cols) + f"<td><code>{_e(r['dir'])}</code>"
        "</td></tr>" for r in order)
    expected = len(spec.get("runs", [])) or len(runs)
    figs = "\n".join(f'<figure><img alt="{_e(t)}" src="data:image/png;base64,{b}"><figcaption>{_e(t)}</figcaption>'
                     f"</figure>" for t, b in figures)
    config = json.dumps({k: spec.get(k) for k in ("scale", "base", "grid", "seeds", "study", "study_options")},
                        indent=2, default=str)
    sample = _sample_text(exp_dir)
    sample_html = (f"<h2>A sample of the training text</h2><details><summary>first paragraphs of one run's corpus"
                   f"</summary><pre>{_e(sample)}</pre></details>" if sample else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>transcend: {_e(spec['name'])}</title>
<style>
{PAGE_STYLE}
</style></head><body>
<h1>Experiment: {_e(spec['name'])}</h1>
<p>{_e(spec.get('description', ''))}</p>
<p>{len(runs)} of {expected} runs finished; scale <b>{_e(spec.get('scale'))}</b>; seeds {_e(spec.get('seeds'))}.
Error bars: one standard deviation over seeds (none with one seed). Dotted: the ideal learner (the corpus
mixture); stars: theory; dashed: the best expert.</p>
{figs}
<h2>Results</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
<h2>Configuration</h2>
<pre>{_e(config)}</pre>
{sample_html}
<p>Query every number: <code>transcend results --sql "SELECT * FROM results WHERE experiment = {_e(quote_literal(spec['name']))}"</code></p>
</body></html>
"""


def write_report(name: str, root: Path = Path("runs/experiments"), out: Path | None = None) -> Path:
    """Write ``root/<name>/report.html`` (or ``out``) atomically; returns its path."""
    exp_dir = Path(root) / name
    if not exp_dir.is_dir():
        raise TranscendError(f"no experiment named {name!r} under {root}; run transcend reproduce {name} first.")
    return write_page(Path(out) if out else exp_dir / REPORT, render_report(exp_dir))


def write_page(out: Path, page: str) -> Path:
    """Write an HTML page atomically (temp file, then rename); returns its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out
