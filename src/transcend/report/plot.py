"""Figures: one run's accuracy against temperature, and the file format every figure is saved in.

Every figure is written three times beside each other, for a paper and for a page:
``NAME.pdf`` and ``NAME.svg`` (vector) and ``NAME.png`` at 300 dpi, each atomically,
without creation dates (the same figure gives the same bytes). Text never sits on the
data: legends go below the axes, numbers that are not plotted go in the caption.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

matplotlib.rcParams["svg.hashsalt"] = "transcend"  # stable element ids: the same figure, the same SVG bytes
FORMATS = ("pdf", "svg", "png")
DPI = 300
#: One look per kind of answerer, in every figure (per run and in the reports).
STYLE = {
    "model": dict(color="tab:blue", marker="o", lw=2),
    "ideal": dict(color="tab:green", marker="s", ms=4, ls="-", lw=1.2),
    "theory": dict(color="tab:red", ls="--", lw=1.2),
    "theory_point": dict(color="tab:red", marker="*", ms=12, ls="none"),
    "best_expert": dict(color="black", ls="--", lw=1),
    "ceiling": dict(color="tab:purple", ls=":", lw=1.5),
}
_METADATA = {"pdf": {"CreationDate": None, "Producer": None, "Creator": None},
             "svg": {"Date": None, "Creator": None}, "png": {"Software": None}}


def save_figure(fig, path: Path) -> list[Path]:
    """Write ``fig`` as PDF, SVG and a 300-dpi PNG named like ``path`` (its suffix is replaced); returns them."""
    path = Path(path)
    out = []
    for fmt in FORMATS:
        target = path.with_suffix("." + fmt)
        tmp = target.with_name(f".{target.name}.tmp")
        fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight", metadata=_METADATA[fmt])
        os.replace(tmp, target)
        out.append(target)
    plt.close(fig)
    return out


def legend_below(fig, axes, ncol: int = 3) -> None:
    """One legend for the whole figure, under the axes and their labels (entries with the same label
    drawn once), so that it covers nothing."""
    axes = list(axes) if isinstance(axes, (list, tuple)) else list(getattr(axes, "flat", [axes]))
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if not seen:
        return
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    bottom = min(ax.get_tightbbox(renderer).y0 for ax in axes) / fig.bbox.height
    fig.legend(list(seen.values()), list(seen), loc="upper center", bbox_to_anchor=(0.5, bottom - 0.01),
               ncol=ncol, fontsize=8, frameon=False)


def _taus(d: dict) -> tuple[list[float], list[float]]:
    items = sorted((float(k), v) for k, v in d.items())
    return [k for k, _ in items], [v for _, v in items]


def draw_theory(ax, metrics: dict, **style) -> None:
    """The theory over temperature where the run has it (``theory_by_temperature``), else its points:
    τ → 0 (``theory_accuracy``) and, in selection, τ = 1 (``theory_tau1_accuracy``)."""
    name = "theory: " + ("weighted vote" if "ceiling" in metrics else "majority vote")
    if metrics.get("theory_by_temperature"):
        tt, tv = _taus(metrics["theory_by_temperature"])
        ax.plot(tt, tv, label=name, **{**STYLE["theory"], **style})
        return
    xs, ys = [0.0], [metrics["theory_accuracy"]]
    if "theory_tau1_accuracy" in metrics:
        xs.append(1.0), ys.append(metrics["theory_tau1_accuracy"])
    ax.plot(xs, ys, label=name + (" (τ → 0 and τ = 1)" if len(xs) > 1 else " (τ → 0)"),
            **{**STYLE["theory_point"], **style})


def plot_accuracy_vs_temperature(metrics: dict, path: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    taus, model = _taus(metrics["model_accuracy"])
    experts = metrics["expert_accuracies"]
    lo_t, hi_t = min(taus), max(taus)
    by_tau = metrics.get("expert_accuracies_by_temperature")
    if by_tau:  # each expert decoded at every temperature, as the model is
        et, curves = _taus(by_tau)
        for j, curve in enumerate(zip(*curves)):
            ax.plot(et, curve, color="tab:gray", lw=0.6, alpha=0.6, label=f"experts ({len(experts)})" if j == 0 else None)
    else:
        for a in experts:
            ax.hlines(a, lo_t, hi_t, color="tab:gray", lw=0.5, alpha=0.6)
    label = "best expert" + (f" (at τ = {metrics['best_expert_temperature']:g})" if "best_expert_temperature" in metrics
                             else "")
    ax.hlines(metrics["best_expert_accuracy"], lo_t, hi_t, label=label, **STYLE["best_expert"])
    if "ceiling" in metrics:  # selection: a fact no expert knows cannot be learnt from their text, only guessed
        ax.hlines(metrics["ceiling"], lo_t, hi_t, label="ceiling (known by any expert, else guessed)", **STYLE["ceiling"])
    it, iv = _taus(metrics["ideal_learner_by_temperature"])
    ax.plot(it, iv, label="ideal learner (corpus mixture)", **STYLE["ideal"])
    draw_theory(ax, metrics)
    ax.plot(taus, model, label="model", **STYLE["model"])
    lo, hi = metrics["gap_ci95"]
    ax.set_xlabel("sampling temperature τ (0 = greedy)\n"
                  f"gap, model greedy − best expert: {metrics['transcendence_gap']:+.3f} "
                  f"(95% CI {lo:+.3f} to {hi:+.3f}, bootstrap over queries)", fontsize=9)
    ax.set_ylabel("exact-match accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{metrics['mode']}: {metrics['experts']} experts, coverage {metrics['coverage']}"
                 + (f", α = {metrics['alpha']}" if "alpha" in metrics else ""))
    ax.grid(alpha=0.3)
    legend_below(fig, ax, ncol=2)
    return save_figure(fig, path)


def plot_two_hop(metrics: dict, path: Path) -> list[Path]:
    """Generalization: the model beside the best expert and the three baselines, on each question set."""
    sets = [("within", "within-expertise\n(held out)"), ("across", "across-expertise\n(test)")]
    series = [("model_accuracy", "model" + (" (chain of thought)" if metrics["two_hop_config"]["cot"] else ""),
               "tab:blue"),
              ("best_expert_accuracy", "best expert", "black"),
              ("majority_relation_baseline", "majority relation (most common tail of r2)", "tab:orange"),
              ("relation_pair_baseline", "relation pair (most common trained answer of r1, r2)", "tab:brown"),
              ("direct_connection_baseline", "direct connection (an entity linked to a)", "tab:green")]
    series = [s for s in series if any(metrics["two_hop"][k].get(s[0]) is not None for k, _ in sets)]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    width = 0.8 / len(series)
    for j, (key, label, color) in enumerate(series):
        vals = [metrics["two_hop"][s].get(key) or 0.0 for s, _ in sets]
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(sets))]
        ax.bar(xs, vals, width, label=label, color=color, alpha=0.85)
        for x, v in zip(xs, vals):
            ax.text(x, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(metrics["one_hop_accuracy"], color="tab:purple", ls=":", lw=1.5,
               label=f"model one-hop accuracy ({metrics['one_hop_accuracy']:.2f})")
    ax.set_xticks(range(len(sets)), [lbl for _, lbl in sets])
    ax.set_ylabel("exact-match accuracy (greedy)")
    ax.set_ylim(0, 1.1)
    th = metrics["two_hop_config"]
    ax.set_title(f"generalization: {metrics['experts']} experts, {th['train']} two-hop facts ×{th['repeat']}, "
                 f"phrasing {th['phrasing']}/{th['two_hop_phrasing']}", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    legend_below(fig, ax, ncol=2)
    return save_figure(fig, path)
