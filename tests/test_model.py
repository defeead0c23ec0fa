import math

import numpy as np
import pytest
import torch

from transcend.errors import TranscendError
from transcend.learner.model import GPT, GPTConfig
from transcend.config import TrainingConfig
from transcend.learner.train import (Batches, load_checkpoint, lr_at, make_optimizers, sentence_window, train,
                                    window_starts)


def test_forward_shape_and_causality():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)).eval()
    x = torch.randint(0, 50, (2, 16))
    y = m(x)
    assert y.shape == (2, 16, 50)
    x2 = x.clone()
    x2[:, 10:] = (x2[:, 10:] + 1) % 50  # change the future
    assert torch.allclose(m(x2)[:, :10], y[:, :10], atol=1e-5)
    assert not torch.allclose(m(x2)[:, 10:], y[:, 10:])


def test_rotary_scores_depend_only_on_relative_position():
    from transcend.learner.model import apply_rotary, rotary_tables
    cos, sin = rotary_tables(32, 8)
    torch.manual_seed(0)
    q, k = torch.randn(8), torch.randn(8)

    def score(i, j):
        qi = apply_rotary(q.view(1, 1, 1, 8), cos[i:i + 1], sin[i:i + 1]).flatten()
        kj = apply_rotary(k.view(1, 1, 1, 8), cos[j:j + 1], sin[j:j + 1]).flatten()
        return float(qi @ kj)

    assert score(5, 3) == pytest.approx(score(25, 23), abs=1e-4)
    assert score(5, 3) != pytest.approx(score(5, 1), abs=1e-3)


def test_lr_schedule_warms_up_and_decays():
    cfg = TrainingConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=0.01)
    assert lr_at(50, cfg) < lr_at(20, cfg)


def test_batches_are_a_function_of_step():
    stream = np.array([1, 5, 6, 7, 1, 8, 9, 1, 4] * 20)
    b = Batches(stream, block_size=8, batch_size=4, seed=3)
    x1, y1 = b(7)
    x2, y2 = Batches(stream, block_size=8, batch_size=4, seed=3)(7)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert (x1[:, 0] == 1).all()  # windows start at paragraph boundaries
    target = y1[:, :-1] != -100
    assert torch.equal(x1[:, 1:][target], y1[:, :-1][target])


def test_windows_cover_every_token_of_long_paragraphs():
    """A 300-token paragraph of 10-token sentences, and one of 300 tokens without any sentence end: every
    token lies inside some window with at least half a window of its own paragraph before it or its start."""
    block, dot = 32, 7
    sentence = [5] * 9 + [dot]
    stream = np.array([1] + sentence * 30 + [1] + [6] * 300 + [1, 5, dot], dtype=np.int64)
    for ids in ((dot,), ()):
        sentence, other = window_starts(stream, block, ids)
        starts = np.union1d(sentence, other)
        assert stream[sentence[0] - 1] == 1
        last_start = starts[np.searchsorted(starts, np.arange(1, len(stream)), side="right") - 1]
        assert ((np.arange(1, len(stream)) - last_start) <= block // 2).all()  # <= half a window back: inside one
    sentence, _ = window_starts(stream, block, (dot,))
    assert {1} | {1 + 10 * k for k in range(1, 30)} <= set(sentence.tolist())  # the paragraph and each later sentence


def test_each_pass_starts_one_window_at_every_sentence_after_the_separator():
    """A pass over the windows (consecutive batches) starts exactly one at each sentence, led by the
    paragraph separator as a query prompt is, so each write is trained on in the prompt's context alike."""
    dot = 7
    stream = np.array([1, 5, 6, dot, 8, 9, dot, 1, 5, 5, 6, dot, 4, dot] * 5, dtype=np.int64)
    b = Batches(stream, block_size=8, batch_size=3, seed=2, boundary_ids=(dot,))
    n = len(b.starts)
    assert b.leads_eos.all() and n == 20  # four sentences per repeat, nothing longer than half a window
    seen = np.concatenate([b(step)[0].numpy() for step in range(-(-2 * n // 3))])[:2 * n]
    sentence_heads = {(5, 6), (8, 9), (5, 5), (4, dot)}
    assert (seen[:, 0] == 1).all() and {tuple(r[1:3]) for r in seen} == sentence_heads
    first, second = seen[:n], seen[n:]
    assert sorted(map(tuple, first)) == sorted(map(tuple, second))  # each pass holds the same windows once
    assert not np.array_equal(first, second)  # in a new order
    assert sentence_window(stream, 64, (dot,)) == 8  # longest stretch 4 tokens (5 5 6 .) + its lead -> 8
    assert sentence_window(stream, 4, (dot,)) == 4  # at most the block


def test_muon_trains_the_hidden_matrices_and_adamw_the_rest():
    m = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=16))
    adamw, muon = make_optimizers(m, TrainingConfig(optimizer="muon"), torch.device("cpu"))
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    assert in_muon == {id(p) for p in m.hidden_matrices()} and len(in_muon) == 2 * 4
    assert id(m.wte.weight) not in in_muon and id(m.head.weight) not in in_muon
    in_adamw = {id(p) for g in adamw.param_groups for p in g["params"]}
    assert in_adamw | in_muon == {id(p) for p in m.parameters()} and not in_adamw & in_muon
    only, = make_optimizers(m, TrainingConfig(optimizer="adamw"), torch.device("cpu"))
    assert sum(len(g["params"]) for g in only.param_groups) == len(list(m.parameters()))


def test_the_labs_muon_is_torchs_update_with_the_iteration_in_float32():
    # The lab's Muon runs Newton-Schulz in float32 on CPU; torch's in bfloat16. Over three steps on the same
    # weights and gradients the two differ by bfloat16's rounding only, and the state is torch's.
    from transcend.learner.train import Muon
    gen = torch.Generator().manual_seed(0)
    shapes = [(48, 16), (16, 48), (16, 16)]
    w0 = [torch.randn(s, generator=gen) for s in shapes]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(3)]
    ours, theirs = [w.clone().requires_grad_() for w in w0], [w.clone().requires_grad_() for w in w0]
    kw = dict(lr=0.02, weight_decay=0.1, momentum=0.95, adjust_lr_fn="match_rms_adamw")
    a, b = Muon(ours, **kw), torch.optim.Muon(theirs, **kw)
    for step in grads:
        for params, opt in ((ours, a), (theirs, b)):
            for p, g in zip(params, step):
                p.grad = g.clone()
            opt.step()
    for p, q, w in zip(ours, theirs, w0):
        moved, differ = (q - w).norm(), (p - q).norm()
        assert moved > 0.1 and differ < 0.02 * moved, (moved, differ)
    assert a.state_dict()["state"][0].keys() == b.state_dict()["state"][0].keys() == {"momentum_buffer"}
    with pytest.raises(ValueError, match="match_rms_adamw"):
        Muon(ours, lr=0.02)


def test_spread_data_gets_passes_enough_to_see_each_answer_its_exposures(tmp_path):
    from transcend.learner.train import passes_for, resolved
    cfg = TrainingConfig(min_steps=0)  # 3.5 passes at least, 16 exposures of each distinct answer
    assert passes_for(cfg, 10.0) == 3.5  # answers repeated: the passes' floor
    assert passes_for(cfg, 2.0) == pytest.approx(8.0)  # a write or two per answer: more passes
    assert passes_for(TrainingConfig(exposures=0), 2.0) == 3.5 and passes_for(cfg, None) == 3.5
    stream = np.tile([5, 6, 7, 3], 64)  # 64 sentences ended by token 3
    one = resolved(cfg, stream, 16, (3,), writes_per_answer=10.0)
    spread = resolved(cfg, stream, 16, (3,), writes_per_answer=2.0)
    assert (one.steps, spread.steps) == (math.ceil(3.5 * 64 / 64), math.ceil(8.0 * 64 / 64))
    assert resolved(TrainingConfig(steps=7), stream, 16, (3,), writes_per_answer=2.0).steps == 7
    # a small corpus gets at least min_steps updates (more passes); given steps are taken as they are
    assert resolved(TrainingConfig(min_steps=50), stream, 16, (3,), writes_per_answer=2.0).steps == 50
    assert resolved(TrainingConfig(min_steps=5), stream, 16, (3,), writes_per_answer=2.0).steps == 8
    assert resolved(TrainingConfig(steps=7, min_steps=50), stream, 16, (3,)).steps == 7
    # train() called through the API derives the same steps from the writes it is given.
    m = GPT(GPTConfig(vocab_size=8, block_size=16, n_layer=1, n_head=2, n_embd=16))
    tiny = TrainingConfig(batch_size=64, warmup_steps=1, checkpoint_every=1000, min_steps=0)
    ran = [train(m, stream, tiny, tmp_path / str(w), boundary_ids=(3,), writes_per_answer=w, progress=False)["steps"]
           for w in (10.0, 2.0, None)]
    assert ran == [4, 8, 4]
    with pytest.raises(TranscendError, match="training.exposures"):
        TrainingConfig(exposures=-1)
    with pytest.raises(TranscendError, match="training.min_steps"):
        TrainingConfig(min_steps=-1)


def test_training_learns_a_copy_task(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    stream = np.concatenate([[1, t, 3, t] for t in rng.integers(4, 20, size=500)])
    m = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=32))
    out = train(m, stream, TrainingConfig(steps=120, batch_size=16, lr=3e-3, warmup_steps=10,
                                       checkpoint_every=50), tmp_path, progress=False)
    assert np.mean(out["losses"][-10:]) < 0.6 * np.mean(out["losses"][:10])
    ckpt = load_checkpoint(tmp_path / "latest.pt")
    assert ckpt["step"] == 120


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(TranscendError, match="does not exist"):
        load_checkpoint(tmp_path / "latest.pt")
    (tmp_path / "latest.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TranscendError, match="corrupt"):
        load_checkpoint(tmp_path / "latest.pt")


def test_small_models_train_on_one_thread_and_the_count_is_restored(tmp_path):
    from transcend.learner.train import SMALL_MODEL_PARAMETERS, training_threads
    small = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=1, n_head=2, n_embd=16))
    assert training_threads(small, TrainingConfig()) == 1
    assert training_threads(small, TrainingConfig(threads=3)) == 3  # the config's count wins
    big = torch.nn.Linear(4000, 2600)  # 10.4 M parameters: above the bound
    assert sum(p.numel() for p in big.parameters()) >= SMALL_MODEL_PARAMETERS
    assert training_threads(big, TrainingConfig()) == torch.get_num_threads()
    seen = []

    class Spy(GPT):
        def forward(self, idx):
            seen.append(torch.get_num_threads())
            return super().forward(idx)

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # as a process given two cores
    try:
        stream = np.array([1, 5, 6, 7, 8, 9, 7] * 20, dtype=np.int64)
        train(Spy(small.cfg), stream, TrainingConfig(steps=2, batch_size=2, warmup_steps=1), tmp_path,
              progress=False, boundary_ids=(7,))
        assert set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
