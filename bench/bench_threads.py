"""Benchmark: training speed alone and beside one busy CPU-bound process, under the thread policy.

Goals: beside a busy process, training under the policy (for the lab's small models one torch thread
in each of ``training_processes`` processes, which compute a step's batch parts at once; for large
ones all cores in one process; ``OMP_WAIT_POLICY=passive``, set by ``transcend``) keeps at least
0.85x the speed of one thread alone; alone, it keeps 0.85x the speed of the faster of all cores with the passive and with OpenMP's default (spinning) wait policy. Measured on
the demo's model and batch and on a model above the small-model bound (19 M parameters).
Every figure is a ratio of step rates measured in this run, each a ``train`` call in a fresh subprocess
(the wait policy is read when torch loads OpenMP) of three steps more than counted, its wall seconds
scaled to the steps counted. Prints the machine's load before and after.

    python bench/bench_threads.py [--steps 40] [--shape demo|large|both] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WORKER = r"""
import sys, tempfile, time
import numpy as np
import torch
from pathlib import Path
from transcend.config import TrainingConfig
from demo_shape import VOCAB, demo_shape
from transcend.learner.model import GPT, GPTConfig
from transcend.learner.train import train
threads, steps, shape = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
if shape == "demo":  # the default world's model and batch: 2 x 128, 64 windows of 16 tokens
    gcfg, rows, cols = demo_shape()
else:  # a model above SMALL_MODEL_PARAMETERS: 6 x 512 (~19 M parameters), 16 windows of 64 tokens
    gcfg, rows, cols = GPTConfig(vocab_size=VOCAB, block_size=64, n_layer=6, n_head=8, n_embd=512), 16, 64
stream = np.random.default_rng(0).integers(4, gcfg.vocab_size, size=100_000)
stream[::10] = 3  # sentences of ten tokens
# threads 0: the policy's (training_threads, training_processes); else that many threads in one process
tcfg = TrainingConfig(steps=steps + 3, batch_size=rows, window=cols, threads=threads, warmup_steps=1)
m = GPT(gcfg)
t = time.perf_counter()
train(m, stream, tcfg, Path(tempfile.mkdtemp()), progress=False, boundary_ids=(3,))
print((time.perf_counter() - t) * steps / (steps + 3))
"""

BUSY = "while True: pass"


def seconds(threads: int, steps: int, policy: str | None, timeout: float, label: str = "",
            shape: str = "demo") -> float:
    """Wall seconds of ``steps`` training steps of ``shape`` in a fresh process (threads 0 = the policy's
    count); infinite when it runs past ``timeout``."""
    s = _seconds(threads, steps, policy, timeout, shape)
    print(f"  {label}: {s:.2f} s", file=sys.stderr, flush=True)
    return s


def _seconds(threads: int, steps: int, policy: str | None, timeout: float, shape: str) -> float:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("OMP_WAIT_POLICY", None)
    here = os.path.dirname(os.path.abspath(__file__))  # the worker imports demo_shape from here
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (here, env.get("PYTHONPATH"))))
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    # Importing transcend first would set the passive policy; the worker imports torch first, so the
    # environment given here is the one OpenMP sees.
    try:
        out = subprocess.run([sys.executable, "-c", WORKER, str(threads), str(steps), shape], env=env, check=True,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return float("inf")  # slower than the cap: the ratio below prints as 0
    return float(out.stdout.strip().splitlines()[-1])


def measure(shape: str, n: int, steps: int, T: float) -> dict:
    """The ratios of one shape: alone, then beside one busy process."""
    alone = {"one_thread": seconds(1, steps, "passive", T, f"{shape} alone, one thread", shape),
             "policy": seconds(0, steps, "passive", T, f"{shape} alone, policy", shape),
             "all_cores_passive": seconds(n, steps, "passive", T, f"{shape} alone, all cores passive", shape),
             "all_cores_spinning": seconds(n, steps, None, T, f"{shape} alone, all cores spinning", shape)}
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(1.0)
        beside = {"policy": seconds(0, steps, "passive", T, f"{shape} beside busy, policy", shape),
                  "all_cores_passive": seconds(n, steps, "passive", T, f"{shape} beside busy, all cores passive",
                                               shape),
                  "one_thread": seconds(1, steps, "passive", T, f"{shape} beside busy, one thread", shape)}
    finally:
        busy.kill()
        busy.wait()
    best_all = min(alone["all_cores_passive"], alone["all_cores_spinning"])
    return {"alone_s": alone, "beside_busy_s": beside,
            "policy_beside_busy_vs_one_thread_alone": alone["one_thread"] / beside["policy"],
            "all_cores_beside_busy_vs_one_thread_alone": alone["one_thread"] / beside["all_cores_passive"],
            "policy_alone_vs_all_cores_alone": best_all / alone["policy"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="steps of the demo shape (the large shape: a quarter)")
    ap.add_argument("--timeout", type=float, default=120.0, help="cap on one measurement's seconds")
    ap.add_argument("--shape", choices=("demo", "large", "both"), default="both", help="which model to time")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    shapes = ("demo", "large") if args.shape == "both" else (args.shape,)
    from transcend.learner.train import cpu_threads
    n = cpu_threads()
    load_before = open("/proc/loadavg").read().strip()
    out = {"cores": n, "steps": args.steps}
    for shape in shapes:
        out[shape] = measure(shape, n, args.steps if shape == "demo" else max(1, args.steps // 4), args.timeout)
    out.update(loadavg_before=load_before, loadavg_after=open("/proc/loadavg").read().strip())
    if args.json:
        print(json.dumps(out))
        return out
    counts = {"demo": f"{args.steps} steps of the demo shape", "large": f"{max(1, args.steps // 4)} of the large one"}
    print(f"{n} cores, {', '.join(counts[s] for s in shapes)}; load before: {load_before}")
    for shape in shapes:
        r = out[shape]
        print(f"{shape}:")
        print("  alone:       " + ", ".join(f"{k} {v:.2f} s" for k, v in r["alone_s"].items()))
        print("  beside busy: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["beside_busy_s"].items()))
        print(f"  policy beside a busy process / one thread alone: "
              f"{r['policy_beside_busy_vs_one_thread_alone']:.2f}x speed (goal >= 0.85)")
        print(f"  all cores (passive) beside a busy process / one thread alone: "
              f"{r['all_cores_beside_busy_vs_one_thread_alone']:.2f}x speed")
        print(f"  policy alone / the faster all-cores policy alone: "
              f"{r['policy_alone_vs_all_cores_alone']:.2f}x speed (goal >= 0.85)")
    print(f"load after: {out['loadavg_after']}")
    return out


if __name__ == "__main__":
    main()
