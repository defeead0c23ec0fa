"""Accuracy against sampling temperature: the model beside its experts, the ideal learner and theory."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402


def _taus(d: dict) -> tuple[list[float], list[float]]:
    items = sorted((float(k), v) for k, v in d.items())
    return [k for k, _ in items], [v for _, v in items]


def plot_accuracy_vs_temperature(metrics: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
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
    ax.hlines(metrics["best_expert_accuracy"], lo_t, hi_t, color="black", ls="--", lw=1, label=label)
    it, iv = _taus(metrics["ideal_learner_by_temperature"])
    ax.plot(it, iv, color="tab:green", marker="s", ms=4, label="ideal learner (corpus mixture)")
    ax.plot(taus, model, color="tab:blue", marker="o", lw=2, label="model")
    ax.plot([0], [metrics["theory_accuracy"]], marker="*", ms=14, color="tab:red", ls="none",
            label="theory: " + ("weighted vote" if "ceiling" in metrics else "majority vote") + " (τ→0)")
    if "ceiling" in metrics:  # selection: a fact no expert knows cannot be learnt from their text, only guessed
        ax.hlines(metrics["ceiling"], lo_t, hi_t, color="tab:purple", ls=":", lw=1.5,
                  label="ceiling (known by any expert, else guessed)")
    lo, hi = metrics["gap_ci95"]
    ax.text(0.02, 0.03, f"gap (model greedy − best expert): {metrics['transcendence_gap']:+.3f}, "
            f"95% CI [{lo:+.3f}, {hi:+.3f}]", transform=ax.transAxes, fontsize=8)
    ax.set_xlabel("sampling temperature τ (0 = greedy)")
    ax.set_ylabel("exact-match accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{metrics['mode']}: {metrics['experts']} experts, coverage {metrics['coverage']}"
                 + (f", α = {metrics['alpha']}" if "alpha" in metrics else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right" if "ceiling" in metrics else "upper right")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def plot_two_hop(metrics: dict, path: Path) -> None:
    """Generalization: the model beside the best expert and both baselines, on each question set."""
    sets = [("within", "within-expertise\n(held out)"), ("across", "across-expertise\n(test)")]
    series = [("model_accuracy", "model" + (" (chain of thought)" if metrics["two_hop_config"]["cot"] else ""),
               "tab:blue"),
              ("best_expert_accuracy", "best expert", "black"),
              ("majority_relation_baseline", "majority relation", "tab:orange"),
              ("direct_connection_baseline", "direct connection", "tab:green")]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    width = 0.8 / len(series)
    for j, (key, label, color) in enumerate(series):
        vals = [metrics["two_hop"][s].get(key) or 0.0 for s, _ in sets]
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(sets))]
        ax.bar(xs, vals, width, label=label, color=color, alpha=0.85)
        for x, v in zip(xs, vals):
            ax.text(x, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
    ax.axhline(metrics["one_hop_accuracy"], color="tab:purple", ls=":", lw=1.5,
               label=f"model one-hop accuracy ({metrics['one_hop_accuracy']:.2f})")
    ax.set_xticks(range(len(sets)), [lbl for _, lbl in sets])
    ax.set_ylabel("exact-match accuracy (greedy)")
    ax.set_ylim(0, 1.08)
    th = metrics["two_hop_config"]
    ax.set_title(f"generalization: {metrics['experts']} experts, {th['train']} two-hop facts ×{th['repeat']}, "
                 f"phrasing {th['phrasing']}/{th['two_hop_phrasing']}", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
