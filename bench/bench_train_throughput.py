"""Benchmark: training throughput (tokens/s) of the lab's GPT against a Hugging Face GPT-2.

Both models have the same depth, width, heads, vocabulary and context, and are
trained by the same loop (AdamW, same batches from the default demo corpus,
same loss) in the same process. The figure is ours / GPT-2 (goal >= 1.0).
Rounds alternate between the two models and the median of each is reported,
so a noisy neighbour hurts both alike.

    python bench/bench_train_throughput.py [--steps 60] [--rounds 3] [--batch 16] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from transcend.config import RunConfig
from transcend.corpus.render import render_tokens, template_texts
from transcend.corpus.tokenizer import EOS_ID, build_tokenizer
from transcend.experts.denoising import denoising_panel
from transcend.experts.writing import write_paragraphs
from transcend.learner.model import GPT, GPTConfig
from transcend.learner.train import Batches
from transcend.pipeline import corpus_paragraphs
from transcend.world.kg import generate_graph


def tokens_per_s(forward, params, batches: Batches, steps: int, offset: int) -> float:
    opt = torch.optim.AdamW(params, lr=1e-3)
    for i in range(3):  # warm-up steps, not timed
        x, y = batches(offset + i)
        loss = F.cross_entropy(forward(x).flatten(0, 1), y.flatten(), ignore_index=-100)
        opt.zero_grad(); loss.backward(); opt.step()
    t = time.perf_counter()
    n = 0
    for i in range(steps):
        x, y = batches(offset + 3 + i)
        loss = F.cross_entropy(forward(x).flatten(0, 1), y.flatten(), ignore_index=-100)
        opt.zero_grad(); loss.backward(); opt.step()
        n += x.numel()
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> dict:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = RunConfig()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=cfg.training.batch_size)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    kg = generate_graph(cfg.world.num_entities, cfg.seed)
    panel = denoising_panel(kg, cfg.experts.experts, cfg.experts.coverage, cfg.seed)
    writing = write_paragraphs(panel, corpus_paragraphs(cfg, panel), cfg.seed)
    tok = build_tokenizer(kg.entity_names, template_texts(kg))
    stream = render_tokens(writing, kg, tok)
    m = cfg.model
    batches = Batches(stream, m.block_size, args.batch, seed=0)
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=tok.get_vocab_size(), block_size=m.block_size, n_layer=m.n_layer,
                         n_head=m.n_head, n_embd=m.n_embd))
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=m.block_size, n_embd=m.n_embd,
                                    n_layer=m.n_layer, n_head=m.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                                    attn_pdrop=0.0, tie_word_embeddings=False, bos_token_id=EOS_ID, eos_token_id=EOS_ID,
                                    attn_implementation="sdpa"))
    ours.train(); hf.train()
    runs: dict[str, list[float]] = {"ours": [], "gpt2": []}
    for r in range(args.rounds):
        runs["ours"].append(tokens_per_s(ours, ours.parameters(), batches, args.steps, 1000 * r))
        runs["gpt2"].append(tokens_per_s(lambda x: hf(input_ids=x).logits, hf.parameters(), batches,
                                         args.steps, 1000 * r))
    med = {k: statistics.median(v) for k, v in runs.items()}
    out = {"tokens_per_s": med, "ratio": med["ours"] / med["gpt2"], "rounds": runs,
           "params": {"ours": ours.num_params(), "gpt2": sum(p.numel() for p in hf.parameters())},
           "batch": args.batch, "block_size": m.block_size, "threads": torch.get_num_threads()}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"ours {med['ours']:.0f} tok/s ({out['params']['ours']} params), "
              f"HF GPT-2 {med['gpt2']:.0f} tok/s ({out['params']['gpt2']} params); "
              f"ratio {out['ratio']:.2f}x  (batch {args.batch} x {m.block_size}, {out['threads']} threads)")
    return out


if __name__ == "__main__":
    main()
