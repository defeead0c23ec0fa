"""The training log: one JSON line per optimizer step, optional TensorBoard events, plain progress lines.

``train_log.jsonl`` (step, loss, lr, tokens_per_s, grad_norm) is appended and
flushed as training goes, so a crashed or running job can be read; on resume
the rows of steps the checkpoint does not hold are dropped first, so the log
never shows a step twice. ``tensorboard=True`` also writes event files under
``tensorboard/`` beside the log (``pip install -e '.[tensorboard]'``).
``lines_every=N`` prints a plain line to stderr every N steps: progress bars
are for terminals, these are for cluster logs (``transcend demo 2>log``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transcend.errors import TranscendError

LOG = "train_log.jsonl"


class TrainLog:
    """Made by the caller, opened by the training loop once it knows the step it starts from."""

    def __init__(self, path: Path, *, tensorboard: bool = False, lines_every: int = 0, stream=None):
        self.path, self.tensorboard, self.lines_every = Path(path), tensorboard, lines_every
        self.stream = stream if stream is not None else sys.stderr
        self.file = self.writer = None
        self.total = 0
        if tensorboard:
            try:
                import torch.utils.tensorboard  # noqa: F401
            except ImportError:
                raise TranscendError("--tensorboard needs the tensorboard package: "
                                     "pip install -e '.[tensorboard]'.") from None

    def open(self, start: int, total: int) -> None:
        self.total = total
        kept = []
        if start > 0 and self.path.is_file():  # resuming: keep only the steps the checkpoint holds
            kept = [ln for ln in self.path.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["step"] < start]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(ln + "\n" for ln in kept))
        tmp.replace(self.path)
        self.file = open(self.path, "a", encoding="utf-8")
        if self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.path.parent / "tensorboard"), purge_step=start or None)

    def step(self, step: int, loss: float, lr: float, tokens_per_s: float, grad_norm: float) -> None:
        row = {"step": step, "loss": loss, "lr": lr, "tokens_per_s": tokens_per_s, "grad_norm": grad_norm}
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key in ("loss", "lr", "tokens_per_s", "grad_norm"):
                self.writer.add_scalar(f"train/{key}", row[key], step)
        done = step + 1
        if self.lines_every and (done % self.lines_every == 0 or done == self.total):
            print(f"train step {done}/{self.total}  loss {loss:.4f}  lr {lr:.3g}  {tokens_per_s:,.0f} tokens/s  "
                  f"grad norm {grad_norm:.3f}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.writer is not None:
            self.writer.close()


def read_log(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]
