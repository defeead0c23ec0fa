"""Move-choosers: simulated players (the experts), engine ladder players and a random mover.

A simulated player, at each position (docs/design.md §2, chess):

1. gets the engine's win probability ``p(m)`` of every legal move ``m`` (a full
   multi-PV search at a fixed budget, :meth:`Engine.score_moves`), memoised in a
   :class:`ScoreCache` keyed by budget and position, which several players share;
2. adds its **blind spot** ``b(m) = scale * z(seed, position, m)``, where ``z`` is a
   standard normal number derived from a hash of (player seed, position, move) --
   deterministic, so a player misjudges the same move in the same position the same
   way every time it meets it, and independent across players, so different players
   misjudge different moves;
3. samples a move from ``softmax((p + b) / temperature)``.

The engine never sees the game's history, so step 1 replaces ``p(m)`` by a draw's value (0.5) for a
move after which the game can be claimed drawn (:func:`drawing_moves`: threefold repetition, fifty
moves), as the rules value it: a player who is winning avoids repeating, one who is losing takes the
draw. In blind positions the player looks only at material won at once (below) and does not see this.

Low temperature and a small blind-spot scale make a strong player; the actual strength
of a population must be *measured* (by rated games), not read off these parameters. The
experiment's players are drawn by the population rule in ``chess/population.py``.
Every random draw comes from the ``numpy.random.Generator`` passed in by the caller.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import chess
import chess.engine
import numpy as np

from transcend.errors import TranscendError
from transcend.chess.engine import (
    DEFAULT_SCORE_LIMIT,
    Engine,
    MoveScore,
    SearchLimit,
    analysis_fen,
    win_probability,
)

CACHE_FORMAT = "transcend-chess-scores/1"
#: What a player sees in its blind positions (see PlayerStyle.blunder_kind).
BLUNDER_KINDS = ("noise", "greedy")
#: Material in pawns (the usual 1-3-3-5-9 scale) and what a reply-blind player values a pawn of it at.
PIECE_PAWNS = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9, chess.KING: 0}
GREED_PER_PAWN = 0.1
#: XORed into a player's seed for the misjudgements of its blind positions (a separate stream).
BLIND_STREAM = 0x5EED_B11D
#: What a draw is worth, in win-probability units (the engine's scale: 1 win, 0 loss).
DRAW_VALUE = 0.5
#: A threefold repetition needs the position twice before, at least 4 plies apart, with no irreversible
#: move since; a claim by the opponent's reply comes one ply later. Below this halfmove clock no move can
#: let a draw be claimed (the fifty-move rule needs 98), so the common case costs nothing.
_MIN_CLOCK_FOR_CLAIM = 6


def drawing_moves(board: chess.Board) -> frozenset[str]:
    """The legal moves after which the game can be claimed drawn, as the game loop claims it.

    ``board.outcome(claim_draw=True)`` after the move: the position then stands for the third time, or the
    opponent can claim by announcing a move to a third occurrence (threefold repetition), or the fifty-move
    rule. A chess position is more than its placement: which moves end the game drawn depends on the game's
    history, which the engine (cleared for every search) never sees. python-chess's own claim test
    (``can_claim_draw``) decides; it is called only where a claim is possible at all (some position since
    the last irreversible move has occurred twice, or the fifty-move rule is near), found by counting
    python-chess's own ``_transposition_key`` -- the key its repetition rules use -- over that stretch.
    """
    clock = board.halfmove_clock
    if clock < _MIN_CLOCK_FOR_CLAIM:
        return frozenset()
    counts: dict[object, int] = {board._transposition_key(): 1}
    popped: list[chess.Move] = []
    while board.move_stack:
        move = board.pop()
        popped.append(move)
        if board.is_irreversible(move):
            break
        k = board._transposition_key()
        counts[k] = counts.get(k, 0) + 1
    for move in reversed(popped):
        board.push(move)
    # Without a position seen twice, no move makes a third occurrence, now or by the opponent's reply.
    if max(counts.values()) < 2 and clock < 98:
        return frozenset()
    out = set()
    for move in board.legal_moves:
        if board.is_irreversible(move):  # a new position: nothing before it can recur, the clock restarts
            continue
        board.push(move)
        try:
            if board.can_claim_draw():
                out.add(move.uci())
        finally:
            board.pop()
    return frozenset(out)


@runtime_checkable
class MoveChooser(Protocol):
    """Anything that can play: a name and a move for a position, drawing randomness from ``rng``."""

    name: str

    def choose_move(self, board: chess.Board, rng: np.random.Generator) -> chess.Move: ...


# ------------------------------------------------------------------------------------
# Score cache and scorer
# ------------------------------------------------------------------------------------
class ScoreCache:
    """Engine move scores keyed by ``"<budget>|<analysis FEN>"``, shared by players.

    Values are lists of ``(uci, cp, mate)`` (best first); win probabilities are
    recomputed from them. ``fingerprint`` records which engine and settings produced
    the entries (see :attr:`Engine.fingerprint`); a cache is never used with another.
    ``save``/``load`` persist it as JSON (atomic write).
    """

    def __init__(self, fingerprint: str | None = None) -> None:
        self.fingerprint = fingerprint
        self._entries: dict[str, list[tuple[str, int | None, int | None]]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(limit: SearchLimit, board: chess.Board) -> str:
        return f"{limit.key}|{analysis_fen(board)}"

    def get(self, key: str) -> list[MoveScore] | None:
        raw = self._entries.get(key)
        if raw is None:
            self.misses += 1
            return None
        self.hits += 1
        return [_score_from_raw(uci, cp, mate) for uci, cp, mate in raw]

    def put(self, key: str, scores: Sequence[MoveScore]) -> None:
        self._entries[key] = [(s.uci, s.cp, s.mate) for s in scores]

    def keys(self) -> set[str]:
        return set(self._entries)

    def raw_since(self, known: set[str]) -> dict[str, list]:
        """Entries (raw ``(uci, cp, mate)`` lists) whose keys are not in ``known``; adds them to ``known``."""
        new = {k: v for k, v in self._entries.items() if k not in known}
        known.update(new)
        return new

    def merge_raw(self, entries: dict[str, list]) -> None:
        """Add raw entries made by another process's cache of the same engine (existing keys are kept)."""
        for key, raw in entries.items():
            self._entries.setdefault(key, [tuple(x) for x in raw])

    def bind(self, fingerprint: str) -> None:
        """Attach the cache to an engine fingerprint, refusing a different one."""
        if self.fingerprint is None:
            self.fingerprint = fingerprint
        elif self.fingerprint != fingerprint:
            raise TranscendError(
                f"This score cache was made by '{self.fingerprint}' and cannot be used with '{fingerprint}'; "
                "use a new cache."
            )

    def save(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        payload = {"format": CACHE_FORMAT, "fingerprint": self.fingerprint, "entries": self._entries}
        tmp.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ScoreCache:
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise TranscendError(f"Score cache file '{path}' does not exist.") from exc
        except (OSError, ValueError) as exc:
            raise TranscendError(f"Score cache file '{path}' is not readable JSON ({exc}).") from exc
        if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT:
            raise TranscendError(f"Score cache file '{path}' is not a {CACHE_FORMAT} file.")
        cache = cls(payload.get("fingerprint"))
        cache._entries = {k: [tuple(x) for x in v] for k, v in payload["entries"].items()}  # type: ignore[misc]
        return cache


def _score_from_raw(uci: str, cp: int | None, mate: int | None) -> MoveScore:
    score = chess.engine.Mate(mate) if mate is not None else chess.engine.Cp(int(cp or 0))
    return MoveScore(uci=uci, cp=cp, mate=mate, winprob=win_probability(score))


class MoveScorer:
    """Win probabilities of all legal moves from one engine at one budget, through a cache."""

    def __init__(self, engine: Engine, limit: SearchLimit = DEFAULT_SCORE_LIMIT, cache: ScoreCache | None = None):
        self.engine = engine
        self.limit = limit
        self.cache = cache if cache is not None else ScoreCache()
        self.cache.bind(engine.fingerprint)

    def move_scores(self, board: chess.Board) -> list[MoveScore]:
        key = ScoreCache.key(self.limit, board)
        scores = self.cache.get(key)
        if scores is None:
            scores = self.engine.score_moves(board, self.limit)
            self.cache.put(key, scores)
        return scores

    def winprobs(self, board: chess.Board) -> dict[str, float]:
        """``{uci: win probability for the side to move after playing it}``."""
        return {s.uci: s.winprob for s in self.move_scores(board)}


# ------------------------------------------------------------------------------------
# Blind spots
# ------------------------------------------------------------------------------------
def position_key(board: chess.Board) -> str:
    """The position as players perceive it: placement, side, castling, legal e.p. square."""
    return board.epd(en_passant="legal")


def hashed_normal(seed: int, position: str, uci: str) -> float:
    """A standard normal number that is a fixed function of (seed, position, move).

    BLAKE2b of the three fields gives two 32-bit integers -> two uniforms in (0, 1)
    -> Box-Muller. Independent of Python's hash randomisation, platform and call order.
    """
    digest = hashlib.blake2b(f"{seed}\x1f{position}\x1f{uci}".encode(), digest_size=8).digest()
    a = int.from_bytes(digest[:4], "little")
    b = int.from_bytes(digest[4:], "little")
    u1 = (a + 0.5) / 2**32
    u2 = (b + 0.5) / 2**32
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


# ------------------------------------------------------------------------------------
# Players
# ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlayerStyle:
    """The two knobs of a simulated player.

    temperature: softmax temperature over win probabilities (0 = always the top move).
        Win probabilities of sensible moves differ by ~0.01-0.05 and a dropped piece
        costs ~0.2-0.4, so 0.01 is near-engine play and 0.2 is close to random among
        non-blunders with frequent blunders.
    blind_spot_scale: standard deviation of the per-(position, move) misjudgement, in
        win-probability units.
    blunder_rate: the share of positions that are this player's *blind positions*: there
        the player misjudges every move by an extra ``blunder_scale * z`` (z standard
        normal, a fixed function of player, position and move), so it plays a nearly
        arbitrary move. Which positions are blind is a fixed function of (player seed,
        position): the player always errs there, and different players err in different
        positions -- errors that a vote of several players removes (default 0: none).
    blunder_scale: size of the extra misjudgement in blind positions (win-probability units).
    blunder_kind: what the player sees in a blind position. ``"noise"``: the engine's values
        plus ``blunder_scale * z`` (nearly arbitrary moves when the scale is large).
        ``"greedy"``: it does not look at the opponent's reply at all ("hope chess", the
        commonest beginner error): a move is worth only the material it wins at once
        (``GREED_PER_PAWN`` per pawn) plus ``blunder_scale * z``, so it grabs material,
        leaves pieces hanging and misses threats and mates, but never prefers giving
        material away for nothing.
    """

    temperature: float
    blind_spot_scale: float
    blunder_rate: float = 0.0
    blunder_scale: float = 1.0
    blunder_kind: str = "noise"

    def __post_init__(self) -> None:
        if not 0.0 <= self.blunder_rate <= 1.0:
            raise TranscendError(f"Blunder rate must be in [0, 1], got {self.blunder_rate!r}.")
        if not (self.blunder_scale >= 0 and math.isfinite(self.blunder_scale)):
            raise TranscendError(f"Blunder scale must be a finite number >= 0, got {self.blunder_scale!r}.")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise TranscendError(f"Player temperature must be a finite number >= 0, got {self.temperature!r}.")
        if not (self.blind_spot_scale >= 0 and math.isfinite(self.blind_spot_scale)):
            raise TranscendError(f"Blind-spot scale must be a finite number >= 0, got {self.blind_spot_scale!r}.")
        if self.blunder_kind not in BLUNDER_KINDS:
            raise TranscendError(f"Blunder kind must be one of {', '.join(BLUNDER_KINDS)}, got {self.blunder_kind!r}.")


class SimulatedPlayer:
    """An imperfect expert: engine win probabilities + its own blind spots, sampled by softmax."""

    def __init__(self, name: str, seed: int, style: PlayerStyle, scorer: MoveScorer, band: str = "") -> None:
        self.name = name
        self.seed = int(seed)
        self.style = style
        self.scorer = scorer
        self.band = band

    def __repr__(self) -> str:
        return (
            f"SimulatedPlayer({self.name!r}, seed={self.seed}, T={self.style.temperature}, "
            f"blind_spot={self.style.blind_spot_scale})"
        )

    def blind_spot(self, board: chess.Board, uci: str) -> float:
        """This player's fixed misjudgement of move ``uci`` in ``board`` (win-probability units)."""
        if self.style.blind_spot_scale == 0.0:
            return 0.0
        return self.style.blind_spot_scale * hashed_normal(self.seed, position_key(board), uci)

    def perceived_values(self, board: chess.Board) -> tuple[list[str], np.ndarray]:
        """Legal moves (sorted by UCI, for a stable order) and the values the player sees."""
        winprobs = self.scorer.winprobs(board)
        ucis = sorted(winprobs)
        pos = position_key(board)
        scale = self.style.blind_spot_scale
        draws = drawing_moves(board)
        values = np.array(
            [(DRAW_VALUE if u in draws else winprobs[u]) + (scale * hashed_normal(self.seed, pos, u) if scale else 0.0)
             for u in ucis],
            dtype=np.float64,
        )
        if self.is_blind(board):
            extra = self.style.blunder_scale
            noise = np.array([extra * hashed_normal(self.seed ^ BLIND_STREAM, pos, u) for u in ucis])
            if self.style.blunder_kind == "greedy":
                gain = np.array([material_gain(board, chess.Move.from_uci(u)) for u in ucis], dtype=np.float64)
                values = GREED_PER_PAWN * gain + noise
            else:
                values += noise
        return ucis, values

    def is_blind(self, board: chess.Board) -> bool:
        """Whether ``board`` is one of this player's blind positions (see PlayerStyle.blunder_rate)."""
        rate = self.style.blunder_rate
        if rate <= 0.0:
            return False
        digest = hashlib.blake2b(f"{self.seed}\x1fblind\x1f{position_key(board)}".encode(), digest_size=8).digest()
        return (int.from_bytes(digest, "little") + 0.5) / 2**64 < rate

    def move_distribution(self, board: chess.Board) -> dict[str, float]:
        """The player's probability of each legal move (``softmax(values / T)``)."""
        ucis, values = self.perceived_values(board)
        if not ucis:
            raise TranscendError(f"No legal move in {board.fen()} (the game is over).")
        return dict(zip(ucis, _softmax(values, self.style.temperature).tolist(), strict=True))

    def choose_move(self, board: chess.Board, rng: np.random.Generator) -> chess.Move:
        ucis, values = self.perceived_values(board)
        if not ucis:
            raise TranscendError(f"No legal move in {board.fen()} (the game is over).")
        probs = _softmax(values, self.style.temperature)
        index = int(rng.choice(len(ucis), p=probs))
        return chess.Move.from_uci(ucis[index])


def material_gain(board: chess.Board, move: chess.Move) -> int:
    """Material (pawns) that ``move`` wins at once: the piece it captures plus a promotion's gain."""
    if board.is_en_passant(move):
        gain = 1
    else:
        captured = board.piece_at(move.to_square)
        gain = PIECE_PAWNS[captured.piece_type] if captured is not None else 0
    if move.promotion:
        gain += PIECE_PAWNS[move.promotion] - 1
    return gain


def _softmax(values: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``values / temperature``; temperature 0 puts all mass on the first maximum."""
    if temperature == 0.0:
        probs = np.zeros_like(values)
        probs[int(np.argmax(values))] = 1.0
        return probs
    z = (values - values.max()) / temperature
    e = np.exp(z)
    return e / e.sum()


class RandomMover:
    """Uniformly random legal moves (the bottom of the ladder)."""

    def __init__(self, name: str = "random") -> None:
        self.name = name

    def choose_move(self, board: chess.Board, rng: np.random.Generator) -> chess.Move:
        moves = sorted(board.legal_moves, key=lambda m: m.uci())
        if not moves:
            raise TranscendError(f"No legal move in {board.fen()} (the game is over).")
        return moves[int(rng.integers(len(moves)))]


class EnginePlayer:
    """Stockfish at a skill level and node budget (a ladder opponent).

    ``reproducible=True`` (default) plays Stockfish's skill rule with the game's
    generator (see :meth:`Engine.engine_move`); ``False`` uses the engine's native,
    clock-seeded ``Skill Level`` option.
    """

    def __init__(self, engine: Engine, skill_level: int = 20, nodes: int = 1000, *, name: str | None = None,
                 reproducible: bool = True) -> None:
        if not 0 <= skill_level <= 20:
            raise TranscendError(f"Skill level must be between 0 and 20, got {skill_level}.")
        if nodes < 1:
            raise TranscendError(f"Engine node budget must be positive, got {nodes}.")
        self.engine = engine
        self.skill_level = skill_level
        self.nodes = nodes
        self.reproducible = reproducible
        self.name = name or f"stockfish-s{skill_level}-n{nodes}"

    def choose_move(self, board: chess.Board, rng: np.random.Generator) -> chess.Move:
        return self.engine.engine_move(board, self.skill_level, self.nodes, rng if self.reproducible else None)


class ShareRandomEngine:
    """A ladder rung between the random mover and Stockfish: a random legal move with probability
    ``random_share``, else Stockfish's move at ``skill_level`` and ``nodes`` (see EnginePlayer).

    Fixed engine rungs, not simulated players, so the ladder's scale is the same for every population.
    """

    def __init__(self, engine: Engine, skill_level: int, nodes: int, random_share: float, *,
                 name: str | None = None) -> None:
        if not 0.0 < random_share < 1.0:
            raise TranscendError(f"A rung's random share must be in (0, 1), got {random_share!r}.")
        self.inner = EnginePlayer(engine, skill_level, nodes)
        self.random_share = float(random_share)
        self.name = name or f"stockfish-s{skill_level}-n{nodes}-r{random_share:g}"

    def choose_move(self, board: chess.Board, rng: np.random.Generator) -> chess.Move:
        if rng.random() < self.random_share:
            moves = sorted(board.legal_moves, key=lambda m: m.uci())
            if not moves:
                raise TranscendError(f"No legal move in {board.fen()} (the game is over).")
            return moves[int(rng.integers(len(moves)))]
        return self.inner.choose_move(board, rng)
