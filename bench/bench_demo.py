"""Benchmark: ``transcend demo`` end to end (goal: <= 120 s on 2 cores).

Runs the demo in a fresh folder in a subprocess and prints its wall time,
and the ratio against a reference measured in the same run: 100 training steps
of the demo's model on random tokens (the machine's speed at this workload),
so that a slow or busy machine shows up in the reference too.

    python bench/bench_demo.py [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from transcend.config import RunConfig
from transcend.learner.model import GPT, GPTConfig


def reference_seconds(steps: int = 100) -> float:
    cfg = RunConfig()
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=1100, block_size=cfg.model.block_size, n_layer=cfg.model.n_layer,
                      n_head=cfg.model.n_head, n_embd=cfg.model.n_embd))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    x = torch.randint(0, 1100, (cfg.training.batch_size, cfg.model.block_size))
    t = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(m(x).flatten(0, 1), x.flatten())
        opt.zero_grad(); loss.backward(); opt.step()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    ref = reference_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "transcend.cli", "demo", "--out", str(Path(tmp) / "demo"),
                               "--json", "--quiet"], capture_output=True, text=True)
        seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"demo failed: {proc.stderr.strip()}")
    m = json.loads(proc.stdout)
    out = {"demo_s": seconds, "reference_s": ref, "ratio_to_reference": seconds / ref,
           "timings": m["timings"], "model_accuracy_greedy": m["model_accuracy"]["0"],
           "best_expert_accuracy": m["best_expert_accuracy"], "ideal_learner_accuracy": m["ideal_learner_accuracy"]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"transcend demo: {seconds:.1f} s (goal 120 s); reference (100 training steps of the demo model): "
              f"{ref:.2f} s; ratio {seconds / ref:.1f}x")
        print("  stages: " + ", ".join(f"{k} {v:.1f}" for k, v in m["timings"].items()))
    return out


if __name__ == "__main__":
    main()
