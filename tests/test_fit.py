"""The fit gap (how much of what its data can teach a model has not learnt) and training in cycles until it
is small."""
import numpy as np
import pytest
import torch
from dataclasses import dataclass

from transcend.config import TrainingConfig
from transcend.corpus.render import template_texts
from transcend.corpus.tokenizer import ENTITY_OFFSET, build_tokenizer
from transcend.errors import TranscendError
from transcend.evaluate.fit import FitGap
from transcend.evaluate.ideal import answer_counts
from transcend.learner.model import GPT, GPTConfig
from transcend.learner.train import load_checkpoint, train


@dataclass
class _Shape:
    vocab_size: int
    block_size: int = 64


class TableModel(torch.nn.Module):
    """Answers each prompt with the next-token log-probabilities of a table row (others: uniform)."""

    def __init__(self, prompts, table: np.ndarray):
        super().__init__()
        self.cfg = _Shape(table.shape[1])
        self.rows = {tuple(p.tolist()): i for i, p in enumerate(prompts)}
        self.table = torch.tensor(table, dtype=torch.float32)

    def forward(self, x):
        out = torch.zeros(x.shape[0], x.shape[1], self.cfg.vocab_size)
        for b, row in enumerate(x.tolist()):
            out[b, -1] = self.table[self.rows[tuple(row)]]
        return out


def test_fit_gap_is_zero_at_the_mixture_one_at_the_relations_tails(small_kg, small_writing):
    kg, w = small_kg, small_writing
    tok = build_tokenizer(kg.entity_names, template_texts(kg))
    fg = FitGap(kg, tok, w, torch.device("cpu"))
    q, t, c = answer_counts(w, kg)
    written, row = np.unique(q, return_inverse=True)
    V, E = tok.get_vocab_size(), kg.num_entities
    mix = np.full((len(written), V), 1e-12)
    np.add.at(mix, (row, t + ENTITY_OFFSET), c)
    rel_of = kg.queries[1][written]
    pooled = np.full((len(kg.relations), V), 1e-12)
    np.add.at(pooled, (kg.queries[1][q], t + ENTITY_OFFSET), c)
    relation = pooled[rel_of]
    assert fg.relation_only_nats > 0.5  # heads tell a lot on this graph
    norm = lambda a: np.log(a / a.sum(1, keepdims=True))
    assert fg(TableModel(fg.prompts, norm(mix))) == pytest.approx(0.0, abs=1e-6)
    assert fg(TableModel(fg.prompts, norm(relation))) == pytest.approx(1.0, abs=1e-6)
    halfway = TableModel(fg.prompts, norm(0.5 * mix / mix.sum(1, keepdims=True)
                                           + 0.5 * relation / relation.sum(1, keepdims=True)))
    assert 0.0 < fg(halfway) < 1.0
    # mass on a token that is no entity is lost, not renormalised away
    leaky = norm(mix).copy()
    leaky[:, 0] = 0.0  # log 1: as much on the padding token as on all entities together
    assert fg.excess_nats(TableModel(fg.prompts, leaky)) == pytest.approx(np.log(2), rel=1e-6)


STREAM = np.tile([5, 6, 7, 3], 64)  # 64 sentences ended by token 3: a derived pass is one step


def _tiny():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=8, block_size=16, n_layer=1, n_head=2, n_embd=16))


def _cfg(**kw):
    return TrainingConfig(batch_size=64, warmup_steps=2, checkpoint_every=1000, min_steps=6, passes=0.01, **kw)


def test_training_runs_more_cycles_while_the_fit_gap_is_above_its_target(tmp_path):
    def gaps(*values):
        it = iter(values)
        return lambda model: next(it)

    said = []
    out = train(_tiny(), STREAM, _cfg(), tmp_path / "a", boundary_ids=(3,), progress=False,
                fit=gaps(0.9, 0.5, 0.1), say=said.append)
    assert (out["steps"], out["cycles"], out["fit_gaps"]) == (18, 3, [0.9, 0.5, 0.1])
    assert len(said) == 3 and "one more cycle" in said[0] and "has fit its data" in said[2]
    # each cycle is the schedule again from its warm-up
    from transcend.learner.log import read_log
    m = _tiny()
    from transcend.learner.log import TrainLog
    train(m, STREAM, _cfg(), tmp_path / "b", boundary_ids=(3,), progress=False, fit=gaps(0.9, 0.9, 0.9, 0.9),
          log=TrainLog(tmp_path / "b.jsonl"), say=said.append)
    lr = [r["lr"] for r in read_log(tmp_path / "b.jsonl")]
    assert len(lr) == 24 and lr[0] == lr[6] == lr[12] == lr[18] and lr[5] < lr[1]
    assert "not reached in training.max_cycles = 4" in said[-1]
    assert load_checkpoint(tmp_path / "b" / "latest.pt")["fit_gaps"] == [0.9] * 4
    # given steps, or a fit_gap of 0, are one cycle whatever the fit
    for cfg in (_cfg(steps=6), _cfg(fit_gap=0.0)):
        out = train(_tiny(), STREAM, cfg, tmp_path / str(cfg.steps), boundary_ids=(3,), progress=False,
                    fit=gaps(0.9))
        assert (out["steps"], out["cycles"], out["fit_gaps"]) == (6, 1, [])
    with pytest.raises(TranscendError, match="training.fit_gap"):
        TrainingConfig(fit_gap=1.0)
    with pytest.raises(TranscendError, match="training.max_cycles"):
        TrainingConfig(max_cycles=0)


def test_a_run_interrupted_at_a_cycles_end_makes_the_same_decisions(tmp_path):
    def fit(model):  # a pure function of the weights, as the real gap is
        return 0.3 + 0.01 * float(next(model.parameters()).detach().sum())

    whole = _tiny()
    ref = train(whole, STREAM, _cfg(fit_gap=0.2), tmp_path / "whole", boundary_ids=(3,), progress=False, fit=fit)
    for stop in (6, 9):  # at the end of the first cycle, before its decision; inside the second
        part = _tiny()
        first = train(part, STREAM, _cfg(fit_gap=0.2), tmp_path / str(stop), boundary_ids=(3,), progress=False,
                      fit=fit, stop_after=stop)
        assert first["steps"] == stop
        part = _tiny()
        rest = train(part, STREAM, _cfg(fit_gap=0.2), tmp_path / str(stop), boundary_ids=(3,), progress=False,
                     fit=fit, resume=True)
        assert (rest["cycles"], rest["fit_gaps"]) == (ref["cycles"], ref["fit_gaps"]) and ref["cycles"] == 4
        for a, b in zip(whole.state_dict().values(), part.state_dict().values()):
            assert torch.equal(a, b)
