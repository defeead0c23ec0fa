"""Benchmark: what the fair expert scoring and the ideal learner's theory add to a default run (goal <= 5%).

Times, on the default world (``transcend run denoising --experts 10 --coverage 0.4``), the
experts' scoring at every temperature and ``theory.plurality_accuracy``, and prints them as a
share of the run's training, estimated in the same process from a reference: 100 training steps
of the default model (bench/bench_demo.py's reference), scaled to the default number of steps.

    python bench/bench_scoring.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_demo import reference_seconds  # noqa: E402

from transcend.config import RunConfig  # noqa: E402
from transcend.evaluate.experts_eval import expert_accuracy  # noqa: E402
from transcend.evaluate.ideal import writes_per_query  # noqa: E402
from transcend.experts.writing import write_paragraphs  # noqa: E402
from transcend.pipeline import build_panel, build_world, corpus_paragraphs  # noqa: E402
from transcend.theory import plurality_accuracy  # noqa: E402


def main() -> None:
    cfg = RunConfig.from_dict({"mode": "denoising", "experts": {"experts": 10, "coverage": 0.4}})
    kg = build_world(cfg)
    panel = build_panel(cfg, kg)
    writes = writes_per_query(write_paragraphs(panel, corpus_paragraphs(cfg, panel), cfg.seed), kg)
    taus = sorted(set(cfg.eval.temperatures) | {1.0})
    t = time.perf_counter()
    expert_accuracy(panel, taus)
    experts_s = time.perf_counter() - t
    t = time.perf_counter()
    plurality_accuracy(panel, writes, corpus_paragraphs(cfg, panel), taus, seed=cfg.seed)
    theory_s = time.perf_counter() - t
    ref = reference_seconds(100)
    train_s = ref * cfg.training.steps / 100
    added = experts_s + theory_s
    print(f"fair expert scoring {experts_s:.2f} s, theory {theory_s:.2f} s; reference 100 training steps {ref:.2f} s "
          f"-> estimated training of {cfg.training.steps} steps {train_s:.0f} s; added share {added / train_s:.1%}")


if __name__ == "__main__":
    main()
