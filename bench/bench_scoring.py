"""Benchmark: what the fair expert scoring and the ideal learner's theory add to a default run (goal <= 5%).

Times, on the default world (``transcend run denoising --experts 10 --coverage 0.4``), the
experts' scoring at every temperature and ``theory.plurality_accuracy``, and prints them as a
share of the run's training, estimated in the same process from a reference: 20 optimizer steps of
the run's own model on batches of its own window (random tokens), scaled to the run's derived steps.

    python bench/bench_scoring.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from transcend.config import RunConfig
from transcend.evaluate.experts_eval import expert_accuracy
from transcend.pipeline import (build_corpus, build_learner, build_panel, build_world, corpus_paragraphs,
                                resolved_training)
from transcend.theory import plurality_accuracy

REFERENCE_STEPS = 20


def reference_seconds(model, batch_size: int, window: int, vocab: int, steps: int = REFERENCE_STEPS) -> float:
    """Seconds for ``steps`` AdamW steps of ``model`` on (batch_size, window) random tokens."""
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, vocab, (batch_size, window + 1))
    t = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def main() -> None:
    cfg = RunConfig.from_dict({"mode": "denoising", "experts": {"experts": 10, "coverage": 0.4}})
    kg = build_world(cfg)
    panel = build_panel(cfg, kg)
    taus = sorted(set(cfg.eval.temperatures) | {1.0})
    t = time.perf_counter()
    expert_accuracy(panel, taus)
    experts_s = time.perf_counter() - t
    t = time.perf_counter()
    plurality_accuracy(panel, corpus_paragraphs(cfg, panel), taus, seed=cfg.seed)
    theory_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        corpus = build_corpus(cfg, kg, panel, Path(tmp) / "corpus", log=lambda msg: None)
        model, stream, special, _ = build_learner(cfg, kg, panel, corpus)
        tc, _ = resolved_training(cfg, kg, corpus, model, stream, special)
        ref = reference_seconds(model, tc.batch_size * tc.gradient_accumulation, tc.window,
                                corpus.manifest["vocab_size"])
    train_s = ref * tc.steps / REFERENCE_STEPS
    added = experts_s + theory_s
    print(f"fair expert scoring {experts_s:.2f} s, theory {theory_s:.2f} s; reference {REFERENCE_STEPS} training steps "
          f"{ref:.2f} s -> estimated training of {tc.steps} steps {train_s:.0f} s; added share {added / train_s:.1%}")


if __name__ == "__main__":
    main()
