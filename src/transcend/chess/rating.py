"""Rating chess players: a calibrated ladder of opponents, then Glicko-2.

1. **Ladder.** Opponents of known, spread strength: a random mover, Stockfish at
   several skill levels with fixed node limits (the skill rule replayed with our
   seeded generator, see ``Engine.engine_move``) and the simulated players.
2. **Calibration.** A round robin among them (every pair plays ``games_per_pair``
   games, colours alternating, paired openings); ratings are the maximum-likelihood
   Elo fit of all results (Bradley-Terry on the 400-point logistic scale, a draw counts
   as half a win), anchored so that the ladder's mean rating is 1500. A weak Gaussian
   prior (mean 1500, sd 700) keeps an entrant with a perfect score finite. Each
   entrant's RD is the standard error from the fit's curvature (prior included).
3. **Rating a new player** (a model at a temperature): it plays the ladder in turn;
   all its games form one Glicko-2 rating period against opponents fixed at their
   calibrated rating and RD, solved to the posterior mode (``glicko2.rate_map``, whose
   first Newton step is Glicko-2's rating and which stays accurate for many games in one
   period). Reported as rating ± 2·RD.

A model that forfeits (full-vocabulary sampling, see ``chess/policy.py``)
loses that game; forfeits are counted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from transcend.errors import TranscendError
from transcend.chess.glicko2 import Rating, rate_map
from transcend.chess.policy import Forfeit
from transcend.chess.games import DEFAULT_MAX_PLIES, draw_opening, play_game
from transcend.chess.players import MoveChooser

ELO_SCALE = 400.0 / math.log(10.0)
PRIOR_SD = 700.0


@dataclass
class Game:
    """A rated game's outcome: names and White's score (1, 0.5, 0)."""

    white: str
    black: str
    white_score: float
    plies: int
    termination: str

    def score_for(self, name: str) -> float:
        return self.white_score if name == self.white else 1.0 - self.white_score


@dataclass
class Ladder:
    """Calibrated opponents: name -> (rating, RD); the games that calibrated them."""

    ratings: dict[str, Rating]
    games: list[Game] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"ratings": {k: [r.rating, r.rd] for k, r in self.ratings.items()},
                "games": [g.__dict__ for g in self.games]}

    @classmethod
    def from_dict(cls, d: dict) -> Ladder:
        return cls({k: Rating(v[0], v[1]) for k, v in d["ratings"].items()}, [Game(**g) for g in d["games"]])


def play_pair(a: MoveChooser, b: MoveChooser, n_games: int, seed: int, *, random_plies: int = 2,
              max_plies: int = DEFAULT_MAX_PLIES) -> list[Game]:
    """``n_games`` games, colours alternating; games 2k and 2k+1 share an opening."""
    out = []
    for i in range(n_games):
        pair_seed = [seed, i // 2]
        white, black = (a, b) if i % 2 == 0 else (b, a)
        opening_and_game = pair_seed + [i % 2]
        # the opening depends only on the pair; the game's moves on the game
        opening_ss = np.random.SeedSequence(pair_seed)
        game_ss = np.random.SeedSequence(opening_and_game)
        opening = draw_opening(np.random.default_rng(opening_ss), random_plies=random_plies)
        try:
            record = play_game(white, black, np.random.default_rng(game_ss), opening=opening, max_plies=max_plies)
            score = {"1-0": 1.0, "0-1": 0.0}.get(record.result, 0.5)
            out.append(Game(white.name, black.name, score, record.plies, record.termination))
        except Forfeit as f:
            out.append(Game(white.name, black.name, 0.0 if f.name == white.name else 1.0, 0, "forfeit"))
    return out


def fit_elo(names: Sequence[str], games: Sequence[Game], anchor: float = 1500.0,
            prior_sd: float = PRIOR_SD) -> dict[str, Rating]:
    """Maximum-likelihood (weak-prior MAP) Elo ratings of ``names`` from ``games``, mean ``anchor``."""
    if len(set(names)) != len(names):
        raise TranscendError("ladder entrants must have distinct names.")
    index = {n: i for i, n in enumerate(names)}
    k = len(names)
    pairs = []
    for g in games:
        if g.white not in index or g.black not in index:
            raise TranscendError(f"game {g.white} vs {g.black} involves a player outside the ladder.")
        pairs.append((index[g.white], index[g.black], g.white_score))
    if not pairs:
        raise TranscendError("the ladder calibration has no games.")
    w = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    s = np.array([p[2] for p in pairs])
    mu = np.zeros(k)  # natural-log scale: rating = anchor + ELO_SCALE * mu
    inv_prior = (ELO_SCALE / prior_sd) ** 2
    for _ in range(200):
        e = 1.0 / (1.0 + np.exp(-(mu[w] - mu[b])))
        grad = -inv_prior * mu
        np.add.at(grad, w, s - e)
        np.add.at(grad, b, -(s - e))
        hess = inv_prior * np.eye(k)
        v = e * (1 - e)
        np.add.at(hess, (w, w), v)
        np.add.at(hess, (b, b), v)
        np.add.at(hess, (w, b), -v)
        np.add.at(hess, (b, w), -v)
        step = np.linalg.solve(hess, grad)
        mu += np.clip(step, -2.0, 2.0)
        if np.max(np.abs(step)) < 1e-10:
            break
    cov = np.linalg.inv(hess)
    mu -= mu.mean()
    # the anchor fixes the mean: the covariance of mu - mean(mu)
    centre = np.eye(k) - 1.0 / k
    cov = centre @ cov @ centre
    return {n: Rating(anchor + ELO_SCALE * mu[i], max(ELO_SCALE * math.sqrt(max(cov[i, i], 1e-12)), 1.0))
            for n, i in index.items()}


def calibrate_ladder(entrants: Sequence[MoveChooser], games_per_pair: int, seed: int, *, random_plies: int = 2,
                     max_plies: int = DEFAULT_MAX_PLIES,
                     progress: Callable[[int, int], None] | None = None) -> Ladder:
    """Round robin among ``entrants``, then :func:`fit_elo`."""
    if len(entrants) < 2:
        raise TranscendError("a ladder needs at least two entrants.")
    if games_per_pair < 1:
        raise TranscendError(f"games_per_pair must be at least 1, got {games_per_pair}.")
    games: list[Game] = []
    jobs = round_robin_pairs(len(entrants), seed)
    for n, (i, j, pair_seed) in enumerate(jobs):
        games += play_pair(entrants[i], entrants[j], games_per_pair, pair_seed,
                           random_plies=random_plies, max_plies=max_plies)
        if progress:
            progress(n + 1, len(jobs))
    return Ladder(fit_elo([e.name for e in entrants], games), games)


def round_robin_pairs(n_entrants: int, seed: int) -> list[tuple[int, int, int]]:
    """The round robin's pairs (i, j) of entrant indices with each pair's seed, in a fixed order."""
    return [(i, j, seed * 1_000_003 + i * 1009 + j) for i, j in itertools.combinations(range(n_entrants), 2)]


def rate_player(player: MoveChooser, ladder: Ladder, opponents: Sequence[MoveChooser], n_games: int, seed: int, *,
                random_plies: int = 2, max_plies: int = DEFAULT_MAX_PLIES,
                progress: Callable[[int, int], None] | None = None) -> tuple[Rating, list[Game]]:
    """``n_games`` against ``opponents`` in turn (colours alternating), then one Glicko-2 period."""
    if not opponents:
        raise TranscendError("rating needs at least one ladder opponent.")
    for o in opponents:
        if o.name not in ladder.ratings:
            raise TranscendError(f"opponent '{o.name}' is not in the calibrated ladder.")
    games: list[Game] = []
    per_round = 2
    for n in range(0, n_games, per_round):
        opp = opponents[(n // per_round) % len(opponents)]
        games += play_pair(player, opp, min(per_round, n_games - n), seed * 1_000_003 + n,
                           random_plies=random_plies, max_plies=max_plies)
        if progress:
            progress(len(games), n_games)
    return rating_from_games(player.name, games, ladder), games


def rating_from_games(name: str, games: Sequence[Game], ladder: Ladder) -> Rating:
    """Glicko-2 (one rating period, posterior mode) of ``name`` against the ladder's fixed ratings."""
    triples = []
    for g in games:
        opp = g.black if g.white == name else g.white
        r = ladder.ratings[opp]
        triples.append((r.rating, r.rd, g.score_for(name)))
    return rate_map(triples)
