"""Benchmark: one skill-generalization run on the default world (goal: <= 5 minutes on 2 cores).

Runs ``transcend run generalization --two-hop 1500 --cot`` (other flags pass
through) in a subprocess and prints its wall time and stage timings, and the
ratio against a reference measured in the same run: 100 of the demo's training
steps on random tokens (``demo_shape.demo_step_seconds``: the default model, batch
and optimizers, one torch thread), so that a slow or busy machine shows up in the
reference too.

    python bench/bench_generalization.py [--two-hop 1500] [--out DIR] [--json] [any other flag, e.g. --phrasing 4]
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
    ap.add_argument("--two-hop", default="1500")
    ap.add_argument("--no-cot", action="store_true", help="latent two-hop (no chain of thought)")
    ap.add_argument("--out", help="keep the run folder here (default: a temporary folder)")
    ap.add_argument("--json", action="store_true")
    args, extra = ap.parse_known_args(argv)
    ref = 100 * demo_step_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "generalization"
        cmd = [sys.executable, "-m", "transcend.cli", "run", "generalization", "--two-hop", args.two_hop,
               *([] if args.no_cot else ["--cot"]), "--out", str(out), "--json", "--quiet", *extra]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"generalization run failed: {proc.stderr.strip()}")
    m = json.loads(proc.stdout)
    out = {"generalization_s": seconds, "reference_s": ref, "ratio_to_reference": seconds / ref,
           "timings": m["timings"], "one_hop_accuracy": m["one_hop_accuracy"],
           "within_expertise_accuracy": m["within_expertise_accuracy"],
           "across_expertise_accuracy": m["across_expertise_accuracy"]}
    if args.json:
        print(json.dumps(out))
    else:
        flags = " ".join([f"--two-hop {args.two_hop}", *([] if args.no_cot else ["--cot"]), *extra])
        print(f"transcend run generalization {flags}: {seconds:.1f} s (goal 300 s); reference "
              f"(100 training steps of the default model): {ref:.2f} s; ratio {seconds / ref:.1f}x")
        print("  stages: " + ", ".join(f"{k} {v:.1f}" for k, v in m["timings"].items()))
    return out


if __name__ == "__main__":
    main()
