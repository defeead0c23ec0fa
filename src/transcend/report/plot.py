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
    ax.fill_between([lo_t, hi_t], min(experts), max(experts), color="tab:gray", alpha=0.25,
                    label=f"experts ({len(experts)}, min–max)")
    for a in experts:
        ax.hlines(a, lo_t, hi_t, color="tab:gray", lw=0.5, alpha=0.6)
    ax.hlines(metrics["best_expert_accuracy"], lo_t, hi_t, color="black", ls="--", lw=1, label="best expert")
    it, iv = _taus(metrics["ideal_learner_by_temperature"])
    ax.plot(it, iv, color="tab:green", marker="s", ms=4, label="ideal learner (corpus mixture)")
    ax.plot(taus, model, color="tab:blue", marker="o", lw=2, label="model")
    ax.plot([0], [metrics["theory_accuracy"]], marker="*", ms=14, color="tab:red", ls="none",
            label="theory: " + ("weighted vote" if "ceiling" in metrics else "majority vote") + " (τ→0)")
    if "ceiling" in metrics:  # selection: a fact no expert knows cannot be learnt from their text, only guessed
        ax.hlines(metrics["ceiling"], lo_t, hi_t, color="tab:purple", ls=":", lw=1.5,
                  label="ceiling 1−(1−c)ⁿ (known by any expert)")
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
