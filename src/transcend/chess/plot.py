"""Chess plots: rating against temperature per cutoff (± 2·RD) and the favor distribution."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.tight_layout()
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def plot_rating_vs_temperature(metrics: dict, path: Path) -> None:
    cutoffs = metrics["cutoffs"]
    n = max(1, len(cutoffs))
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), dpi=110, squeeze=False)
    for ax, (label, e) in zip(axes[0], cutoffs.items(), strict=False):
        items = sorted((float(t), r) for t, r in e["by_temperature"].items())
        taus = [t for t, _ in items]
        r = np.array([v["rating"] for _, v in items])
        d = np.array([2 * v["rd"] for _, v in items])
        ax.errorbar(taus, r, yerr=d, marker="o", capsize=3, color="tab:blue", label="model ± 2·RD")
        best, brd = e["best_player_rating"], e["best_player_rd"]
        ax.axhline(best, color="black", ls="--", lw=1, label=f"best player {best:.0f}")
        ax.axhspan(best - 2 * brd, best + 2 * brd, color="gray", alpha=0.2)
        ideal = sorted((float(t), v) for t, v in e.get("ideal", {}).items())
        if ideal:
            ax.errorbar([t for t, _ in ideal], [v["rating"] for _, v in ideal],
                        yerr=[2 * v["rd"] for _, v in ideal], marker="s", ls=":", capsize=3, color="tab:green",
                        label="ideal learner ± 2·RD")
        ax.set_xscale("log")
        ax.set_xlabel("temperature τ")
        ax.set_ylabel("Glicko-2 rating")
        ax.set_title(f"cutoff {label}")
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_favor(metrics: dict, path: Path) -> None:
    cutoffs = metrics["cutoffs"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for label, e in cutoffs.items():
        v = np.asarray(e["favor"]["values"])
        if len(v):
            ax.hist(v, bins=40, alpha=0.5, label=f"cutoff {label}: mean {v.mean():+.3f}")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("favor: win prob. at low τ − at τ = 1 (per position)")
    ax.set_ylabel("positions")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    _save(fig, path)
