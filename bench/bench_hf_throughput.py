"""Benchmark: training throughput and MFU of ``hf-config:gpt2`` against the lab's GPT at the same shape.

Both models are built as the pipeline builds them (the lab's ``GPT``; ``transformers``' GPT-2 through
``learner.hf.from_config``), at one shape, and trained by the same step: AdamW (fused on CUDA), bf16
autocast on CUDA, random token windows. Rounds alternate between the two models and the median of each
is reported; the figure is hf-config:gpt2 / lab GPT tokens/s, measured in the same run.

MFU = 6·N·tokens/s (N: parameters without the embeddings) + attention 12·L·d·T per token, over the
device's peak: ``--peak-tflops`` (for a CUDA device a table of known GPUs' dense bf16 peaks is used).

    python bench/bench_hf_throughput.py                 # CPU: a small shape (4 layers, d 256, T 128)
    python bench/bench_hf_throughput.py --shape 124m    # GPT-2 small: 12 layers, d 768, 12 heads, T 1024
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

from transcend.config import ModelConfig
from transcend.learner.hf import HFCausalLM, HFModelConfig, from_config
from transcend.learner.model import GPT, GPTConfig

SHAPES = {"small": dict(n_layer=4, n_head=4, n_embd=256, block_size=128, vocab=8192, batch=8),
          "124m": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab=50257, batch=24)}
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0}


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    return None


def flops_per_token(model: torch.nn.Module, n_layer: int, n_embd: int, T: int) -> float:
    emb = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    n = sum(p.numel() for p in model.parameters()) - emb
    return 6 * n + 12 * n_layer * n_embd * T


def tokens_per_s(model, device, vocab, T, batch, steps, seed) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    gen = torch.Generator().manual_seed(seed)
    data = torch.randint(0, vocab, (steps + 2, batch, T + 1), generator=gen)
    amp = dict(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step(i):
        xy = data[i].to(device)
        with torch.autocast(**amp):
            logits = model(xy[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), xy[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(2):  # warm-up, not timed
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(steps):
        step(2 + i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch * T / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=SHAPES, default=None, help="small (CPU default) or 124m (GPU default)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shape = SHAPES[args.shape or ("124m" if device.type == "cuda" else "small")]
    steps = args.steps or (20 if device.type == "cuda" else 5)
    batch = args.batch or shape["batch"]
    T, V = shape["block_size"], shape["vocab"]
    sizes = ModelConfig(n_layer=shape["n_layer"], n_head=shape["n_head"], n_embd=shape["n_embd"], block_size=T)
    torch.manual_seed(0)
    models = {"lab_gpt": GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=sizes.n_layer, n_head=sizes.n_head,
                                       n_embd=sizes.n_embd)),
              "hf_gpt2": HFCausalLM(from_config("gpt2", sizes, V, 0, 0), HFModelConfig("hf-config:gpt2", V, T))}
    runs: dict[str, list[float]] = {k: [] for k in models}
    for r in range(args.rounds):
        for k, m in models.items():
            m.to(device).train()
            runs[k].append(tokens_per_s(m, device, V, T, batch, steps, seed=r))
    med = {k: statistics.median(v) for k, v in runs.items()}
    peak = peak_tflops(device, args.peak_tflops)
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "threads": torch.get_num_threads(), "shape": {**shape, "batch": batch}, "steps": steps,
              "rounds": args.rounds, "tokens_per_s": med,
              "parameters": {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()},
              "ratio_hf_gpt2_over_lab": med["hf_gpt2"] / med["lab_gpt"],
              "loadavg": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None}
    if peak:
        result["mfu"] = {k: flops_per_token(models[k], sizes.n_layer, sizes.n_embd, T) * med[k] / (peak * 1e12)
                         for k in models}
    if args.json:
        print(json.dumps(result))
    else:
        for k in models:
            mfu = f"  MFU {result['mfu'][k]:.1%}" if peak else ""
            print(f"{k:8} {med[k]:12,.0f} tokens/s  ({result['parameters'][k]:,} parameters){mfu}")
        print(f"hf-config:gpt2 / lab GPT: {result['ratio_hf_gpt2_over_lab']:.2f}x  on {result['device']}, "
              f"shape {result['shape']}, load {result['loadavg']}")
    return result


if __name__ == "__main__":
    main()
