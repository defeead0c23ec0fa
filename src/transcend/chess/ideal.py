"""The ideal chess learner: the exact mixture of the training players' policies.

At a position x, the cross-entropy optimum of a model trained on the players' games
is the mixture f̄(y|x) = Σ_i g(i|x) f_i(y|x) (docs/design.md §1). Here g(i|x) = g(i), the
share of the corpus's moves that player i chose (the simulated players reach a
position with similar probabilities, and the exact g(i|x) would need every player's
probability of reaching x). Every f_i is known exactly (engine scores + blind spots,
``SimulatedPlayer.move_distribution``), so f̄ is computed, not estimated.

The ideal learner at temperature τ plays softmax(log f̄ / τ) = f̄^(1/τ) / Σ f̄^(1/τ):
τ = 1 is the mixture itself; τ → 0 is the players' plurality move (the vote).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import chess
import numpy as np

from transcend.errors import TranscendError
from transcend.chess.players import SimulatedPlayer


class Mixture:
    """f̄(y|x) of ``players`` with weights (normalised; default uniform)."""

    def __init__(self, players: Sequence[SimulatedPlayer], weights: Sequence[float] | None = None) -> None:
        if not players:
            raise TranscendError("the ideal learner needs at least one training player.")
        w = np.ones(len(players)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(w) != len(players) or np.any(w < 0) or w.sum() <= 0:
            raise TranscendError("mixture weights must be one non-negative number per player, not all zero.")
        self.players = list(players)
        self.weights = w / w.sum()

    @classmethod
    def from_counts(cls, players: Sequence[SimulatedPlayer], counts: Mapping[str, int]) -> Mixture:
        """Weights g(i) = share of the corpus's moves made by player i."""
        return cls(players, [counts.get(p.name, 0) for p in players])

    def distribution(self, board: chess.Board) -> tuple[list[str], np.ndarray]:
        """Legal moves (sorted UCI) and f̄ over them."""
        total = None
        ucis: list[str] = []
        for player, w in zip(self.players, self.weights, strict=True):
            if w == 0:
                continue
            dist = player.move_distribution(board)
            if total is None:
                ucis = sorted(dist)
                total = np.zeros(len(ucis))
            total += w * np.array([dist[u] for u in ucis])
        assert total is not None
        return ucis, total / total.sum()


def sharpen(probs: np.ndarray, tau: float) -> np.ndarray:
    """probs^(1/τ), normalised (softmax of log-probabilities at temperature τ)."""
    if not tau > 0:
        raise TranscendError(f"temperature must be positive, got {tau}.")
    with np.errstate(divide="ignore"):
        z = np.log(probs) / tau
    z -= z.max()
    e = np.exp(z)
    return e / e.sum()


def entropy(probs: np.ndarray) -> float:
    p = probs[probs > 0]
    return float(-(p * np.log(p)).sum())


class IdealPlayer:
    """The ideal learner as a player: samples softmax(log f̄ / τ) with the game's generator."""

    def __init__(self, mixture: Mixture, tau: float, name: str | None = None) -> None:
        self.mixture, self.tau = mixture, float(tau)
        self.name = name or f"ideal-t{tau:g}"

    def move_probabilities(self, board: chess.Board) -> dict[str, float]:
        ucis, f = self.mixture.distribution(board)
        return dict(zip(ucis, sharpen(f, self.tau).tolist(), strict=True))

    def choose_move(self, board: chess.Board, rng: np.random.Generator) -> chess.Move:
        ucis, f = self.mixture.distribution(board)
        p = sharpen(f, self.tau)
        return chess.Move.from_uci(ucis[int(rng.choice(len(ucis), p=p))])
