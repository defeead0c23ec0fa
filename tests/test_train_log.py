"""The training log (train_log.jsonl, plain progress lines, TensorBoard) and gradient accumulation."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from transcend.cli import main
from transcend.config import TrainingConfig
from transcend.learner.log import TrainLog, read_log
from transcend.learner.train import optimize

TINY = ["--preset", "tiny", "--entities", "80", "--paragraphs", "400", "--steps", "40"]


def test_every_run_logs_each_step_and_prints_lines_when_stderr_is_not_a_terminal(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "denoising", "--experts", "2", *TINY, "--out", str(out), "--json"]) == 0
    err = capsys.readouterr().err
    rows = read_log(out / "train_log.jsonl")
    assert [r["step"] for r in rows] == list(range(40))
    assert set(rows[0]) == {"step", "loss", "lr", "tokens_per_s", "grad_norm"}
    assert all(r["loss"] > 0 and r["grad_norm"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    ckpt = torch.load(out / "checkpoints" / "latest.pt", weights_only=True)
    assert [r["loss"] for r in rows] == pytest.approx(ckpt["losses"], abs=1e-12)
    lines = [ln for ln in err.splitlines() if ln.startswith("train step ")]
    assert len(lines) == 20 and lines[-1].startswith("train step 40/40")  # every 5% of the steps


def test_resume_keeps_one_row_per_step(tmp_path):
    def run(stop):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        x, y = torch.randn(8, 3, generator=torch.Generator().manual_seed(1)), torch.ones(8, 1)
        cfg = TrainingConfig(steps=10, checkpoint_every=4, warmup_steps=0, lr=1e-2)
        model.cfg = cfg  # optimize compares the checkpoint's shape through model.cfg
        half = lambda t, part, parts: t[part * 8 // parts:(part + 1) * 8 // parts]  # noqa: E731
        return optimize(model, cfg, tmp_path / "ck.pt",
                        lambda s, part, parts: (((model(half(x, part, parts)) - half(y, part, parts)) ** 2).sum() / 8,
                                                8 // parts),
                        device=torch.device("cpu"), resume=(tmp_path / "ck.pt").is_file(), progress=False,
                        stop_after=stop, log=TrainLog(tmp_path / "train_log.jsonl"))

    run(6)
    # a kill after the checkpoint at step 6 but with rows logged past it: those rows must go
    with open(tmp_path / "train_log.jsonl", "a") as f:
        f.write(json.dumps({"step": 6, "loss": 9.0, "lr": 0, "tokens_per_s": 1, "grad_norm": 1}) + "\n")
    run(None)
    rows = read_log(tmp_path / "train_log.jsonl")
    assert [r["step"] for r in rows] == list(range(10)) and rows[6]["loss"] != 9.0


def test_gradient_accumulation_sums_the_micro_batches_gradients(tmp_path):
    data = [torch.randn(4, 3, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    finals = []
    for accum in (2, 1):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        cfg = TrainingConfig(steps=1, warmup_steps=0, lr=1e-2, gradient_accumulation=accum, grad_clip=0.0,
                             batch_parts=1)
        model.cfg = cfg
        if accum == 2:  # micro-batch i of step 0 is batch index i
            loss = lambda i: ((model(data[i]) - 1) ** 2).mean()
        else:           # one batch holding both: the mean of the two losses
            loss = lambda i: 0.5 * (((model(data[0]) - 1) ** 2).mean() + ((model(data[1]) - 1) ** 2).mean())
        optimize(model, cfg, tmp_path / f"ck{accum}.pt", lambda i, part, parts: (loss(i), 4), device=torch.device("cpu"),
                 resume=False, progress=False, stop_after=None)
        finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(finals[0], finals[1], atol=1e-7)
    with pytest.raises(Exception, match="gradient_accumulation"):
        TrainingConfig(gradient_accumulation=0)


def test_tensorboard_events_hold_the_logged_steps(tmp_path, capsys):
    pytest.importorskip("tensorboard")  # the test extra installs it: CI runs this
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["run", "denoising", "--experts", "2", *TINY, "--steps", "5", "--out", str(out), "--tensorboard",
                 "--json", "--quiet"]) == 0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    rows = read_log(out / "train_log.jsonl")
    for key in ("loss", "lr", "grad_norm"):
        scalars = events.Scalars(f"train/{key}")
        assert [e.step for e in scalars] == [r["step"] for r in rows] == list(range(5))
        assert [e.value for e in scalars] == pytest.approx([r[key] for r in rows], rel=1e-6)  # float32 in events


def test_a_chess_model_logs_each_step_beside_its_checkpoint(tmp_path):
    import chess

    from transcend.chess.config import ChessConfig
    from transcend.chess.corpus import MoveCorpus, encode_board, legal_tokens, move_token
    from transcend.chess.pipeline import stage_train

    board = chess.Board()
    legal = legal_tokens(board)
    corpus = MoveCorpus(np.stack([encode_board(board)] * 4), np.full(4, move_token(board, "e2e4"), dtype=np.int32),
                        np.arange(5, dtype=np.int64) * len(legal), np.array(legal * 4, dtype=np.int16),
                        np.array(["p"] * 4), np.array([board.epd()] * 4), np.zeros(4, dtype=np.int32))
    cfg = ChessConfig.for_scale("tiny", training=TrainingConfig(steps=8, batch_size=4, lr=1e-2, warmup_steps=1))
    _, summary = stage_train(cfg, tmp_path, "c1", corpus, progress=False)
    rows = read_log(tmp_path / "models" / "c1" / "train_log.jsonl")
    assert [r["step"] for r in rows] == list(range(cfg.training.steps)) == list(range(summary["steps"]))
    assert np.mean([r["loss"] for r in rows]) == pytest.approx(summary["loss_first100"], rel=1e-9)
    assert rows[-1]["loss"] < rows[0]["loss"] and all(r["grad_norm"] > 0 for r in rows)
