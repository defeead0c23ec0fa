"""Benchmark: what two batch parts can gain at most on this machine.

A step with ``training.batch_parts = 2`` on two processes computes each half of the batch's forward and
backward pass in its own process at once. This times, on one torch thread, the demo's forward and
backward pass over the whole batch and over half of it alone, then two processes each running the half
at the same moment: the first ratio says how much less work half the batch is (at most 2x; per-operation
costs do not halve), the second whether two processes slow each other (shared caches, memory bandwidth,
two virtual cores on one physical one). Together they bound the step's speedup from the second process;
Muon's iteration, shared out matrix by matrix, and AdamW, clipping and the sum of the parts, run in the
training process alone, take the rest of the step (`bench/bench_step.py`).

    python bench/bench_half_batch.py [--steps 150] [--rounds 2] [--profile]

``--profile`` also splits the half batch's forward and backward pass by operation (``torch.profiler``,
one thread): the share of the pass in the matrix products, attention, the loss and the rest, and the
rate of the matrix products in GFLOP/s (the profiler's count of their multiply-adds), which says whether
the pass is bound by arithmetic or by the operations around it.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F


def passes(model: torch.nn.Module, xb: torch.Tensor, n: int) -> None:
    """``n`` forward and backward passes over the windows ``xb`` (no optimizer)."""
    for _ in range(n):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb).flatten(0, 1), xb.flatten()).backward()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="also split the half batch's pass by operation")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from demo_shape import demo_step_setup

    print("load before:", open("/proc/loadavg").read().strip())
    model, _, _, x = demo_step_setup()
    half = x[: len(x) // 2]

    def ms_a_pass(xb: torch.Tensor) -> float:
        passes(model, xb, 5)
        t = time.perf_counter()
        passes(model, xb, args.steps)
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
    if args.profile:
        profile(model, half, args.steps)
    print("load after:", open("/proc/loadavg").read().strip())


GROUPS = {"matrix products": ("aten::mm", "aten::addmm", "aten::bmm"),
          "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu",
                        "aten::_scaled_dot_product_flash_attention_for_cpu_backward"),
          "loss": ("aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
                   "aten::nll_loss_backward")}


def profile(model: torch.nn.Module, xb: torch.Tensor, steps: int) -> None:
    """The half batch's forward and backward pass split by operation (self time of each aten op)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    passes(model, xb, 5)
    with torch_profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        passes(model, xb, steps)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shares = {g: sum(e.self_cpu_time_total for e in events if e.key in names) / total for g, names in GROUPS.items()}
    mm = [e for e in events if e.key in GROUPS["matrix products"]]
    flops = sum(e.flops for e in mm)
    gflops = flops / (sum(e.self_cpu_time_total for e in mm) * 1e-6) / 1e9
    print(f"profile of the half batch's pass ({steps} passes, {total / steps / 1e3:.1f} ms each under the "
          f"profiler): " + ", ".join(f"{g} {v:.0%}" for g, v in shares.items())
          + f", the rest {1 - sum(shares.values()):.0%}; the matrix products, {flops / steps / 1e9:.2f}"
          f" GFLOP a pass, run at {gflops:.0f} GFLOP/s")
    top = sorted((e for e in events if not any(e.key in n for n in GROUPS.values())),
                 key=lambda e: -e.self_cpu_time_total)[:6]
    print("  the rest's largest: " + ", ".join(f"{e.key} {e.self_cpu_time_total / total:.1%}" for e in top))


if __name__ == "__main__":
    main()
