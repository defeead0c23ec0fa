"""Benchmark: one skill-selection run on the default world (goal: <= 180 s on 2 cores).

Runs ``transcend run selection --experts 100 --coverage 0.1 --alpha 1.0`` (the
issue's setting; other values by flag) in a subprocess and prints its wall time
and stage timings, and the ratio against a reference measured in the same run:
100 of the demo's training steps on random tokens (``demo_shape.demo_step_seconds``),
so that a slow or busy machine shows up in the reference too.
The clustering cache is not used unless ``--out`` points beside an earlier run.

    python bench/bench_selection.py [--experts 100] [--coverage 0.1] [--alpha 1.0] [--out DIR] [--json]
                                    [any other ``transcend run selection`` flag, e.g. --preset tiny]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_shape import demo_step_seconds  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experts", type=int, default=100)
    ap.add_argument("--coverage", type=float, default=0.1)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--out", help="keep the run folder here (default: a temporary folder)")
    ap.add_argument("--json", action="store_true")
    args, extra = ap.parse_known_args(argv)
    ref = 100 * demo_step_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "selection"
        cmd = [sys.executable, "-m", "transcend.cli", "run", "selection", "--experts", str(args.experts),
               "--coverage", str(args.coverage), "--alpha", str(args.alpha), "--out", str(out), "--json", "--quiet", *extra]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"selection run failed: {proc.stderr.strip()}")
    m = json.loads(proc.stdout)
    out = {"selection_s": seconds, "reference_s": ref, "ratio_to_reference": seconds / ref,
           "timings": m["timings"], "model_accuracy_greedy": m["model_accuracy"]["0"], "ceiling": m["ceiling"],
           "best_expert_accuracy": m["best_expert_accuracy"], "ideal_learner_accuracy": m["ideal_learner_accuracy"]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"transcend run selection (--experts {args.experts} --coverage {args.coverage} --alpha {args.alpha}): "
              f"{seconds:.1f} s (goal 180 s); reference (100 training steps of the default model): {ref:.2f} s; "
              f"ratio {seconds / ref:.1f}x")
        print("  stages: " + ", ".join(f"{k} {v:.1f}" for k, v in m["timings"].items()))
    return out


if __name__ == "__main__":
    main()
