"""Benchmark: what two batch parts can gain at most on this machine.

A step with ``training.batch_parts = 2`` on two processes computes each half of the batch's forward and
backward pass in its own process at once. This times, on one torch thread, the demo's forward and
backward pass over the whole batch and over half of it alone, then two processes each running the half
at the same moment: the first ratio says how much less work half the batch is (at most 2x; per-operation
costs do not halve), the second whether two processes slow each other (shared caches, memory bandwidth,
two virtual cores on one physical one). Together they bound the step's speedup from the second process;
Muon's iteration, shared out matrix by matrix, and AdamW, clipping and the sum of the parts, run in the
training process alone, take the rest of the step (`bench/bench_step.py`).

    python bench/bench_half_batch.py [--steps 150] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from demo_shape import demo_step_setup

    print("load before:", open("/proc/loadavg").read().strip())
    model, _, _, x = demo_step_setup()
    half = x[: len(x) // 2]

    def ms_a_pass(xb: torch.Tensor) -> float:
        def run(n: int) -> None:
            for _ in range(n):
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(xb).flatten(0, 1), xb.flatten()).backward()
        run(5)
        t = time.perf_counter()
        run(args.steps)
        return (time.perf_counter() - t) / args.steps * 1e3

    for r in range(args.rounds):
        full, alone = ms_a_pass(x), ms_a_pass(half)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the second process: the same half at the same moment
            os.close(read)
            os.write(write, str(ms_a_pass(half)).encode())
            os._exit(0)
        os.close(write)
        mine = ms_a_pass(half)
        other = float(os.read(read, 64).decode())
        os.waitpid(pid, 0)
        print(f"round {r}: forward and backward, whole batch {full:.1f} ms, half {alone:.1f} ms alone "
              f"({full / alone:.2f}x less work); the half in two processes at once {mine:.1f} and {other:.1f} ms "
              f"({(mine + other) / 2 / alone:.2f}x its time alone)")
    print("load after:", open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
