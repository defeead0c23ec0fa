"""Benchmark: where one training step of the demo's shape spends its time, on one torch thread.

Times each phase of the recipe's step (zeroing, forward, backward, clipping, AdamW, Muon) over
``--steps`` steps, and the forward pass's floating-point rate against a plain matrix product of the
output head's shape measured in the same run: a ratio near 1 says the step is bound by arithmetic, not
by per-operation overhead, so only fewer FLOPs (a smaller model, fewer tokens) make it faster. Also
times torch's own ``torch.optim.Muon`` (its Newton-Schulz iteration in bfloat16) on the same matrices
and gradients, against the lab's (float32 on CPU): on a CPU without bfloat16 arithmetic torch's is
many times slower. With ``--compile``, also the same step through ``torch.compile`` (inductor's
generated C++ kernels on CPU): its compile time and its step against the eager one of the same run.
With ``--heads N``, also the step of the same model with N attention heads against the default's,
the two timed in alternating rounds of the same run.

    python bench/bench_step.py [--steps 100] [--compile] [--heads 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--compile", action="store_true", help="also time the step through torch.compile")
    ap.add_argument("--heads", type=int, default=None, help="also time the step with this many attention heads")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from demo_shape import demo_step_setup

    load_before = open("/proc/loadavg").read().strip()
    # The default world's model and batch: 2 x 128, 64 windows of 16 tokens.
    model, opts, tcfg, x = demo_step_setup()
    gcfg, (rows, cols) = model.cfg, x.shape
    phases = dict.fromkeys(("zero", "forward", "backward", "clip", "adamw", "muon"), 0.0)

    def steps(n: int, record: bool) -> None:
        for _ in range(n):
            t = [time.perf_counter()]
            for o in opts:
                o.zero_grad(set_to_none=True)
            t.append(time.perf_counter())
            loss = F.cross_entropy(model(x).flatten(0, 1), x.flatten())
            t.append(time.perf_counter())
            loss.backward()
            t.append(time.perf_counter())
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
            t.append(time.perf_counter())
            opts[0].step()
            t.append(time.perf_counter())
            opts[1].step()
            t.append(time.perf_counter())
            if record:
                for k, a, b in zip(phases, t, t[1:]):
                    phases[k] += b - a

    steps(5, False)
    steps(args.steps, True)
    step_s = sum(phases.values()) / args.steps
    # Forward multiply-adds per token: the blocks' 12 d^2 per layer plus the head's d * vocab.
    d, tokens = gcfg.n_embd, rows * cols
    fwd_flops = 2 * tokens * (12 * d * d * gcfg.n_layer + d * gcfg.vocab_size)
    a, w = torch.randn(tokens, d), torch.randn(d, gcfg.vocab_size)
    for _ in range(5):
        a @ w
    t = time.perf_counter()
    for _ in range(args.steps):
        a @ w
    matmul_rate = 2 * tokens * d * gcfg.vocab_size * args.steps / (time.perf_counter() - t)
    # torch's Muon on copies of the same matrices, with the last step's gradients.
    copies = [p.detach().clone().requires_grad_() for p in model.hidden_matrices()]
    for c, p in zip(copies, model.hidden_matrices()):
        c.grad = p.grad.clone()
    theirs = torch.optim.Muon(copies, lr=tcfg.muon_lr, momentum=0.95, adjust_lr_fn="match_rms_adamw")
    theirs.step()
    t = time.perf_counter()
    for _ in range(args.steps):
        theirs.step()
    torch_muon_s = (time.perf_counter() - t) / args.steps
    forward_rate = fwd_flops * args.steps / phases["forward"]
    out = {"steps": args.steps, "step_ms": 1e3 * step_s,
           "share": {k: v / sum(phases.values()) for k, v in phases.items()},
           "forward_gflops": forward_rate / 1e9, "matmul_gflops": matmul_rate / 1e9,
           "forward_vs_matmul": forward_rate / matmul_rate,
           "muon_ms": 1e3 * phases["muon"] / args.steps, "torch_muon_ms": 1e3 * torch_muon_s,
           "torch_muon_vs_lab": torch_muon_s / (phases["muon"] / args.steps),
           "loadavg_before": load_before}
    if args.compile:
        out.update(compiled_step(args.steps))
        out["compiled_vs_eager"] = out["compiled_step_ms"] / out["step_ms"]
    if args.heads:
        out.update(heads_step(args.heads, args.steps))
    out["loadavg_after"] = open("/proc/loadavg").read().strip()
    if args.json:
        print(json.dumps(out))
        return out
    print(f"demo shape, one thread, {args.steps} steps: {out['step_ms']:.1f} ms a step; load before: {load_before}")
    print("  share of the step: " + ", ".join(f"{k} {v:.1%}" for k, v in out["share"].items()))
    print(f"  forward {out['forward_gflops']:.1f} GFLOP/s against a plain head-shaped matmul's "
          f"{out['matmul_gflops']:.1f}: {out['forward_vs_matmul']:.2f}x")
    print(f"  Muon: the lab's (float32) {out['muon_ms']:.1f} ms a step, torch's (bfloat16) "
          f"{out['torch_muon_ms']:.1f} ms: {out['torch_muon_vs_lab']:.1f}x the lab's")
    if args.compile:
        print(f"  torch.compile: {out['compile_s']:.1f} s to compile, then {out['compiled_step_ms']:.1f} ms a step: "
              f"{out['compiled_vs_eager']:.2f}x the eager step")
    if args.heads:
        print(f"  {args.heads} heads: {out['heads_step_ms']:.1f} ms a step against the default's {out['default_heads_step_ms']:.1f} "
              f"in alternating rounds: {out['heads_vs_default']:.2f}x")
    print(f"  load after: {out['loadavg_after']}")
    return out


def compiled_step(n: int) -> dict:
    """The demo's whole step with the model through ``torch.compile``: seconds of its first three steps
    (the compile) and milliseconds a step after them."""
    from demo_shape import demo_step, demo_step_setup

    model, opts, tcfg, x = demo_step_setup()
    compiled = torch.compile(model)

    def steps(k: int) -> float:
        t = time.perf_counter()
        for _ in range(k):
            demo_step(model, opts, tcfg, x, compiled)
        return time.perf_counter() - t

    compile_s = steps(3)
    return {"compile_s": compile_s, "compiled_step_ms": 1e3 * steps(n) / n}


def heads_step(n_head: int, n: int) -> dict:
    """The demo's step with ``n_head`` attention heads against the default's, timed in five alternating
    rounds of ``n / 5`` steps each (so a change of the machine's load falls on both alike)."""
    from demo_shape import demo_step, demo_step_setup

    setups = {"heads": demo_step_setup(n_head), "default_heads": demo_step_setup()}
    spent = dict.fromkeys(setups, 0.0)
    for s in setups.values():
        for _ in range(3):
            demo_step(*s)
    k = max(1, n // 5)
    for _ in range(5):
        for name, s in setups.items():
            t = time.perf_counter()
            for _ in range(k):
                demo_step(*s)
            spent[name] += time.perf_counter() - t
    ms = {f"{name}_step_ms": 1e3 * v / (5 * k) for name, v in spent.items()}
    return {**ms, "heads_vs_default": ms["heads_step_ms"] / ms["default_heads_step_ms"]}


if __name__ == "__main__":
    main()
