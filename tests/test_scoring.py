"""One scoring rule: with one expert nothing transcends it (no training needed)."""

import numpy as np
import pytest

from transcend.config import RunConfig
from transcend.evaluate.experts_eval import best_expert, expert_accuracy
from transcend.evaluate.ideal import ideal_accuracy
from transcend.experts.writing import write_paragraphs
from transcend.pipeline import build_panel, build_world

TAUS = [0.0, 0.1, 0.5, 1.0, 1.5]


@pytest.mark.parametrize("mode,coverage,alpha", [("denoising", 0.4, None), ("selection", 0.1, 1.0),
                                                 ("selection", 0.1, 0.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_ideal_learner_of_one_experts_corpus_is_that_expert(tmp_path, mode, coverage, alpha, seed):
    experts = {"experts": 1, "coverage": coverage, **({} if alpha is None else {"alpha": alpha})}
    cfg = RunConfig.from_dict({"mode": mode, "seed": seed, "experts": experts})  # the default world and corpus
    kg = build_world(cfg)
    panel = build_panel(cfg, kg, tmp_path)
    ideal = ideal_accuracy(write_paragraphs(panel, cfg.corpus.paragraphs, cfg.seed), kg, TAUS)
    expert = expert_accuracy(panel, TAUS)
    for tau in TAUS:
        assert ideal[tau].mean() == pytest.approx(expert[tau][0].mean(), abs=0.015), tau
    assert max(a.mean() for a in ideal.values()) - best_expert(expert)[2] <= 0.015


def test_best_expert_is_picked_over_experts_and_temperatures():
    acc = {0.0: np.array([[0.2, 0.4], [0.5, 0.5]]), 1.0: np.array([[0.9, 0.9], [0.1, 0.1]])}
    i, tau, best, per_query = best_expert(acc)
    assert (i, tau, best) == (0, 1.0, pytest.approx(0.9)) and per_query.tolist() == [0.9, 0.9]
