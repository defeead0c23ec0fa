"""A step's batch in parts (training.batch_parts): helper processes compute parts at once, and the weights
are the same bits however many processes computed them."""

import sys

import numpy as np
import pytest
import torch

from transcend.config import TrainingConfig
from transcend.errors import TranscendError
from transcend.learner.model import GPT, GPTConfig
from transcend.learner.train import optimize, train, training_processes

LINUX = sys.platform.startswith("linux")
STREAM = np.concatenate([[1, 5, t, 6, u, 3] for t, u in np.random.default_rng(0).integers(7, 40, size=(300, 2))])


class Rows(GPT):
    """The GPT, counting the windows this process forwards."""
    seen: list[int] = []

    def forward(self, idx):
        Rows.seen.append(idx.shape[0])
        return super().forward(idx)


def trained(tmp_path, threads: int, name: str, dropout: float = 0.0,
            **training) -> tuple[torch.Tensor, list[int], list[float]]:
    """Weights, windows forwarded here, losses of a short run given ``threads`` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    Rows.seen = []
    try:
        torch.manual_seed(0)
        m = Rows(GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=dropout))
        cfg = TrainingConfig(**{"steps": 12, "batch_size": 8, "warmup_steps": 2, "checkpoint_every": 5, **training})
        out = train(m, STREAM, cfg, tmp_path / name, progress=False, boundary_ids=(3,))
        assert torch.get_num_threads() == threads  # restored
    finally:
        torch.set_num_threads(before)
    return torch.cat([p.detach().flatten() for p in m.parameters()]), list(Rows.seen), out["losses"]


@pytest.mark.skipif(not LINUX, reason="helper processes are forked on Linux only")
def test_two_processes_give_the_bits_of_one_computing_the_parts_in_turn(tmp_path):
    one, seen_one, losses_one = trained(tmp_path, 1, "one")
    two, seen_two, losses_two = trained(tmp_path, 2, "two")
    assert seen_one == [4] * 24   # one process: both halves of every step, in turn
    assert seen_two == [4] * 12   # two: this process computes one half, the helper the other
    assert torch.equal(one, two) and losses_one == losses_two
    # one part (the whole batch at once) is the same gradient summed in another order: close, not equal
    whole, seen_whole, _ = trained(tmp_path, 2, "whole", batch_parts=1)
    assert seen_whole == [8] * 12
    assert torch.allclose(whole, one, atol=1e-4) and not torch.equal(whole, one)


@pytest.mark.skipif(not LINUX, reason="helper processes are forked on Linux only")
def test_dropout_draws_do_not_depend_on_which_process_ran_a_part(tmp_path):
    one, _, _ = trained(tmp_path, 1, "one", dropout=0.2)
    two, _, _ = trained(tmp_path, 2, "two", dropout=0.2)
    plain, _, _ = trained(tmp_path, 1, "plain")
    assert torch.equal(one, two) and not torch.equal(one, plain)  # dropout drew, the same in both


@pytest.mark.skipif(not LINUX, reason="helper processes are forked on Linux only")
def test_three_parts_on_two_processes_and_an_uneven_split(tmp_path):
    one, seen_one, _ = trained(tmp_path, 1, "one", batch_parts=3)
    two, seen_two, _ = trained(tmp_path, 2, "two", batch_parts=3)
    assert seen_one == [2, 3, 3] * 12 and seen_two == [2, 3] * 12  # parts 0 and 2 here, part 1 in the helper
    assert torch.equal(one, two)


@pytest.mark.skipif(not LINUX, reason="helper processes are forked on Linux only")
def test_a_resumed_run_with_helpers_is_bit_exact(tmp_path):
    full, _, _ = trained(tmp_path, 2, "full")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        m = GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=16))
        cfg = TrainingConfig(steps=12, batch_size=8, warmup_steps=2, checkpoint_every=5)
        train(m, STREAM, cfg, tmp_path / "cut", progress=False, boundary_ids=(3,), stop_after=5)
        torch.manual_seed(1)  # a fresh process's model: its weights come from the checkpoint
        m = GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=16))
        train(m, STREAM, cfg, tmp_path / "cut", progress=False, boundary_ids=(3,), resume=True)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(torch.cat([p.detach().flatten() for p in m.parameters()]), full)


def test_who_computes_the_parts():
    small = GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=16))
    cpu = torch.device("cpu")
    assert training_processes(small, TrainingConfig(), cpu, given=4) == (2 if LINUX else 1)  # one a part
    assert training_processes(small, TrainingConfig(), cpu, given=1) == 1  # a sweep worker's one core
    assert training_processes(small, TrainingConfig(threads=1), cpu, given=4) == 1  # threads given: as said
    assert training_processes(small, TrainingConfig(batch_parts=1), cpu, given=4) == 1
    assert training_processes(small, TrainingConfig(), torch.device("meta"), given=4) == 1  # not a CPU
    big = torch.nn.Linear(4000, 2600)  # above the small-model bound: all threads in one process
    assert training_processes(big, TrainingConfig(), cpu, given=4) == 1


@pytest.mark.skipif(not LINUX, reason="helper processes are forked on Linux only")
def test_a_failing_helper_is_one_clear_error(tmp_path):
    model = torch.nn.Linear(3, 1)
    cfg = TrainingConfig(steps=3, warmup_steps=0, batch_size=4)
    model.cfg = cfg  # optimize compares a checkpoint's shape through model.cfg
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))

    def step_loss(index, part, parts):
        if part == 1:
            raise ValueError("no such window")
        return model(x[:2]).pow(2).sum(), 2

    with pytest.raises(TranscendError, match="helper process failed: ValueError: no such window"):
        optimize(model, cfg, tmp_path / "ck.pt", step_loss, device=torch.device("cpu"), resume=False,
                 progress=False, stop_after=None, processes=2)


def test_batch_parts_is_validated():
    with pytest.raises(Exception, match="training.batch_parts must be at least 1"):
        TrainingConfig(batch_parts=0)
    with pytest.raises(Exception, match=r"training.batch_parts \(9\) must be at most training.batch_size \(8\)"):
        TrainingConfig(batch_parts=9, batch_size=8)
