"""The chess move model: the lab's GPT reading a board state, scoring moves by their squares.

* **Model.** :class:`ChessPolicy`: the blocks of :class:`~transcend.learner.model.GPT`
  (rotary) over the 66 input tokens of ``chess/corpus.py`` (two global tokens, then the
  squares a1..h8) with **bidirectional** attention (``GPTConfig.causal=False``): a board
  is not a sequence, every square attends to every square, so every move's score
  depends on the whole board (a causal mask would let the score of a move a→b see only
  the squares up to max(a, b)). Then a *square-pair* move head: the logit of a move
  from square a to square b is ``q(h_a) · k(h_b) / sqrt(d) + bias[move]``, where h_s is
  the hidden state at square s (q, k linear maps; the bias, one number per move of the
  1,968-move vocabulary, also tells promotions apart). Why: a head that reads one
  summary vector and outputs 1,968 independent move logits must learn every move
  separately ("exd5 is good when d5 holds an undefended piece"); scoring a move from the
  states of its two squares shares what is learnt about a square across all moves
  that touch it. With few games this learnt; the one-vector head did not (docs/chess.md).
* **Draws by rule.** A move after which the game can be claimed drawn (threefold repetition,
  fifty moves; a fact of the game's history, not of the board, ``chess/corpus.py``) gets
  ``q(h_a) · e_draw / sqrt(d) + b_draw`` added to its logit: one learnt vector and bias, read
  by the board state at the move's from-square, so the model can learn from the players'
  games when a draw is taken (a worse position) and when it is avoided (a better one).
* **Loss.** Only the move is predicted (the board state is input). The loss is the
  cross-entropy over the *legal* moves of the position plus the cross-entropy over the
  whole move vocabulary: both have the players' mixture as their optimum (players only
  play legal moves); the first concentrates learning on which legal move is chosen,
  the second teaches the model which moves are legal at all (needed only by
  full-vocabulary sampling).
* **Sampling** at temperature τ: ``softmax(logits / τ)``. By default over the legal
  moves only (*legal masking*). With ``legal_only=False`` the model samples from the
  whole vocabulary with the documented rule: an illegal move is counted and the model
  samples again, at most :data:`MAX_RESAMPLES` times; if the last draw is still
  illegal, the model **forfeits** the game (:class:`Forfeit`). Illegal draws and
  forfeits are counted on the player and reported.
* **Training.** AdamW with warm-up and cosine decay (``learner/train.py``'s schedule),
  batches a pure function of (seed, step), atomic checkpoints, resume.
"""

from __future__ import annotations

import math
from pathlib import Path

import chess
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from transcend.config import TrainingConfig
from transcend.errors import TranscendError
from transcend.learner.log import TrainLog
from transcend.learner.model import GPT, GPTConfig
from transcend.learner.train import CHECKPOINT, load_checkpoint, optimize
from transcend.chess.corpus import (N_GLOBAL, N_INPUT_TOKENS, N_MOVES, SEQ_LEN, MoveCorpus, encode_board,
                                          legal_tokens, move_squares, move_token, token_move)
from transcend.chess.players import drawing_moves

#: Full-vocabulary sampling: at most this many new draws after an illegal one, then forfeit.
MAX_RESAMPLES = 5


class Forfeit(Exception):
    """Raised by a model player whose last allowed draw was still an illegal move."""

    def __init__(self, name: str, fen: str, illegal: list[str]):
        super().__init__(f"{name} forfeits in {fen}: {1 + MAX_RESAMPLES} illegal moves in a row ({', '.join(illegal)})")
        self.name = name


class ChessPolicy(nn.Module):
    """GPT blocks over the board tokens + a square-pair move head (see module doc)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.gpt = GPT(cfg)
        self.q = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.k = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.move_bias = nn.Parameter(torch.zeros(N_MOVES))
        self.draw_key = nn.Parameter(torch.zeros(cfg.n_embd))
        self.draw_bias = nn.Parameter(torch.zeros(()))
        frm, to = move_squares()
        self.register_buffer("from_sq", torch.from_numpy(frm), persistent=False)
        self.register_buffer("to_sq", torch.from_numpy(to), persistent=False)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, inputs: torch.Tensor, draws: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 66) input ids [+ (B, 1968) bool: the move lets a draw be claimed] -> (B, 1968) move logits."""
        g = self.gpt
        T = inputs.shape[1]
        x = g.wte(inputs)
        cos, sin = g.rope_cos[:T].to(x.dtype), g.rope_sin[:T].to(x.dtype)
        for block in g.blocks:
            x = block(x, cos, sin)
        h = g.ln_f(x[:, N_GLOBAL:])  # (B, 64, d): the squares
        q = self.q(h)
        pair = q @ self.k(h).transpose(1, 2) / math.sqrt(h.shape[-1])  # (B, 64 from, 64 to)
        logits = pair[:, self.from_sq, self.to_sq] + self.move_bias
        if draws is not None:
            draw = (q @ self.draw_key) / math.sqrt(h.shape[-1])  # (B, 64): by from-square
            logits = logits + draws.to(logits.dtype) * (draw[:, self.from_sq] + self.draw_bias)
        return logits


def policy_model(n_layer: int = 2, n_head: int = 4, n_embd: int = 64, causal: bool = False) -> ChessPolicy:
    """A move model; ``causal=True`` only to measure the earlier, causal board encoder."""
    # The GPT's own output head is unused; a vocabulary of the input tokens keeps it small.
    return ChessPolicy(GPTConfig(vocab_size=N_INPUT_TOKENS, block_size=SEQ_LEN, n_layer=n_layer, n_head=n_head,
                                 n_embd=n_embd, causal=causal))


def move_logits(model: ChessPolicy, inputs: torch.Tensor, draws: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 66) input ids [+ (B, 1968) draw flags] -> (B, 1968) logits over the move vocabulary."""
    return model(inputs, draws)


def policy_loss(logits: torch.Tensor, targets: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the legal moves + cross-entropy over all moves (targets are move indices)."""
    logits = logits.float()
    masked = logits.masked_fill(~legal, float("-inf"))
    return F.cross_entropy(masked, targets) + F.cross_entropy(logits, targets)


class PolicyBatches:
    """Random examples, a pure function of (seed, step)."""

    def __init__(self, corpus: MoveCorpus, batch_size: int, seed: int):
        if len(corpus) == 0:
            raise TranscendError("the chess corpus holds no moves to train on.")
        self.corpus, self.batch_size, self.seed = corpus, batch_size, seed
        self.inputs = torch.from_numpy(corpus.inputs.astype(np.int64))
        self.targets = torch.from_numpy(corpus.targets.astype(np.int64) - N_INPUT_TOKENS)

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 0x6368, step])
        rows = rng.integers(0, len(self.corpus), size=self.batch_size)
        t = torch.from_numpy(rows)
        return (self.inputs[t], self.targets[t], torch.from_numpy(self.corpus.legal_mask(rows)),
                torch.from_numpy(self.corpus.draw_mask(rows)))


def train_policy(model: ChessPolicy, corpus: MoveCorpus, cfg: TrainingConfig, ckpt_dir: Path, *, seed: int = 0,
                 resume: bool = False, device: torch.device | None = None, progress: bool = True,
                 stop_after: int | None = None, log: TrainLog | None = None) -> dict:
    """Train in place; returns {'losses', 'steps', 'examples_per_s'}. ``stop_after`` ends early (tests);
    ``log`` gets one row per step (``learner/log.py``)."""
    device = device or torch.device("cpu")
    model.to(device)
    batches = PolicyBatches(corpus, cfg.batch_size, seed)

    def step_loss(index: int, part: int, parts: int) -> tuple[torch.Tensor, int]:
        # Each part's mean loss weighted by its share of the batch: the parts' losses sum to the batch's.
        x, y, legal, draws = batches(index)
        whole, rows = len(y), slice(part * len(y) // parts, (part + 1) * len(y) // parts)
        x, y, legal, draws = (t[rows].to(device) for t in (x, y, legal, draws))
        return policy_loss(move_logits(model, x, draws), y, legal) * (len(y) / whole), len(y)

    ckpt_path = Path(ckpt_dir) / CHECKPOINT
    result = optimize(model, cfg, ckpt_path, step_loss, device=device, resume=resume and ckpt_path.is_file(),
                      progress=progress, stop_after=stop_after, log=log)
    model.eval()
    return {"losses": result["losses"], "steps": result["steps"], "examples_per_s": result["items_per_s"]}


def load_policy(path: Path) -> ChessPolicy:
    ckpt = load_checkpoint(Path(path))
    try:
        model = ChessPolicy(GPTConfig(**ckpt["gpt"]))
        model.load_state_dict(ckpt["model"])
    except (TypeError, ValueError, RuntimeError, KeyError) as e:  # a knowledge-graph run's checkpoint, say
        raise TranscendError(f"checkpoint {path} is not a chess move model ({type(e).__name__}); give the "
                             "checkpoint of a model trained by `transcend chess`.") from None
    model.eval()
    return model


@torch.no_grad()
def predict_logits(model: ChessPolicy, inputs: np.ndarray, batch_size: int = 512,
                   draws: np.ndarray | None = None) -> np.ndarray:
    """Move logits (N, 1968) for an array of encoded positions [and their (N, 1968) draw flags]."""
    model.eval()
    out = []
    for i in range(0, len(inputs), batch_size):
        x = torch.from_numpy(inputs[i:i + batch_size].astype(np.int64))
        d = None if draws is None else torch.from_numpy(draws[i:i + batch_size])
        out.append(move_logits(model, x, d).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, N_MOVES), dtype=np.float32)


def tempered(logits: np.ndarray, tau: float) -> np.ndarray:
    """softmax(logits / τ) along the last axis; -inf logits get probability 0."""
    if not tau > 0:
        raise TranscendError(f"temperature must be positive, got {tau}.")
    z = logits / tau
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class PolicyPlayer:
    """The trained model as a player at temperature ``tau`` (a MoveChooser)."""

    def __init__(self, model: ChessPolicy, tau: float, *, name: str | None = None, legal_only: bool = True) -> None:
        if not tau > 0:
            raise TranscendError(f"temperature must be positive, got {tau}.")
        self.model, self.tau, self.legal_only = model, float(tau), legal_only
        self.name = name or f"model-t{tau:g}"
        self.moves = 0
        self.illegal_draws = 0
        self.forfeits = 0

    @torch.no_grad()
    def logits(self, board: chess.Board) -> np.ndarray:
        x = torch.from_numpy(encode_board(board).astype(np.int64))[None]
        draws = torch.zeros((1, N_MOVES), dtype=torch.bool)
        for uci in drawing_moves(board):
            draws[0, move_token(board, uci) - N_INPUT_TOKENS] = True
        return move_logits(self.model, x, draws)[0].float().numpy().astype(np.float64)

    def distribution(self, board: chess.Board) -> dict[str, float]:
        """The model's probability of each legal move at ``tau`` (legal masking)."""
        logits = self.logits(board)
        tokens = legal_tokens(board)
        probs = tempered(logits[np.asarray(tokens) - N_INPUT_TOKENS], self.tau)
        return {token_move(board, t).uci(): float(p) for t, p in zip(tokens, probs, strict=True)}

    def choose_move(self, board: chess.Board, rng: np.random.Generator) -> chess.Move:
        self.moves += 1
        logits = self.logits(board)
        if self.legal_only:
            tokens = np.asarray(legal_tokens(board))
            probs = tempered(logits[tokens - N_INPUT_TOKENS], self.tau)
            return token_move(board, int(tokens[int(rng.choice(len(tokens), p=probs))]))
        probs = tempered(logits, self.tau)
        illegal: list[str] = []
        for _ in range(1 + MAX_RESAMPLES):
            move = token_move(board, N_INPUT_TOKENS + int(rng.choice(N_MOVES, p=probs)))
            if move in board.legal_moves:
                return move
            self.illegal_draws += 1
            illegal.append(move.uci())
        self.forfeits += 1
        raise Forfeit(self.name, board.fen(), illegal)
