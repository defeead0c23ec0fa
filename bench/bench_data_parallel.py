"""Benchmark: the demo's step split in two halves on two Python threads, against the one-thread step.

A data-parallel step whose result does not depend on the machine: the batch is always split in two
halves, each half's gradients are taken on its own (``torch.autograd.grad``, one torch thread) and summed
in a fixed order, so one thread computing both halves in turn and two threads computing one each give
the same bits (checked here). The question is whether the two threads are faster than one alone, and
whether they keep one thread's speed beside a busy process (the goals of ``bench_threads.py``). Every
variant uses the recipe's optimizers (``make_optimizers``: Muon + AdamW) and clipping; "threads+muon"
also runs Muon's matrices in two threads.

    python bench/bench_data_parallel.py [--steps 30] [--busy]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

import torch
import torch.nn.functional as F

from demo_shape import demo_shape
from transcend.config import RunConfig
from transcend.learner.model import GPT
from transcend.learner.train import Muon, hidden_matrices, make_optimizers

GCFG, ROWS, COLS = demo_shape()  # the demo: its model, 64 windows of 16 tokens a step
VOCAB = GCFG.vocab_size


def grads_of(model: GPT, x: torch.Tensor, y: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
    loss = F.cross_entropy(model(x).view(-1, VOCAB), y.reshape(-1), reduction="sum") / n
    return torch.autograd.grad(loss, list(model.parameters()))


def run(mode: str, steps: int, batches: torch.Tensor) -> tuple[float, torch.Tensor]:
    cfg = RunConfig()
    torch.manual_seed(0)
    m = GPT(GCFG)
    optims, params = make_optimizers(m, cfg.training, torch.device("cpu")), list(m.parameters())
    split: list[Muon] = []
    if mode == "threads+muon":
        hm = hidden_matrices(m)
        split = [Muon(ps, lr=cfg.training.muon_lr, weight_decay=0.0, momentum=0.95, adjust_lr_fn="match_rms_adamw")
                 for ps in (hm[0::2], hm[1::2])]
        optims = optims[:1]
    t = time.perf_counter()
    for s in range(steps):
        b = batches[s % len(batches)]
        x, y, n = b[:, :-1], b[:, 1:], b[:, 1:].numel()
        if mode == "one":
            gs = grads_of(m, x, y, n)
        else:
            halves = [(x[:ROWS // 2], y[:ROWS // 2]), (x[ROWS // 2:], y[ROWS // 2:])]
            out: list = [None, None]

            def work(i: int) -> None:
                out[i] = grads_of(m, *halves[i], n)
            if mode == "halves":
                work(0), work(1)
            else:
                th = threading.Thread(target=work, args=(1,))
                th.start(), work(0), th.join()
            gs = tuple(a + c for a, c in zip(*out))
        for p, g in zip(params, gs):
            p.grad = g
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for opt in optims:
            opt.step()
        if split:
            th = threading.Thread(target=split[1].step)
            th.start(), split[0].step(), th.join()
    return time.perf_counter() - t, torch.cat([p.detach().flatten() for p in params])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--busy", action="store_true", help="also measure beside one busy CPU-bound process")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    batches = torch.randint(0, VOCAB, (50, ROWS, COLS + 1), generator=torch.Generator().manual_seed(0))
    same = torch.equal(run("halves", 3, batches)[1], run("threads", 3, batches)[1])
    print(f"{os.cpu_count()} cores, {args.steps} steps of the demo's step; load before: {open('/proc/loadavg').read().strip()}")
    print(f"  two halves on one thread and on two threads give the same weights: {same}")
    out = {}
    for where in (["alone", "beside busy"] if args.busy else ["alone"]):
        busy = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if where != "alone" else None)
        try:
            best = {mode: min(run(mode, args.steps, batches)[0] for _ in range(2))
                    for mode in ("one", "halves", "threads", "threads+muon")}
        finally:
            if busy:
                busy.kill()
        out[where] = best
        print(f"  {where}: " + ", ".join(f"{k} {v / args.steps * 1000:.1f} ms a step" for k, v in best.items()))
    ref = out["alone"]["one"]
    for where, best in out.items():
        for mode in ("threads", "threads+muon"):
            print(f"  {mode} {where} / one thread alone: {ref / best[mode]:.2f}x speed")
    print(f"  load after: {open('/proc/loadavg').read().strip()}")
    return out


if __name__ == "__main__":
    main()
