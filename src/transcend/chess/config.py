"""The chess experiment's typed, validated config (one source of truth, saved beside every run).

Every field has a one-line doc (the comment above it); construction validates and a
bad value raises ``TranscendError`` naming the field. ``ChessConfig.for_scale`` gives
the two presets: ``small`` (sized for a 2-core CPU, ~30 minutes end to end) and
``paper`` (more players, games, steps and rated games; hours on a CPU).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from transcend.config import TrainingConfig, check_field_types, code_identity
from transcend.errors import TranscendError
from transcend.chess.population import RatingBand

SCALES = ("tiny", "small", "paper")
#: The code groups a chess run comes from (``transcend.config.CODE_SOURCES``).
CHESS_CODE = ("chess",)
PAPER_TEMPERATURES = (0.001, 0.01, 0.1, 0.3, 0.5, 0.75, 1.0, 1.5)

#: The experiment's player bands, weakest first: rating ranges on the fixed engine ladder's scale
#: (the random mover, Stockfish rungs that play a share of random moves, Stockfish; mean 1500),
#: given as points above the *floor*, the calibrated rating of the weakest player the rule can
#: make (weakness 1: blind in every position). The population rule (``chess/population.py``)
#: places each band's players inside its range by calibrating one strength knob against that
#: ladder; no model is looked at. The ranges are 200 points wide and 300 apart (the paper's
#: bands, <= 1000, <= 1300, <= 1500 on Lichess, are 200-300 apart), starting at the floor so the
#: weakest band is always reachable; a target above the strongest player (weakness 0) is clamped.
CHESS_BANDS: tuple[RatingBand, ...] = (
    RatingBand("beginner", target=(0.0, 200.0)),
    RatingBand("novice", target=(300.0, 500.0)),
    RatingBand("club", target=(600.0, 800.0)),
    RatingBand("expert", target=(900.0, 1100.0)),
    RatingBand("master", target=(1200.0, 1400.0)),
)
BAND_NAMES = tuple(b.name for b in CHESS_BANDS)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise TranscendError(message)


@dataclass
class ChessConfig:
    # Seed of every random draw (players, openings, games, training, rating).
    seed: int = 0
    # Seed of the population rule's draws (calibration probes; each player's target, seed and blind spots);
    # None = seed. Another value draws a second population by the same rule against the same ladder.
    population_seed: int | None = None
    # Path of the UCI engine (Stockfish); None = $TRANSCEND_STOCKFISH, PATH, /usr/games/stockfish.
    engine: str | None = None
    # Depth of the engine search that scores every legal move for the simulated players.
    score_depth: int = 2
    # Strength bands of the simulated players, weakest first (names from CHESS_BANDS below).
    bands: tuple[str, ...] = ("beginner", "novice")
    # Simulated players per band (each placed in its band's rating range by the population rule).
    players_per_band: int = 8
    # Training games played within each band (pairs of players in turn, colours alternating).
    games_per_band: int = 300
    # Uniformly random plies after the book opening (varied openings; not part of the training data).
    random_plies: int = 2
    # Ply cap of a game (opening included); then adjudicated on material.
    max_plies: int = 120
    # Rating cutoffs: a corpus holds the games of players rated <= cutoff. None = one per band
    # (the strongest player of each band), so the lowest cutoff is the weakest band.
    cutoffs: tuple[float, ...] | None = None
    # Stockfish skill levels on the ladder (0-20), each at ladder_nodes nodes per move.
    ladder_skills: tuple[int, ...] = (0, 3)
    # Ladder rungs between the random mover and Stockfish: the lowest skill playing this share of random moves.
    ladder_random_shares: tuple[float, ...] = (0.75, 0.5, 0.25)
    # Population rule: probe players at this many evenly spaced weaknesses calibrate weakness -> rating.
    calibration_points: int = 6
    # Population rule: rated games of each calibration probe against the ladder.
    calibration_games: int = 60
    # Node budget of the ladder's Stockfish moves.
    ladder_nodes: int = 200
    # Games per pair in the ladder's round robin.
    games_per_pair: int = 10
    # Transformer depth, width and heads of the move model.
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    # Board encoder attention: False = every square attends to every square (a board is not a sequence);
    # True = causal over a1..h8, the earlier model, kept only to measure what it cost.
    causal: bool = False
    # Training schedule of each cutoff's model (AdamW: the schedule the chess runs were measured with). One
    # batch part: the cutoffs' models train side by side, one per worker on one core, where parts gain nothing.
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(
        steps=2500, batch_size=64, lr=3e-3, warmup_steps=100, checkpoint_every=500, optimizer="adamw",
        batch_parts=1))
    # Sampling temperatures at which each model is rated.
    temperatures: tuple[float, ...] = PAPER_TEMPERATURES
    # Rated games per (cutoff, temperature) against the ladder.
    rated_games: int = 40
    # Rated games at the two temperatures the verdict compares, favor_temperature and 1.0 (when they are
    # among `temperatures`), and of the ideal learner at favor_temperature: more games, narrower intervals
    # where a claim is decided. Every player is rated with as many, so at `small` (16 players) 100 rather
    # than 200 keeps the run within its budget.
    verdict_games: int = 100
    # Temperatures at which the ideal learner (exact mixture) is rated.
    ideal_temperatures: tuple[float, ...] = (0.001, 1.0)
    # Sample only legal moves (True) or the whole vocabulary with resample-then-forfeit (False).
    legal_only: bool = True
    # Favor analysis: the low temperature compared with τ = 1, and positions (from the model's games) used.
    favor_temperature: float = 0.001
    favor_positions: int = 300
    # Action entropy: over positions among the first entropy_plies chosen moves of a game that are in
    # every cutoff's corpus (at most entropy_states of them, a seeded draw).
    entropy_plies: int = 10
    entropy_states: int = 500
    # Action entropy the paper's way: over the states a cutoff's (or band's) own training data visits at
    # least this often, the normalised entropy of the moves played there.
    entropy_min_visits: int = 10
    # Fraction of each cutoff's games held out for the move-prediction diagnostic.
    heldout_fraction: float = 0.1
    # Device for training: auto (CUDA if present), cpu or cuda.
    device: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.training, dict):
            bad = set(self.training) - {f.name for f in fields(TrainingConfig)}
            _check(not bad, f"unknown field(s) {', '.join(sorted(bad))} in [training].")
            self.training = TrainingConfig(**{"batch_parts": 1, **self.training})  # one part, as the default's
        check_field_types(self)  # bools are not numbers, floats are not counts, numbers are finite
        for name in ("bands", "ladder_skills", "ladder_random_shares", "temperatures", "ideal_temperatures"):
            setattr(self, name, tuple(getattr(self, name)))
        if self.cutoffs is not None:
            self.cutoffs = tuple(float(c) for c in self.cutoffs)
            _check(len(self.cutoffs) > 0, "cutoffs must list at least one rating (or be left unset).")
        _check(len(self.bands) > 0 and all(b in BAND_NAMES for b in self.bands),
               f"bands must be names from {', '.join(BAND_NAMES)}, got {list(self.bands)}.")
        _check(len(set(self.bands)) == len(self.bands), "bands must not repeat.")
        for name in ("score_depth", "players_per_band", "games_per_band", "ladder_nodes", "games_per_pair",
                     "n_layer", "n_embd", "n_head", "rated_games", "verdict_games", "favor_positions", "entropy_plies",
                     "entropy_states",
                     "entropy_min_visits", "max_plies", "calibration_games"):
            _check(int(getattr(self, name)) >= 1, f"{name} must be at least 1, got {getattr(self, name)}.")
        _check(self.players_per_band >= 2, f"players_per_band must be at least 2 (games are within a band), "
                                            f"got {self.players_per_band}.")
        _check(self.calibration_points >= 2, f"calibration_points must be at least 2, got {self.calibration_points}.")
        _check(all(0 < r < 1 for r in self.ladder_random_shares),
               f"ladder_random_shares must be shares in (0, 1), got {list(self.ladder_random_shares)}.")
        _check(len(set(self.ladder_random_shares)) == len(self.ladder_random_shares),
               "ladder_random_shares must not repeat.")
        _check(self.random_plies >= 0, f"random_plies must be >= 0, got {self.random_plies}.")
        _check(all(0 <= s <= 20 for s in self.ladder_skills), "ladder_skills must be Stockfish levels 0-20.")
        _check(len(self.temperatures) > 0 and all(t > 0 for t in self.temperatures),
               "temperatures must be positive numbers.")
        _check(all(t > 0 for t in self.ideal_temperatures), "ideal_temperatures must be positive numbers.")
        _check(self.favor_temperature > 0, "favor_temperature must be positive.")
        _check(0 < self.heldout_fraction < 0.5, f"heldout_fraction must be in (0, 0.5), got {self.heldout_fraction}.")
        _check(self.n_embd % self.n_head == 0 and (self.n_embd // self.n_head) % 2 == 0,
               f"n_embd {self.n_embd} must split into {self.n_head} heads of even size.")
        _check(self.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {self.device!r}.")

    @property
    def population_draw_seed(self) -> int:
        """The seed the population rule draws with (``population_seed``, else ``seed``)."""
        return self.seed if self.population_seed is None else self.population_seed

    def games_at(self, tau: float) -> int:
        """Rated games per cutoff at temperature ``tau`` (more at the verdict temperatures)."""
        return max(self.rated_games, self.verdict_games) if tau in (self.favor_temperature, 1.0) else self.rated_games

    def ideal_games_at(self, tau: float) -> int:
        """Rated games of the ideal learner at ``tau``: the verdict's count only where a verdict reads it
        (``favor_temperature``, the denominator of the gain recovered); ``rated_games`` elsewhere."""
        return max(self.rated_games, self.verdict_games) if tau == self.favor_temperature else self.rated_games

    @classmethod
    def for_scale(cls, scale: str, **overrides: Any) -> ChessConfig:
        if scale not in SCALES:
            raise TranscendError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}.")
        base: dict[str, Any] = {}
        if scale == "tiny":  # tests: seconds, not science
            base = dict(bands=("novice", "club"), players_per_band=2, games_per_band=4, max_plies=40,
                        score_depth=1, ladder_skills=(0,), ladder_nodes=50, games_per_pair=2,
                        ladder_random_shares=(0.5,), calibration_points=3, calibration_games=2, n_layer=1, n_embd=32,
                        n_head=2, training=TrainingConfig(steps=20, batch_size=8, lr=2e-3, warmup_steps=2,
                                                          checkpoint_every=10, optimizer="adamw", batch_parts=1),
                        temperatures=(0.01, 1.0), rated_games=2, verdict_games=2, ideal_temperatures=(0.01,),
                        favor_temperature=0.01, favor_positions=10,
                        entropy_states=50, entropy_min_visits=2, heldout_fraction=0.25)
        elif scale == "paper":
            base = dict(bands=("beginner", "novice", "club"), players_per_band=16, games_per_band=3000, max_plies=160,
                        ladder_skills=(0, 2, 4, 6), games_per_pair=10, n_layer=4, n_embd=128, n_head=4,
                        training=TrainingConfig(steps=20000, batch_size=128, lr=1e-3, warmup_steps=500,
                                                checkpoint_every=1000, optimizer="adamw", batch_parts=1),
                        rated_games=200, verdict_games=400, ideal_temperatures=(0.001, 0.1, 1.0), favor_positions=1000)
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChessConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        _check(not unknown, f"unknown chess config field(s): {', '.join(sorted(unknown))}.")
        return cls(**d)

    def hash(self, *sections: str) -> str:
        """Of the whole config and the code that runs it (``code_identity(CHESS_CODE)``: other code, another
        default run folder), or of the named fields alone."""
        d = self.to_dict()
        if sections:
            d = {k: d.get(k) for k in sections}
        else:
            d["code"] = code_identity(CHESS_CODE)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(tomli_w.dumps(self.to_dict()).encode())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ChessConfig:
        try:
            return cls.from_dict(tomllib.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise TranscendError(f"chess config '{path}' does not exist.") from None
        except tomllib.TOMLDecodeError as e:
            raise TranscendError(f"chess config '{path}' is not valid TOML ({e}).") from None
        except UnicodeDecodeError:
            raise TranscendError(f"chess config '{path}' is not UTF-8 text (a TOML file is expected).") from None
        except IsADirectoryError:
            raise TranscendError(f"chess config '{path}' is a directory; give a TOML file.") from None
