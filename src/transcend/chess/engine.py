"""Stockfish through python-chess's synchronous UCI API, with reproducible budgets.

Reproducibility rules (why the code below looks the way it does):

* Budgets are fixed depths and/or node counts (:class:`SearchLimit`), never wall-clock
  time, so a search does the same work on a fast or a slow, busy or idle machine.
* ``Threads=1`` (a multi-threaded search is not deterministic) and a small hash.
* Every analysis starts from a cleared engine: we pass a fresh ``game`` object to
  python-chess, which makes it send ``ucinewgame``; Stockfish then clears its hash
  table and its move-ordering histories. Without this, a search depends on what the
  engine searched before (verified: the same position analysed twice in a row gives
  different multipv scores), and a shared score cache would make games depend on the
  order in which they were played.
* The engine sees a position as a FEN without move history (see :func:`analysis_fen`),
  so a result is a pure function of (engine, budget, FEN) and may be cached by FEN.
  The price: the engine does not see repetitions; the game loop claims repetition
  draws itself.

With these rules Stockfish 15.1 returns identical scores for identical requests, also
across processes (tested in ``tests/test_chess_world.py``).

One exception is Stockfish's own ``Skill Level`` option: Stockfish 15.1 draws its
weakening noise from a PRNG seeded with the clock (``static PRNG rng(now())`` in
``Skill::pick_best``), so native skill-level play cannot be reproduced.
:meth:`Engine.engine_move` therefore re-implements that rule with a caller-supplied
seeded generator when one is given (see there).

Win probabilities: :func:`win_probability` maps a score from the mover's point of view
to the Lichess "winning chances" logistic, ``1 / (1 + exp(-0.00368208 * cp))``
(Lichess fitted the constant on its games; it is symmetric, ``p(cp) + p(-cp) = 1``,
and does not depend on the move number, which keeps cached values position-only).
A forced mate for the mover counts as 1.0 and a forced mate against it as 0.0,
whatever the distance to mate.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import chess
import chess.engine
import numpy as np

from transcend.errors import TranscendError

#: Environment variable naming the engine binary; it wins over ``PATH``.
ENGINE_ENV_VAR = "TRANSCEND_STOCKFISH"
#: Last resort: where Debian's ``stockfish`` package installs the binary.
DEBIAN_STOCKFISH = "/usr/games/stockfish"

#: Slope of the Lichess winning-chances logistic, per centipawn.
LICHESS_WIN_SLOPE = 0.00368208

#: Centipawn value given to "mate in n" when a score must be a number (skill emulation).
MATE_CP = 100_000

#: Stockfish 15.1 caps the random part of its skill rule at PawnValueMg = 126 internal
#: units; UCI centipawns are internal * 100 / NormalizeToPawnValue (361 in 15.1): ~35 cp.
SKILL_DELTA_CAP_CP = 35

#: Seconds python-chess waits for the engine to start or answer a command before giving up (generous: at low
#: priority beside busy processes, starting Stockfish took over 30 s).
ENGINE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class SearchLimit:
    """A reproducible search budget: a depth, a node count, or both (whichever ends first).

    Wall-clock limits are deliberately not offered. Node limits are shared by all lines
    of a multi-PV search, so under a small node budget some moves may not be searched
    at all; :meth:`Engine.score_moves` then searches the missing ones separately.
    """

    depth: int | None = None
    nodes: int | None = None

    def __post_init__(self) -> None:
        if self.depth is None and self.nodes is None:
            raise TranscendError("A search limit needs a depth or a node count (wall-clock limits are not allowed).")
        for name, value in (("depth", self.depth), ("nodes", self.nodes)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise TranscendError(f"Search limit {name} must be a positive integer, got {value!r}.")

    @property
    def key(self) -> str:
        """A short stable text form, e.g. ``d2``, ``n200`` or ``d2n200`` (used in cache keys)."""
        return (f"d{self.depth}" if self.depth else "") + (f"n{self.nodes}" if self.nodes else "")

    def to_engine_limit(self) -> chess.engine.Limit:
        return chess.engine.Limit(depth=self.depth, nodes=self.nodes)


#: Default budget for scoring every legal move: a full depth-2 multi-PV search, about
#: 2,000 nodes and a few milliseconds per position on one core; every line is searched
#: to the same depth, so scores of different moves are comparable.
DEFAULT_SCORE_LIMIT = SearchLimit(depth=2)


@dataclass(frozen=True)
class MoveScore:
    """The engine's verdict on one legal move, from the point of view of the side that plays it."""

    uci: str
    cp: int | None  # centipawns, None when the score is a forced mate
    mate: int | None  # plies-to-mate sign convention of UCI: >0 the mover mates, <=0 it is mated
    winprob: float  # win_probability of the score, in [0, 1]

    def to_score(self) -> chess.engine.Score:
        return chess.engine.Mate(self.mate) if self.mate is not None else chess.engine.Cp(int(self.cp or 0))


def win_probability(score: chess.engine.Score) -> float:
    """Winning chances in [0, 1] of the side the score belongs to.

    Centipawns: ``1 / (1 + exp(-0.00368208 * cp))`` (the Lichess logistic; 0 cp -> 0.5,
    +100 cp -> 0.59, +300 cp -> 0.75). Mate: 1.0 if that side mates, 0.0 if it is mated.
    """
    if score.is_mate():
        return 1.0 if score > chess.engine.Cp(0) else 0.0
    cp = score.score()
    assert cp is not None
    return 1.0 / (1.0 + math.exp(-LICHESS_WIN_SLOPE * cp))


def analysis_fen(board: chess.Board) -> str:
    """The FEN the engine is given (and scores are cached under).

    Placement, side to move, castling rights, a *legal* en-passant square and the
    half-move clock (it matters: Stockfish scales evaluations towards the fifty-move
    rule); the full-move number is set to 1 because the search does not use it, so
    transpositions reached at different move numbers share one entry.
    """
    parts = board.fen(en_passant="legal").split(" ")
    parts[5] = "1"
    return " ".join(parts)


def default_engine_path() -> str:
    """``$TRANSCEND_STOCKFISH`` if set, else ``stockfish`` on ``PATH``, else Debian's path."""
    from_env = os.environ.get(ENGINE_ENV_VAR)
    if from_env:
        return from_env
    return shutil.which("stockfish") or DEBIAN_STOCKFISH


def find_engine(path: str | None = None) -> str | None:
    """The engine path if it names an executable file, else None (tests use this to skip)."""
    candidate = path or default_engine_path()
    resolved = shutil.which(candidate) if os.sep not in candidate else candidate
    if resolved and os.path.isfile(resolved) and os.access(resolved, os.X_OK):
        return resolved
    return None


def _board_for_engine(board: chess.Board) -> chess.Board:
    return chess.Board(analysis_fen(board))


class Engine:
    """One Stockfish process with reproducible settings; use it as a context manager.

    ``with Engine() as engine: ...`` always quits the process on leaving the block,
    also when the block raises (``KeyboardInterrupt`` included). The process runs in
    its own process group, so a Ctrl-C at the terminal reaches Python (which then
    quits the engine cleanly) instead of killing the engine mid-command.
    """

    def __init__(self, path: str | None = None, *, hash_mb: int = 1, threads: int = 1) -> None:
        self.path = path or default_engine_path()
        self.hash_mb = hash_mb
        self.threads = threads
        resolved = find_engine(self.path)
        if resolved is None:
            raise TranscendError(
                f"No chess engine executable at '{self.path}': install Stockfish "
                f"(apt-get install stockfish) or set {ENGINE_ENV_VAR} to the engine's path."
            )
        try:
            self._engine = chess.engine.SimpleEngine.popen_uci(resolved, timeout=ENGINE_TIMEOUT_S, setpgrp=True)
        except (OSError, chess.engine.EngineError, TimeoutError) as exc:
            raise TranscendError(
                f"The program at '{resolved}' did not start as a UCI chess engine ({exc}); "
                f"point {ENGINE_ENV_VAR} at a Stockfish binary."
            ) from exc
        self._closed = False
        self.pid: int = self._engine.protocol.transport.get_pid()  # type: ignore[attr-defined]
        try:
            self._engine.configure({"Threads": threads, "Hash": hash_mb})
        except BaseException:
            self.close()
            raise
        skill = self._engine.options.get("Skill Level")
        self._skill_level = int(skill.default) if skill is not None else 20

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Quit the engine; if it does not answer, close the pipe and kill the process.

        Idempotent, and never raises for an engine that is already gone.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._engine.quit()
        except BaseException:  # noqa: BLE001 - cleanup must go on (also after Ctrl-C)
            pass
        finally:
            with contextlib.suppress(Exception):
                self._engine.close()
            self._kill_if_alive()

    def _kill_if_alive(self) -> None:
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        # Still there (or a zombie): reap it if it has exited, otherwise kill it.
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by the event loop's child watcher
            return
        if done == 0:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def name(self) -> str:
        """The engine's UCI id, e.g. ``Stockfish 15.1``."""
        return str(self._engine.id.get("name", "unknown engine"))

    @property
    def fingerprint(self) -> str:
        """What engine results depend on besides (budget, FEN): binary name and settings."""
        return f"{self.name}|Threads={self.threads}|Hash={self.hash_mb}"

    def _check_open(self) -> None:
        if self._closed:
            raise TranscendError("The chess engine has been shut down; open a new Engine.")

    def _set_skill(self, level: int) -> None:
        if level != self._skill_level:
            self._engine.configure({"Skill Level": level})
            self._skill_level = level

    # -- analysis ------------------------------------------------------------------
    def score_moves(self, board: chess.Board, limit: SearchLimit = DEFAULT_SCORE_LIMIT) -> list[MoveScore]:
        """Score every legal move of ``board`` for the side to move, best first.

        One multi-PV search with as many lines as legal moves, from a cleared engine.
        If the budget runs out before some moves got a line (possible under a node
        limit), those moves are searched again among themselves with the same limit,
        until every move has a score. Returns an empty list when the game is over.
        Ties in the ordering are broken by UCI string, so the output is deterministic.
        """
        self._check_open()
        engine_board = _board_for_engine(board)
        legal = list(engine_board.legal_moves)
        if not legal:
            return []
        scores: dict[chess.Move, chess.engine.Score] = {}
        missing = legal
        while missing:
            # root_moves=None for the first (complete) search: same result, shorter command.
            infos = self._analyse(
                engine_board, limit, multipv=len(missing), root_moves=None if missing is legal else missing
            )
            wanted = set(missing)
            got = {
                info["pv"][0]: info["score"].relative
                for info in infos
                if info.get("pv") and "score" in info and info["pv"][0] in wanted
            }
            if not got:  # engine produced no line at all: search moves one at a time
                for move in missing:
                    infos = self._analyse(engine_board, limit, multipv=1, root_moves=[move])
                    info = infos[0]
                    if "score" not in info:
                        raise TranscendError(f"The engine returned no score for {move.uci()} in {engine_board.fen()}.")
                    got[move] = info["score"].relative
            scores.update(got)
            missing = [m for m in missing if m not in scores]
        out = [_move_score(m.uci(), s) for m, s in scores.items()]
        out.sort(key=lambda ms: (-_sort_value(ms), ms.uci))
        return out

    def evaluate(self, board: chess.Board, limit: SearchLimit = DEFAULT_SCORE_LIMIT) -> chess.engine.PovScore:
        """The engine's score of the position (side to move's POV inside the PovScore)."""
        self._check_open()
        outcome = board.outcome(claim_draw=False)
        if outcome is not None:
            if outcome.winner is None:
                return chess.engine.PovScore(chess.engine.Cp(0), board.turn)
            return chess.engine.PovScore(chess.engine.Mate(-0), board.turn)
        infos = self._analyse(_board_for_engine(board), limit, multipv=1, root_moves=None)
        return infos[0]["score"]

    def win_probability_white(self, board: chess.Board, limit: SearchLimit = DEFAULT_SCORE_LIMIT) -> float:
        """White's winning chances in the position (used for adjudication)."""
        return win_probability(self.evaluate(board, limit).white())

    def best_move(self, board: chess.Board, limit: SearchLimit) -> chess.Move:
        """The engine's move at full strength, from a cleared engine (deterministic)."""
        self._check_open()
        self._set_skill(20)
        result = self._engine.play(_board_for_engine(board), limit.to_engine_limit(), game=object())
        if result.move is None:
            raise TranscendError(f"The engine found no move in {board.fen()} (is the game over?).")
        return result.move

    def engine_move(
        self,
        board: chess.Board,
        skill_level: int,
        nodes: int,
        rng: np.random.Generator | None = None,
    ) -> chess.Move:
        """A move for a ladder opponent: Stockfish at ``skill_level`` (0-20) and ``nodes``.

        * ``skill_level == 20``: the engine's best move at ``nodes`` (deterministic).
        * ``rng`` given: Stockfish 15.1's skill rule (``Skill::pick_best``), re-implemented
          with the caller's generator so the move is reproducible: a multi-PV search with
          4 lines to depth ``1 + skill_level`` (and at most ``nodes``), then each line i
          gets ``score_i + (w * (top - score_i) + delta * U{0..w-1}) // 128`` with
          ``w = 120 - 2 * skill_level`` and ``delta = min(top - score_4th, 35 cp)``, and
          the highest total is played (ties to the later line, as in 15.1). Scores are
          UCI centipawns; mates count as +-(100000 - distance).
        * ``rng`` None and ``skill_level < 20``: Stockfish's native ``Skill Level`` option.
          Stockfish seeds that noise from the clock, so these moves are NOT reproducible.
        """
        self._check_open()
        if not 0 <= skill_level <= 20:
            raise TranscendError(f"Skill level must be between 0 and 20, got {skill_level}.")
        limit = SearchLimit(nodes=nodes)
        if skill_level == 20:
            return self.best_move(board, limit)
        if rng is None:
            self._set_skill(skill_level)
            result = self._engine.play(_board_for_engine(board), limit.to_engine_limit(), game=object())
            if result.move is None:
                raise TranscendError(f"The engine found no move in {board.fen()} (is the game over?).")
            return result.move
        engine_board = _board_for_engine(board)
        n_legal = engine_board.legal_moves.count()
        if n_legal == 0:
            raise TranscendError(f"No legal move in {board.fen()} (the game is over).")
        infos = self._analyse(
            engine_board, SearchLimit(depth=1 + skill_level, nodes=nodes), multipv=min(4, n_legal), root_moves=None
        )
        lines = [
            (info["pv"][0], _as_cp(info["score"].relative)) for info in infos if info.get("pv") and "score" in info
        ]
        if not lines:  # no line finished within the budget: play the engine's choice
            return self.best_move(board, limit)
        lines.sort(key=lambda mv: -mv[1])  # stable: equal scores keep the engine's multipv order
        top = lines[0][1]
        delta = min(top - lines[-1][1], SKILL_DELTA_CAP_CP)
        weakness = 120 - 2 * skill_level
        best_move, best_total = lines[0][0], -math.inf
        for move, score in lines:
            push = (weakness * (top - score) + delta * int(rng.integers(0, weakness))) // 128
            if score + push >= best_total:
                best_move, best_total = move, score + push
        return best_move

    def _analyse(
        self,
        board: chess.Board,
        limit: SearchLimit,
        *,
        multipv: int,
        root_moves: list[chess.Move] | None,
    ) -> list[dict[str, Any]]:
        self._set_skill(20)
        # A fresh `game` object makes python-chess send `ucinewgame` (clears hash and histories).
        # Only score and PV are parsed: python-chess's per-line parsing dominates the cost.
        infos = self._engine.analyse(
            board,
            limit.to_engine_limit(),
            multipv=multipv,
            root_moves=root_moves,
            game=object(),
            info=chess.engine.INFO_SCORE | chess.engine.INFO_PV,
        )
        return [dict(info) for info in infos]


def _as_cp(score: chess.engine.Score) -> int:
    value = score.score(mate_score=MATE_CP)
    assert value is not None
    return value


def _move_score(uci: str, score: chess.engine.Score) -> MoveScore:
    if score.is_mate():
        return MoveScore(uci=uci, cp=None, mate=score.mate(), winprob=win_probability(score))
    return MoveScore(uci=uci, cp=score.score(), mate=None, winprob=win_probability(score))


def _sort_value(ms: MoveScore) -> float:
    """Order moves by score, mates by distance (sooner mate first, later loss first)."""
    return float(_as_cp(ms.to_score()))


@contextmanager
def open_engine(path: str | None = None, *, hash_mb: int = 1, threads: int = 1) -> Iterator[Engine]:
    """``with open_engine() as engine:`` -- an :class:`Engine` that is always shut down."""
    engine = Engine(path, hash_mb=hash_mb, threads=threads)
    try:
        yield engine
    finally:
        engine.close()
