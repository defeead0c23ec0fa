"""Benchmark: training speed alone and beside one busy CPU-bound process, under the thread policy.

Goals: beside a busy process, training under the policy (``cpu_threads()`` torch threads,
``OMP_WAIT_POLICY=passive``, both set by ``transcend``) keeps at least 0.85x the speed of one thread
alone; alone, it keeps 0.85x the speed of all cores with OpenMP's default (spinning) wait policy.
Every figure is a ratio of step rates measured in this run, each in a fresh subprocess (the wait policy
is read when torch loads OpenMP). Prints the machine's load before and after.

    python bench/bench_threads.py [--steps 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WORKER = r"""
import sys, time
import torch, torch.nn.functional as F
from transcend.learner.model import GPT, GPTConfig
from transcend.learner.train import cpu_threads
threads = int(sys.argv[1]) or cpu_threads()
torch.set_num_threads(threads)
torch.manual_seed(0)
m = GPT(GPTConfig(vocab_size=1100, block_size=64, n_layer=2, n_head=4, n_embd=128))
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
x = torch.randint(0, 1100, (16, 64))
def steps(n):
    for _ in range(n):
        loss = F.cross_entropy(m(x).flatten(0, 1), x.flatten())
        opt.zero_grad(); loss.backward(); opt.step()
steps(3)
t = time.perf_counter(); steps(int(sys.argv[2])); print(time.perf_counter() - t)
"""

BUSY = "while True: pass"


def seconds(threads: int, steps: int, policy: str | None, timeout: float, label: str = "") -> float:
    """Wall seconds of ``steps`` training steps in a fresh process (threads 0 = the policy's count);
    infinite when it runs past ``timeout``."""
    s = _seconds(threads, steps, policy, timeout)
    print(f"  {label}: {s:.2f} s", file=sys.stderr, flush=True)
    return s


def _seconds(threads: int, steps: int, policy: str | None, timeout: float) -> float:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    # Importing transcend first would set the passive policy; the worker imports torch first, so the
    # environment given here is the one OpenMP sees.
    try:
        out = subprocess.run([sys.executable, "-c", WORKER, str(threads), str(steps)], env=env, check=True,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return float("inf")  # slower than the cap: the ratio below prints as 0
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=120.0, help="cap on one measurement's seconds")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from transcend.learner.train import cpu_threads
    n = cpu_threads()
    load_before = open("/proc/loadavg").read().strip()
    T = args.timeout
    alone = {"one_thread": seconds(1, args.steps, "passive", T, "alone, one thread"),
             "policy": seconds(0, args.steps, "passive", T, "alone, policy"),
             "all_cores_spinning": seconds(n, args.steps, None, T, "alone, all cores spinning")}
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(1.0)
        beside = {"policy": seconds(0, args.steps, "passive", T, "beside busy, policy"),
                  "all_cores_spinning": seconds(n, args.steps, None, T, "beside busy, all cores spinning"),
                  "one_thread": seconds(1, args.steps, "passive", T, "beside busy, one thread")}
    finally:
        busy.kill()
        busy.wait()
    out = {"cores": n, "steps": args.steps, "alone_s": alone, "beside_busy_s": beside,
           "policy_beside_busy_vs_one_thread_alone": alone["one_thread"] / beside["policy"],
           "spinning_beside_busy_vs_one_thread_alone": alone["one_thread"] / beside["all_cores_spinning"],
           "policy_alone_vs_all_cores_spinning_alone": alone["all_cores_spinning"] / alone["policy"],
           "loadavg_before": load_before, "loadavg_after": open("/proc/loadavg").read().strip()}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{n} cores, {args.steps} steps of the demo model; load before: {load_before}")
        print("  alone:       " + ", ".join(f"{k} {v:.2f} s" for k, v in alone.items()))
        print("  beside busy: " + ", ".join(f"{k} {v:.2f} s" for k, v in beside.items()))
        print(f"  policy beside a busy process / one thread alone: "
              f"{out['policy_beside_busy_vs_one_thread_alone']:.2f}x speed (goal >= 0.85)")
        print(f"  spinning all cores beside a busy process / one thread alone: "
              f"{out['spinning_beside_busy_vs_one_thread_alone']:.2f}x speed")
        print(f"  policy alone / all cores spinning alone: "
              f"{out['policy_alone_vs_all_cores_spinning_alone']:.2f}x speed (goal >= 0.85)")
        print(f"  load after: {out['loadavg_after']}")
    return out


if __name__ == "__main__":
    main()
