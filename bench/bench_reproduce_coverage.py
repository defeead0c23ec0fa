"""Benchmark: ``transcend reproduce coverage --scale small`` (goal: <= 30 minutes on 2 cores).

Measures, in one process's run:

1. the reference: one default-size run (``transcend run denoising``: 10 experts,
   coverage 0.4, 3,000 steps of the 2-layer x 128 model), alone;
2. the sweep: coverage {0.2, 0.4, 0.6, 0.8} x experts {1, 10, 100}, one seed,
   ``--workers W`` local processes;

and prints both wall times, the sweep as a multiple of the reference run (the
machine's speed, busy or not, shows up in both), and the figure's numbers
(greedy and τ = 1 accuracy per grid point) read back with ``transcend results``.

    OMP_NUM_THREADS=1 python bench/bench_reproduce_coverage.py [--workers 2] [--root DIR] [--json]

``--root`` keeps the sweep's runs (default: a temporary folder) so that
``transcend report coverage --root DIR`` can draw them afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from transcend.results.store import query

GOAL_S = 30 * 60


def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()[-2000:]}")
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--root", help="keep the sweep here (default: a temporary folder)")
    ap.add_argument("--skip-reference", action="store_true", help="do not measure the reference run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ref = None
        if not args.skip_reference:
            ref = _timed([sys.executable, "-m", "transcend.cli", "run", "denoising", "--out", str(Path(tmp) / "ref"),
                          "--json", "--quiet", "--device", "cpu"])
        root = Path(args.root) if args.root else Path(tmp) / "experiments"
        sweep = _timed([sys.executable, "-m", "transcend.cli", "reproduce", "coverage", "--scale", "small",
                        "--seeds", "1", "--workers", str(args.workers), "--root", str(root), "--quiet"])
        cols, rows = query("""
            SELECT "cfg.experts.experts" AS experts, "cfg.experts.coverage" AS coverage,
                   max(value) FILTER (WHERE metric = 'model_accuracy' AND temperature = 0) AS greedy,
                   max(value) FILTER (WHERE metric = 'model_accuracy' AND temperature = 1) AS tau1,
                   max(value) FILTER (WHERE metric = 'ideal_learner_accuracy') AS ideal,
                   max(value) FILTER (WHERE metric = 'best_expert_accuracy') AS best_expert,
                   max(value) FILTER (WHERE metric = 'theory_accuracy') AS theory,
                   max(value) FILTER (WHERE metric = 'timings.train_s') AS train_s
            FROM results WHERE experiment = 'coverage' GROUP BY ALL ORDER BY experts, coverage""", root)
    table = [dict(zip(cols, r)) for r in rows]
    out = {"workers": args.workers, "sweep_s": sweep, "reference_run_s": ref,
           "ratio_to_reference": sweep / ref if ref else None, "goal_s": GOAL_S, "goal_met": sweep <= GOAL_S,
           "runs": table}
    if args.json:
        print(json.dumps(out))
        return out
    ratio = f"{sweep / ref:.2f}x the reference run ({ref:.0f} s)" if ref else "no reference measured"
    print(f"reproduce coverage --scale small, {len(table)} runs, {args.workers} workers: {sweep / 60:.1f} min "
          f"(goal {GOAL_S // 60} min: {'met' if sweep <= GOAL_S else 'missed'}); {ratio}")
    print(f"{'experts':>8}{'coverage':>9}{'greedy':>8}{'τ=1':>8}{'ideal':>8}{'best exp':>9}{'theory':>8}{'train s':>9}")
    for r in table:
        print(f"{r['experts']:>8}{r['coverage']:>9.1f}{r['greedy']:>8.3f}{r['tau1']:>8.3f}{r['ideal']:>8.3f}"
              f"{r['best_expert']:>9.3f}{r['theory']:>8.3f}{r['train_s']:>9.0f}")
    return out


if __name__ == "__main__":
    main()
