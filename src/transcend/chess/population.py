"""The simulated players, fixed by a rule stated before any model is trained.

The rule (docs/chess.md, "The population"):

1. **One strength knob, human-shaped errors.** A player's *weakness* ``w`` in [0, 1] sets
   both the share of its *blind positions* (``w``; there it does not look at the
   opponent's reply and plays for the material a move wins at once, see
   ``PlayerStyle.blunder_kind == "greedy"``) and the sharpness of its choice elsewhere
   (softmax temperature ``T_SHARP + (T_LOOSE - T_SHARP) * w`` over the engine's win
   probabilities plus its own fixed per-move blind spots). Weaker players blunder more
   often and choose less sharply; which positions and moves a player misjudges is a fixed
   function of its seed, so errors differ across players.
2. **Bands are rating ranges on a fixed engine ladder** (``RatingBand.target``, points above
   the *floor*: the calibrated rating of weakness 1): the ladder holds only the random mover
   and Stockfish rungs, so its scale does not depend on the players, the population or any
   model.
3. **Calibration.** Probe players at ``calibration_points`` evenly spaced weaknesses play
   ``calibration_games`` games each against the ladder (one Glicko-2 period each); a
   decreasing isotonic fit of rating on weakness (SciPy, weights 1/RD²) is the curve, and
   it is inverted by linear interpolation.
4. **Players.** Each band gets ``players_per_band`` players whose target ratings are
   stratified over the band's range (one seeded uniform draw in each of equal slices);
   a player's weakness is the curve's inverse at floor + target (a target outside the
   curve's range is clamped to its end and marked ``clamped``). Each player's actual
   rating is then *measured*, with fresh games, exactly as the models are rated.

Nothing here reads a model or a training corpus.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import isotonic_regression

from transcend.errors import TranscendError
from transcend.chess.players import MoveScorer, PlayerStyle, SimulatedPlayer

#: Softmax temperature (win-probability units) of the sharpest (w = 0) and loosest (w = 1) player.
T_SHARP, T_LOOSE = 0.005, 0.05
#: Per-player range of the fixed per-(position, move) misjudgement, drawn log-uniformly.
BLIND_SPOT_RANGE = (0.01, 0.02)
#: Size of the noise on a blind position's material count (win-probability units).
BLIND_NOISE = 0.05
#: The probes' blind-spot scale (the middle of BLIND_SPOT_RANGE on a log scale).
PROBE_BLIND_SPOT = float(np.sqrt(BLIND_SPOT_RANGE[0] * BLIND_SPOT_RANGE[1]))


@dataclass(frozen=True)
class RatingBand:
    """A named rating range on the engine ladder's scale; the band's players are placed inside it."""

    name: str
    # (low, high) target ratings of the band's players, in points above the floor (the rating of weakness 1).
    target: tuple[float, float]

    def __post_init__(self) -> None:
        low, high = self.target
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise TranscendError(f"band {self.name!r} needs a target range low <= high, got {self.target}.")


def style_for(weakness: float, blind_spot_scale: float) -> PlayerStyle:
    """The player style of a weakness ``w``: blind in a share ``w`` of positions, temperature rising with ``w``."""
    if not 0.0 <= weakness <= 1.0:
        raise TranscendError(f"A player's weakness must be in [0, 1], got {weakness!r}.")
    return PlayerStyle(T_SHARP + (T_LOOSE - T_SHARP) * weakness, blind_spot_scale, blunder_rate=weakness,
                       blunder_scale=BLIND_NOISE, blunder_kind="greedy")


@dataclass(frozen=True)
class PlayerSpec:
    """Everything that defines one simulated player (saved in the run's population.json)."""

    name: str
    band: str
    seed: int
    weakness: float
    blind_spot_scale: float
    # The rating the rule aimed at (None for calibration probes) and whether it was outside the curve.
    target: float | None = None
    clamped: bool = False

    def build(self, scorer: MoveScorer) -> SimulatedPlayer:
        return SimulatedPlayer(self.name, self.seed, style_for(self.weakness, self.blind_spot_scale), scorer,
                               band=self.band)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PlayerSpec:
        return cls(**d)


def probe_specs(points: int, seed: int) -> list[PlayerSpec]:
    """Calibration probes at ``points`` evenly spaced weaknesses from 0 to 1, each with its own seed."""
    if points < 2:
        raise TranscendError(f"calibration needs at least 2 points, got {points}.")
    rng = np.random.default_rng([int(seed), 0xCA11B])
    return [PlayerSpec(f"probe-{k:02d}", "probe", int(rng.integers(0, 2**63 - 1)), k / (points - 1),
                       PROBE_BLIND_SPOT) for k in range(points)]


def fit_curve(weakness: list[float], ratings: list[float], rds: list[float]) -> list[float]:
    """Decreasing isotonic fit of the probes' ratings on their weakness (weights 1/RD²)."""
    order = np.argsort(weakness)
    y = np.asarray(ratings, dtype=np.float64)[order]
    w = 1.0 / np.asarray(rds, dtype=np.float64)[order] ** 2
    return isotonic_regression(y, weights=w, increasing=False).x.tolist()


def weakness_for(target: float, weakness: list[float], curve: list[float]) -> tuple[float, bool]:
    """The weakness whose fitted rating is ``target`` (linear interpolation); clamped at the curve's ends."""
    xs = np.asarray(weakness, dtype=np.float64)[::-1]  # ratings increase as weakness falls
    ys = np.asarray(curve, dtype=np.float64)[::-1]
    clamped = bool(target < ys[0] or target > ys[-1])
    # a flat stretch of the isotonic fit: np.interp needs increasing x, so keep each rating's first point
    keep = np.concatenate([[True], np.diff(ys) > 0])
    return float(np.clip(np.interp(target, ys[keep], xs[keep]), 0.0, 1.0)), clamped


def draw_population(bands: list[RatingBand], players_per_band: int, weakness: list[float], curve: list[float],
                    seed: int) -> list[PlayerSpec]:
    """``players_per_band`` players per band, targets stratified over the band's range, weakest band first.

    The band's range is in points above the curve's floor (its rating at weakness 1).
    """
    if players_per_band < 1:
        raise TranscendError(f"A population needs at least one player per band, got {players_per_band}.")
    root = np.random.SeedSequence([int(seed), 0x706F70])
    floor = float(curve[int(np.argmax(weakness))])
    out: list[PlayerSpec] = []
    for band, child in zip(bands, root.spawn(len(bands)), strict=True):
        rng = np.random.default_rng(child)
        low, high = floor + band.target[0], floor + band.target[1]
        for i in range(players_per_band):
            target = low + (high - low) * (i + rng.uniform()) / players_per_band
            w, clamped = weakness_for(target, weakness, curve)
            spot = float(np.exp(rng.uniform(*np.log(BLIND_SPOT_RANGE))))
            out.append(PlayerSpec(f"{band.name}-{i:02d}", band.name, int(rng.integers(0, 2**63 - 1)), w, spot,
                                  float(target), clamped))
    return out
