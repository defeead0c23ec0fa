"""One HTML page per experiment: figures, the config, the results tables.

``write_report(name, root)`` reads ``root/<name>/experiment.json`` (the spec the
runner saved) and every ``results.parquet`` under ``root/<name>/``, averages
each grid point over its seeds (error bars: 95% t-intervals over seeds; none
with one seed), and draws the experiment's figures with the ideal learner, the
theory, the best expert and the baselines beside the model, one panel per
number of experts. Every figure is written as PDF, SVG and a 300-dpi PNG in
``figures/`` beside ``report.html``; the page embeds the PNGs as base64 (it
reads whole when moved alone) and links the files. Every string that came from
a user (experiment fields, entity names in the text sample, paths) is escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from transcend.errors import TranscendError  # noqa: E402
from transcend.evaluate.stats import seed_interval, transcendent  # noqa: E402
from transcend.report.plot import STYLE, legend_below, save_figure  # noqa: E402
from transcend.experiments.runner import SPEC  # noqa: E402
from transcend.results.store import RESULTS, quote_literal, readable_tables  # noqa: E402

REPORT = "report.html"
#: The CSS of every report page (the experiment pages and the chess page).
PAGE_STYLE = """body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
figure { margin: 1.5em 0; } img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ccc; padding: 2px 6px;
text-align: right; } pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.banner { background: #fff3cd; border: 1px solid #e0c36a; padding: 0.6em 0.9em; }"""


# --- reading the runs -----------------------------------------------------------------------------------------

class Runs:
    """The finished runs of an experiment: each run's grid parameters and its numbers."""

    def __init__(self, exp_dir: Path, spec: dict):
        self.spec = spec
        self.fields: list[str] = list(dict.fromkeys(
            k for g in (spec["grid"] if isinstance(spec["grid"], list) else [spec["grid"]]) for k in g))
        self.runs: dict[str, dict[str, Any]] = {}
        # only the runs of the spec: a folder left from another config or other code is not one of its seeds
        listed = {r["run_id"] for r in spec.get("runs", [])}
        for path, table in readable_tables(sorted(exp_dir.glob(f"*/{RESULTS}"))):
            for row in table.to_pylist():
                if listed and row["run_id"] not in listed:
                    continue
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
#
# Each figure function returns [(title, figure, caption)]; the page saves every figure as PDF, SVG and a
# 300-dpi PNG (report.plot.save_figure) and embeds the PNG. One panel per number of experts keeps each
# legend to the few kinds of answerer (model, ideal learner, theory, best expert) drawn in the same look
# everywhere (report.plot.STYLE); the legend sits below the panels, never over the data.

Figure = tuple[str, Any, str]
SEEDS_CAPTION = "Points: mean over seeds; error bars: 95% t-interval over seeds (none with one seed)."


def _band(values: list[float]) -> tuple[float, float, float]:
    """(mean, lo, hi) over seeds for drawing: the 95% t-interval, or no width where it is undefined (one seed)."""
    iv = seed_interval(values)
    return (iv.mean, iv.lo, iv.hi) if iv.defined else (iv.mean, iv.mean, iv.mean)


def _series(runs: Runs, x_field: str, metric: str, temperature=None, k=None, subset=None):
    """x, mean over seeds, and the 95% t-interval's lower and upper ends."""
    xs, mean, _ = runs.series(x_field, metric, temperature, k, subset)
    groups: dict[Any, list[float]] = defaultdict(list)
    for r in runs.runs.values() if subset is None else subset:
        groups[r["params"].get(x_field)].append(runs.value(r, metric, temperature, k))
    iv = [_band(groups[x]) for x in xs]
    return (np.array([float(x) for x in xs]), np.array([m for m, _, _ in iv]), np.array([lo for _, lo, _ in iv]),
            np.array([hi for _, _, hi in iv]))


def _draw(ax, x, mean, lo, hi, label: str, **style) -> None:
    if len(x) == 0 or np.all(np.isnan(mean)):
        return
    err = np.vstack([mean - lo, hi - mean])
    if np.nansum(err) > 0:
        ax.errorbar(x, mean, yerr=err, capsize=3, label=label, **style)
    else:
        ax.plot(x, mean, label=label, **style)


def _line(ax, runs: Runs, x_field: str, metric: str, *, temperature=None, k=None, subset=None, label: str = "",
          **style) -> None:
    _draw(ax, *_series(runs, x_field, metric, temperature, k, subset), label=label, **style)


def _level(ax, runs: Runs, subset: list[dict], metric: str, label: str, temperature=None, k=None, **style) -> None:
    """A horizontal line at the seeds' mean of ``metric``, with its 95% interval as a band."""
    mean, lo, hi = _band([runs.value(r, metric, temperature, k) for r in subset])
    if math.isnan(mean):
        return
    ax.axhline(mean, label=label, **style)
    if hi > lo:
        ax.axhspan(lo, hi, color=style.get("color", "gray"), alpha=0.12, lw=0)


def _panels(n: int, rows: int = 1, width: float = 3.3, height: float = 3.0):
    fig, axes = plt.subplots(rows, n, figsize=(max(width * n, 4.8), height * rows + 0.6), sharey=True, squeeze=False)
    return fig, axes


def _finish(ax, xlabel: str, title: str = "", ylabel: str = "exact-match accuracy") -> None:
    ax.set_xlabel(xlabel)
    if ax.get_subplotspec().is_first_col():
        ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)


def _done(fig, axes, title: str, scale: str | None, ncol: int = 4):
    fig.suptitle(title + (" — tiny scale: the numbers mean nothing" if scale == "tiny" else ""), fontsize=11)
    legend_below(fig, list(np.ravel(axes)), ncol=ncol)
    return fig


def _theory_by_t(runs: Runs, subset: list[dict], taus: list[float]):
    """The theory's curve over temperature (``theory_by_temperature``), if the runs recorded one."""
    vals = [_band([runs.value(r, "theory_by_temperature", t) for r in subset]) for t in taus]
    if all(math.isnan(m) for m, _, _ in vals):
        return None
    return [m for m, _, _ in vals]


def _experts_label(n: Any) -> str:
    return f"{n} expert" + ("" if n == 1 else "s")


def fig_temperature(runs: Runs) -> list[Figure]:
    taus = sorted({t for r in runs.runs.values() for (m, t, _) in r["values"] if m == "model_accuracy"})
    ns = runs.values_of("experts.experts")
    fig, axes = _panels(len(ns))
    for ax, n in zip(axes[0], ns):
        sub = runs.select(experts__experts=n)
        model = [_band([runs.value(r, "model_accuracy", t) for r in sub]) for t in taus]
        ideal = [_band([runs.value(r, "ideal_learner_by_temperature", t) for r in sub]) for t in taus]
        for vals, label, kind in ((ideal, "ideal learner (corpus mixture)", "ideal"), (model, "model", "model")):
            _draw(ax, np.array(taus), *(np.array(c) for c in zip(*vals)), label=label, **STYLE[kind])
        curve = _theory_by_t(runs, sub, taus)
        if curve is not None:
            ax.plot(taus, curve, label="theory: majority vote", **STYLE["theory"])
        else:
            m, _, _ = _band([runs.value(r, "theory_accuracy") for r in sub])
            ax.plot([0.0], [m], label="theory: majority vote (τ → 0)", **STYLE["theory_point"])
        _level(ax, runs, sub, "best_expert_accuracy", "best expert", **STYLE["best_expert"])
        _finish(ax, "sampling temperature τ", _experts_label(n))
    caption = (f"{SEEDS_CAPTION} Dashed black: the best expert (band: its 95% interval over seeds). "
               "The ideal learner is the exact mixture of what the experts wrote.")
    return [("Accuracy vs sampling temperature",
             _done(fig, axes, "Accuracy vs sampling temperature", runs.spec.get("scale")), caption)]


def fig_coverage(runs: Runs) -> list[Figure]:
    ns = runs.values_of("experts.experts")
    fig, axes = _panels(len(ns), rows=2)
    for row, (t, label) in enumerate(((0.0, "greedy"), (1.0, "τ = 1"))):
        for ax, n in zip(axes[row], ns):
            sub = runs.select(experts__experts=n)
            ax.plot([0, 1], [0, 1], color="gray", lw=0.8, label="accuracy = coverage")
            _line(ax, runs, "experts.coverage", "ideal_learner_by_temperature", temperature=t, subset=sub,
                  label="ideal learner (corpus mixture)", **STYLE["ideal"])
            if t == 0.0:
                _line(ax, runs, "experts.coverage", "theory_accuracy", subset=sub, label="theory: majority vote",
                      **STYLE["theory"])
            else:
                _line(ax, runs, "experts.coverage", "theory_by_temperature", temperature=t, subset=sub,
                      label="theory: majority vote", **STYLE["theory"])
            _line(ax, runs, "experts.coverage", "best_expert_accuracy", subset=sub, label="best expert",
                  **STYLE["best_expert"])
            _line(ax, runs, "experts.coverage", "model_accuracy", temperature=t, subset=sub, label="model",
                  **STYLE["model"])
            _finish(ax, "coverage c", f"{_experts_label(n)}, {label}")
    return [("Accuracy vs coverage, greedy and τ = 1",
             _done(fig, axes, "Accuracy vs coverage", runs.spec.get("scale"), ncol=5), SEEDS_CAPTION)]


def fig_selection(runs: Runs) -> list[Figure]:
    out = []
    ns = runs.values_of("experts.experts")
    for cov in runs.values_of("experts.coverage"):
        fig, axes = _panels(len(ns), rows=2)
        for row, (t, label) in enumerate(((0.0, "greedy"), (1.0, "τ = 1"))):
            for ax, n in zip(axes[row], ns):
                sub = runs.select(experts__experts=n, experts__coverage=cov)
                _line(ax, runs, "experts.alpha", "ceiling", subset=sub, label="ceiling 1−(1−c)ⁿ", **STYLE["ceiling"])
                _line(ax, runs, "experts.alpha", "ideal_learner_by_temperature", temperature=t, subset=sub,
                      label="ideal learner (corpus mixture)", **STYLE["ideal"])
                _line(ax, runs, "experts.alpha", "theory_accuracy" if t == 0 else "theory_tau1_accuracy", subset=sub,
                      label="theory: weighted vote", **STYLE["theory"])
                _line(ax, runs, "experts.alpha", "best_expert_accuracy", subset=sub, label="best expert",
                      **STYLE["best_expert"])
                _line(ax, runs, "experts.alpha", "model_accuracy", temperature=t, subset=sub, label="model",
                      **STYLE["model"])
                _finish(ax, "α (writing follows knowledge)", f"{_experts_label(n)}, {label}")
        out.append((f"Skill selection, coverage {cov}",
                    _done(fig, axes, f"Skill selection, coverage {cov}", runs.spec.get("scale"), ncol=5),
                    SEEDS_CAPTION + " α: how much experts write about what they know."))
    return out


#: The generalization baselines, as the results table prints them.
TWO_HOP_BASELINES = (("two_hop.across.best_expert_accuracy", "best expert", STYLE["best_expert"]),
                     ("two_hop.across.majority_relation_baseline", "majority relation",
                      dict(color="tab:orange", ls="--", lw=1)),
                     ("two_hop.across.relation_pair_baseline", "relation pair (r1, r2)",
                      dict(color="tab:brown", ls="-.", lw=1)),
                     ("two_hop.across.direct_connection_baseline", "direct connection",
                      dict(color="tab:green", ls=":", lw=1.2)))


def fig_generalization(runs: Runs) -> list[Figure]:
    out = []
    # The size sweep: default phrasing on both levels (the phrasing sweep's runs at level 1 write two-hop facts
    # at level 2, so they are not points of the size curve).
    size_runs = [r for r in runs.runs.values() if r["params"].get("two_hop.phrasing") in (None, 1)
                 and r["params"].get("two_hop.two_hop_phrasing") in (None, 1)]
    kinds = [(cot, name) for cot, name in ((False, "latent"), (True, "chain of thought"))
             if any(bool(r["params"].get("two_hop.cot")) == cot for r in size_runs)]
    fig, axes = _panels(len(kinds))
    for ax, (cot, name) in zip(axes[0], kinds):
        sub = [r for r in size_runs if bool(r["params"].get("two_hop.cot")) == cot]
        for metric, label, style in TWO_HOP_BASELINES:
            _line(ax, runs, "two_hop.train", metric, subset=sub, label=label, **style)
        _line(ax, runs, "two_hop.train", "two_hop.within.model_accuracy", subset=sub,
              label="model, within-expertise (held out)", color="tab:blue", marker="s", ls=":", lw=1.2)
        _line(ax, runs, "two_hop.train", "two_hop.across.model_accuracy", subset=sub,
              label="model, across-expertise (test)", **STYLE["model"])
        _finish(ax, "within-expertise two-hop facts in training", name)
    out.append(("Skill generalization: size of the two-hop training set",
                _done(fig, axes, "Across-expertise accuracy vs training size", runs.spec.get("scale"), ncol=3),
                SEEDS_CAPTION + " Baselines are measured on the across-expertise (test) questions."))
    # The phrasing sweep: the grid that varies two_hop.phrasing, with its other fields at their one value.
    grid = next((g for g in (runs.spec["grid"] if isinstance(runs.spec["grid"], list) else [runs.spec["grid"]])
                 if "two_hop.phrasing" in g), {})
    fixed = {k: v[0] for k, v in grid.items() if k != "two_hop.phrasing" and len(v) == 1}
    phr = [r for r in runs.runs.values() if grid and not r["params"].get("two_hop.cot")
           and all(_same(r["params"].get(k), v) for k, v in fixed.items())]
    if len({r["params"]["two_hop.phrasing"] for r in phr}) > 1:
        fig, axes = _panels(1, width=5.0)
        ax = axes[0][0]
        for metric, label, style in TWO_HOP_BASELINES:
            _line(ax, runs, "two_hop.phrasing", metric, subset=phr, label=label, **style)
        _line(ax, runs, "two_hop.phrasing", "one_hop_accuracy", subset=phr, label="model, one-hop", color="tab:gray",
              marker="^")
        _line(ax, runs, "two_hop.phrasing", "two_hop.within.model_accuracy", subset=phr,
              label="model, within-expertise (held out)", color="tab:blue", marker="s", ls=":", lw=1.2)
        _line(ax, runs, "two_hop.phrasing", "two_hop.across.model_accuracy", subset=phr,
              label="model, across-expertise (test)", **STYLE["model"])
        _finish(ax, "phrasing diversity level (one-hop)")
        out.append(("Skill generalization: phrasing diversity",
                    _done(fig, axes, "Across-expertise accuracy vs phrasing", runs.spec.get("scale"), ncol=2),
                    SEEDS_CAPTION))
    return out


def fig_correlation(runs: Runs) -> list[Figure]:
    single = runs.select(experts__experts=1)
    many = [n for n in runs.values_of("experts.experts") if n != 1]
    fig, axes = _panels(max(len(many), 1), width=4.2)
    for ax, n in zip(axes[0], many):
        sub = [r for r in runs.select(experts__experts=n)]
        for r in sub:  # rho left out means 0
            if r["params"].get("experts.rho") is None:
                r["params"]["experts.rho"] = 0.0
        _line(ax, runs, "experts.rho", "ideal_learner_accuracy", subset=sub, label="ideal learner (greedy)",
              **STYLE["ideal"])
        _line(ax, runs, "experts.rho", "theory_accuracy", subset=sub, label="theory: vote with a shared misconception",
              **STYLE["theory"])
        _line(ax, runs, "experts.rho", "best_expert_accuracy", subset=sub, label="best expert", **STYLE["best_expert"])
        _line(ax, runs, "experts.rho", "model_accuracy", temperature=1.0, subset=sub, label="model, τ = 1",
              color="tab:blue", marker=".", ls="-.", lw=1)
        _line(ax, runs, "experts.rho", "model_accuracy", temperature=0.0, subset=sub, label="model, greedy",
              **STYLE["model"])
        if single:
            _level(ax, runs, single, "model_accuracy", "model of a single expert (greedy)", temperature=0.0,
                   color="tab:gray", lw=1.2)
        _finish(ax, "error correlation ρ", _experts_label(n))
    return [("Correlated experts", _done(fig, axes, "Transcendence vs correlated errors", runs.spec.get("scale"),
                                         ncol=3), SEEDS_CAPTION)]


def fig_vote(runs: Runs) -> list[Figure]:
    out = []
    ks = sorted({k for r in runs.runs.values() for (m, _, k) in r["values"] if m == "vote.inference" and k})
    ns = runs.values_of("experts.experts")
    for cov in runs.values_of("experts.coverage"):
        fig, axes = _panels(len(ns))
        for ax, n in zip(axes[0], ns):
            sub = runs.select(experts__experts=n, experts__coverage=cov)
            vals = [_band([runs.value(r, "vote.inference", 1.0, k) for r in sub]) for k in ks]
            _level(ax, runs, sub, "best_expert_accuracy", "best expert", **STYLE["best_expert"])
            _level(ax, runs, sub, "vote.experts_vote", "experts' explicit vote", color="tab:red", ls="--", lw=1)
            _level(ax, runs, sub, "vote.training_vote", "training-time vote (model greedy)", color="tab:green", lw=1.2)
            _draw(ax, np.array(ks, dtype=float), *(np.array(c) for c in zip(*vals)),
                  label="inference-time vote of k samples at τ = 1", **STYLE["model"])
            ax.set_xscale("log", base=2)
            _finish(ax, "k (samples per question)", _experts_label(n))
        out.append((f"Inference-time vs training-time voting, coverage {cov}",
                    _done(fig, axes, f"Three votes, coverage {cov}", runs.spec.get("scale"), ncol=2),
                    SEEDS_CAPTION + " Horizontal lines: seeds' mean, band: its 95% interval."))
    return out


def fig_generic(runs: Runs) -> list[Figure]:
    if not runs.fields:
        return []
    x = runs.fields[0]
    fig, axes = _panels(1, width=5.0)
    ax = axes[0][0]
    _line(ax, runs, x, "ideal_learner_accuracy", label="ideal learner (greedy)", **STYLE["ideal"])
    _line(ax, runs, x, "theory_accuracy", label="theory (τ → 0)", **STYLE["theory"])
    _line(ax, runs, x, "best_expert_accuracy", label="best expert", **STYLE["best_expert"])
    _line(ax, runs, x, "model_accuracy", temperature=0.0, label="model, greedy", **STYLE["model"])
    _finish(ax, header(x))
    return [(f"Accuracy vs {header(x)}", _done(fig, axes, f"Accuracy vs {header(x)}", runs.spec.get("scale")),
             SEEDS_CAPTION)]


FIGURES: dict[str, Callable[[Runs], list[Figure]]] = {
    "temperature": fig_temperature, "coverage": fig_coverage, "selection": fig_selection,
    "generalization": fig_generalization, "correlation": fig_correlation, "vote": fig_vote,
}

# Columns of the results table: (metric, temperature, k, header).
TABLE = [("model_accuracy", 0.0, None, "model, greedy"), ("model_accuracy", 1.0, None, "model, τ = 1"),
         ("ideal_learner_accuracy", None, None, "ideal learner"), ("best_expert_accuracy", None, None, "best expert"),
         ("theory_accuracy", None, None, "theory"), ("transcendence_gap", None, None, "gap (95% CI)"),
         ("two_hop.across.model_accuracy", None, None, "two-hop, across"),
         ("two_hop.within.model_accuracy", None, None, "two-hop, within"),
         ("two_hop.across.relation_pair_baseline", None, None, "relation pair"),
         ("two_hop.across.majority_relation_baseline", None, None, "majority relation"),
         ("two_hop.across.direct_connection_baseline", None, None, "direct connection"),
         ("vote.experts_vote", None, None, "experts' vote")]
#: Table headers of the grid's config fields.
FIELD_HEADERS = {"experts.experts": "experts", "experts.coverage": "coverage c", "experts.alpha": "α",
                 "experts.rho": "error correlation ρ", "experts.clusters": "clusters",
                 "two_hop.train": "two-hop facts", "two_hop.phrasing": "phrasing (one-hop)",
                 "two_hop.two_hop_phrasing": "phrasing (two-hop)", "two_hop.cot": "chain of thought",
                 "two_hop.repeat": "repeats", "corpus.paragraphs": "paragraphs", "training.steps": "steps"}


def header(field: str) -> str:
    """A reader's name for a dotted config field."""
    return FIELD_HEADERS.get(field, field.rsplit(".", 1)[-1].replace("_", " "))


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


def _cell(runs: Runs, r: dict, metric: str, t, k) -> str:
    """One run's number; the gap with its bootstrap interval over queries."""
    v = runs.value(r, metric, t, k)
    if metric.endswith("transcendence_gap") and not math.isnan(v):
        stem = metric[: -len("transcendence_gap")]
        lo, hi = runs.value(r, stem + "gap_ci95_lo"), runs.value(r, stem + "gap_ci95_hi")
        if not math.isnan(lo):
            return f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]"
    return _fmt(v)


def _interval_cell(values: list[float], signed: bool = False) -> str:
    """Mean over seeds [its 95% t-interval]; "n/a" for the interval where one seed gives none."""
    iv = seed_interval(values)
    if math.isnan(iv.mean):
        return "–"
    f = "{:+.3f}" if signed else "{:.3f}"
    if not iv.defined:
        return f.format(iv.mean) + " [n/a: 1 seed]"
    return f"{f.format(iv.mean)} [{f.format(iv.lo)}, {f.format(iv.hi)}]"


#: The key numbers of a grid point, over seeds: (metric, temperature, header). The gap is model (greedy) −
#: best expert (at its best τ); a generalization run's gap is that of the across-expertise (test) questions.
SEED_TABLE = [("model_accuracy", 0.0, "model, greedy"), ("best_expert_accuracy", None, "best expert"),
              ("ideal_learner_accuracy", None, "ideal learner"), ("transcendence_gap", None, "gap"),
              ("two_hop.across.model_accuracy", None, "two-hop across: model"),
              ("two_hop.across.best_expert_accuracy", None, "two-hop across: best expert"),
              ("two_hop.across.transcendence_gap", None, "two-hop across: gap")]


def _gap_metric(runs: Runs, group: list[dict]) -> str | None:
    """The gap a grid point's transcendence is judged on: the one-hop gap, else the across-expertise gap."""
    for metric in ("transcendence_gap", "two_hop.across.transcendence_gap"):
        if any(not math.isnan(runs.value(r, metric)) for r in group):
            return metric
    return None


def point_verdict(runs: Runs, group: list[dict]):
    """Whether a grid point (its runs, one per seed) transcends: ``evaluate.stats.transcendent`` on its gaps
    over seeds, or on the one run's query-bootstrap interval where there is one seed."""
    metric = _gap_metric(runs, group)
    if metric is None:
        return transcendent([])
    gaps = [runs.value(r, metric) for r in group]
    stem = metric[: -len("transcendence_gap")]
    ci = None
    if len(group) == 1:
        ci = (runs.value(group[0], stem + "gap_ci95_lo"), runs.value(group[0], stem + "gap_ci95_hi"))
    return transcendent(gaps, ci)


SEEDS_NOTE = ("Per grid point: mean over seeds [95% Student-t interval of that mean over seeds, "
              "scipy.stats.t.interval; n/a with one seed]. <b>Transcendent</b> only where the interval of the gap "
              "(model greedy − best expert at its best τ) over seeds lies above 0; with one seed the run's "
              "bootstrap interval over queries decides instead, and the cell says so.")


def _tables(runs: Runs) -> str:
    fields = runs.fields
    cols = [c for c in TABLE if any(not math.isnan(runs.value(r, c[0], c[1], c[2])) for r in runs.runs.values())]
    key = lambda r: tuple(str(r["params"].get(f)) for f in fields)  # noqa: E731
    order = sorted(runs.runs.values(), key=lambda r: key(r) + (r["seed"],))
    head = "".join(f"<th>{_e(header(f))}</th>" for f in fields)
    out = []
    points: dict[tuple, list[dict]] = defaultdict(list)
    for r in order:
        points[key(r)].append(r)
    seed_cols = [c for c in SEED_TABLE if any(not math.isnan(runs.value(r, c[0], c[1])) for r in runs.runs.values())]
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{_e(_fmt(group[0]['params'].get(f)))}</td>" for f in fields)
        + f"<td>{len(group)}</td>"
        + "".join(f"<td>{_e(_interval_cell([runs.value(r, c[0], c[1]) for r in group], c[0].endswith('gap')))}</td>"
                  for c in seed_cols)
        + f"<td>{_e(point_verdict(runs, group).label())}</td></tr>" for group in points.values())
    out.append(f'<h3>Over seeds</h3><p>{SEEDS_NOTE}</p><table class="seeds"><thead><tr>{head}<th>seeds</th>'
               + "".join(f"<th>{_e(c[2])}</th>" for c in seed_cols)
               + f"<th>transcendent</th></tr></thead><tbody>\n{rows}\n</tbody></table>")
    body = "\n".join(
        "<tr>" + "".join(f"<td>{_e(_fmt(r['params'].get(f)))}</td>" for f in fields) + f"<td>{_e(r['seed'])}</td>"
        + "".join(f"<td>{_e(_cell(runs, r, *c[:3]))}</td>" for c in cols) + f"<td><code>{_e(r['dir'])}</code>"
        "</td></tr>" for r in order)
    out.append("<h3>Every run</h3><p>The gap's interval: a bootstrap over queries (how sure one trained model's "
               f'number is).</p><table class="runs"><thead><tr>{head}<th>seed</th>'
               + "".join(f"<th>{_e(c[3])}</th>" for c in cols) + f"<th>run</th></tr></thead><tbody>\n{body}\n"
               "</tbody></table>")
    return "\n".join(out)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "figure"


def render_report(exp_dir: Path, figures_dir: Path) -> str:
    """The page of the experiment in ``exp_dir``; its figures are written to ``figures_dir`` (PDF, SVG, PNG)
    and linked from the page by that folder's name, the PNGs also embedded."""
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
    figures_dir.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    figs = []
    for title, fig, caption in FIGURES.get(spec["name"], fig_generic)(runs):
        slug = _slug(title)
        while slug in written:
            slug += "-2"
        files = save_figure(fig, figures_dir / f"{slug}.png")
        written.update(f.name for f in files)
        written.add(slug)
        png = base64.b64encode((figures_dir / f"{slug}.png").read_bytes()).decode("ascii")
        links = " · ".join(f'<a href="{_e(figures_dir.name)}/{_e(f.name)}">{f.suffix[1:].upper()}'
                           f'{" (300 dpi)" if f.suffix == ".png" else ""}</a>' for f in files)
        figs.append(f'<figure id="{_e(slug)}"><img alt="{_e(title)}" src="data:image/png;base64,{png}">'
                    f"<figcaption><b>{_e(title)}.</b> {_e(caption)} Files: {links}</figcaption></figure>")
    for old in figures_dir.iterdir():  # figures of an earlier page that this one no longer has
        if old.is_file() and old.suffix in (".pdf", ".svg", ".png") and old.name not in written:
            old.unlink()
    expected = len(spec.get("runs", [])) or len(runs)
    config = json.dumps({k: spec.get(k) for k in ("scale", "base", "grid", "seeds", "study", "study_options")},
                        indent=2, default=str)
    sample = _sample_text(exp_dir)
    sample_html = (f"<h2>A sample of the training text</h2><details><summary>first paragraphs of one run's corpus"
                   f"</summary><pre>{_e(sample)}</pre></details>" if sample else "")
    banner = ('<p class="banner"><b>Tiny scale.</b> These runs take seconds and exist to test the pipeline: '
              "the model has barely trained, so its numbers say nothing about transcendence. Run "
              f"<code>transcend reproduce {_e(spec['name'])} --scale small</code> for results.</p>"
              if spec.get("scale") == "tiny" else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>transcend: {_e(spec['name'])}</title>
<style>
{PAGE_STYLE}
</style></head><body>
<h1>Experiment: {_e(spec['name'])}</h1>
{banner}
<p>{_e(spec.get('description', ''))}</p>
<p>{len(runs)} of {expected} runs finished; scale <b>{_e(spec.get('scale'))}</b>; seeds {_e(spec.get('seeds'))}.
Error bars: 95% t-intervals over seeds (none with one seed). Every figure is also a PDF, an SVG and a
300-dpi PNG (links under each).</p>
{"".join(figs)}
<h2>Results</h2>
{_tables(runs)}
<h2>Configuration</h2>
<pre>{_e(config)}</pre>
{sample_html}
<p>Query every number: <code>transcend results --sql "SELECT * FROM results WHERE experiment = {_e(quote_literal(spec['name']))}"</code></p>
</body></html>
"""


def figures_dir_for(page: Path) -> Path:
    """Where a page's figure files go: ``figures/`` beside ``report.html``, ``<stem>_figures/`` beside others."""
    return page.parent / ("figures" if page.name == REPORT else f"{page.stem}_figures")


def write_report(name: str, root: Path = Path("runs/experiments"), out: Path | None = None) -> Path:
    """Write ``root/<name>/report.html`` (or ``out``) and its figure files atomically; returns the page's path."""
    exp_dir = Path(root) / name
    if not exp_dir.is_dir():
        raise TranscendError(f"no experiment named {name!r} under {root}; run transcend reproduce {name} first.")
    page = Path(out) if out else exp_dir / REPORT
    return write_page(page, render_report(exp_dir, figures_dir_for(page)))


def write_page(out: Path, page: str) -> Path:
    """Write an HTML page atomically (temp file, then rename); returns its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out
