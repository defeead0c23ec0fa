"""Games between move-choosers, openings, adjudication, and PGN input/output.

A game (:func:`play_game`):

* starts from the standard position (or a given FEN) and plays an *opening* -- a line
  from :data:`OPENING_BOOK` and/or a few uniformly random legal plies -- which is
  recorded in the PGN header ``OpeningPlies`` so that a corpus builder can leave those
  moves out of the experts' training data (they are not the players' choices);
* then asks the side to move's chooser for a move until the game ends by the rules.
  Draws are claimed as soon as they are claimable (threefold repetition, fifty-move
  rule), as a human would; the engine never sees move history, so the game loop, not
  the engine, is what knows about repetitions;
* stops at ``max_plies`` (opening plies included) and *adjudicates*: by default on
  material (:class:`MaterialAdjudicator`: a lead of at least 3 pawn units -- a minor
  piece -- wins, otherwise a draw); with an engine, :class:`EngineAdjudicator`
  (White's engine winning chances >= 0.8, i.e. about +380 cp, win; <= 0.2 loss).

A match (:func:`play_match`) plays pairs of games on the same opening with colours
swapped. Game ``i`` of a match with seed ``s`` depends only on ``(s, i)`` and on the
choosers, so the first games of a longer match equal a shorter match with that seed.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import chess
import chess.pgn
import numpy as np

from transcend.errors import TranscendError
from transcend.chess.engine import DEFAULT_SCORE_LIMIT, Engine, SearchLimit
from transcend.chess.players import MoveChooser

#: A small opening book in SAN: (name, line). Common first moves, 2-6 plies, both
#: open and closed games, so that games start from varied but sensible positions.
OPENING_BOOK: tuple[tuple[str, str], ...] = (
    ("Ruy Lopez", "e4 e5 Nf3 Nc6 Bb5"),
    ("Italian Game", "e4 e5 Nf3 Nc6 Bc4"),
    ("Scotch Game", "e4 e5 Nf3 Nc6 d4"),
    ("Petrov Defence", "e4 e5 Nf3 Nf6"),
    ("King's Gambit", "e4 e5 f4"),
    ("Vienna Game", "e4 e5 Nc3"),
    ("Sicilian Defence", "e4 c5"),
    ("Sicilian, Najdorf", "e4 c5 Nf3 d6 d4 cxd4"),
    ("French Defence", "e4 e6 d4 d5"),
    ("Caro-Kann Defence", "e4 c6 d4 d5"),
    ("Pirc Defence", "e4 d6 d4 Nf6"),
    ("Scandinavian Defence", "e4 d5 exd5"),
    ("Alekhine Defence", "e4 Nf6"),
    ("Queen's Gambit", "d4 d5 c4"),
    ("Queen's Gambit Declined", "d4 d5 c4 e6"),
    ("Slav Defence", "d4 d5 c4 c6"),
    ("King's Indian Defence", "d4 Nf6 c4 g6"),
    ("Nimzo-Indian Defence", "d4 Nf6 c4 e6 Nc3 Bb4"),
    ("Dutch Defence", "d4 f5"),
    ("London System", "d4 d5 Bf4"),
    ("English Opening", "c4 e5"),
    ("Reti Opening", "Nf3 d5 c4"),
    ("Bird Opening", "f4 d5"),
    ("King's Indian Attack", "Nf3 Nf6 g3"),
)

PIECE_VALUES = {chess.PAWN: 1, chess.KNIGHT: 3, chess.BISHOP: 3, chess.ROOK: 5, chess.QUEEN: 9, chess.KING: 0}

DEFAULT_MAX_PLIES = 200


# ------------------------------------------------------------------------------------
# Positions and openings
# ------------------------------------------------------------------------------------
def board_from_fen(fen: str) -> chess.Board:
    """A board from a FEN, or a TranscendError saying why the FEN is not a legal position."""
    try:
        board = chess.Board(fen)
    except ValueError as exc:
        raise TranscendError(f"'{fen}' is not a valid FEN ({exc}).") from exc
    status = board.status()
    if status != chess.STATUS_VALID:
        problems = [flag.name.lower().replace("_", " ") for flag in chess.Status if flag and flag in status]
        raise TranscendError(f"FEN '{fen}' is not a legal chess position: {', '.join(problems)}.")
    return board


@dataclass(frozen=True)
class Opening:
    """Moves (UCI) played before the choosers take over, and a name for the PGN."""

    name: str
    moves: tuple[str, ...]


def book_openings() -> list[Opening]:
    """:data:`OPENING_BOOK` converted to UCI (and checked for legality)."""
    openings = []
    for name, line in OPENING_BOOK:
        board = chess.Board()
        moves = []
        for san in line.split():
            move = board.parse_san(san)
            moves.append(move.uci())
            board.push(move)
        openings.append(Opening(name, tuple(moves)))
    return openings


def draw_opening(
    rng: np.random.Generator,
    *,
    book: bool = True,
    random_plies: int = 0,
    start_fen: str | None = None,
) -> Opening:
    """A book line (uniformly chosen) followed by ``random_plies`` uniformly random legal plies.

    Random plies stop early if the game ends. With ``book=False`` and
    ``random_plies=0`` the opening is empty (the choosers play from the start).
    """
    if random_plies < 0:
        raise TranscendError(f"random_plies must be >= 0, got {random_plies}.")
    board = board_from_fen(start_fen) if start_fen else chess.Board()
    name_parts: list[str] = []
    moves: list[str] = []
    if book:
        if start_fen and board.fen() != chess.STARTING_FEN:
            raise TranscendError("The opening book starts from the initial position; use book=False with start_fen.")
        openings = book_openings()
        chosen = openings[int(rng.integers(len(openings)))]
        name_parts.append(chosen.name)
        for uci in chosen.moves:
            board.push_uci(uci)
            moves.append(uci)
    for _ in range(random_plies):
        legal = sorted(board.legal_moves, key=lambda m: m.uci())
        if not legal or board.is_game_over(claim_draw=True):
            break
        move = legal[int(rng.integers(len(legal)))]
        board.push(move)
        moves.append(move.uci())
    if random_plies:
        name_parts.append(f"+{random_plies} random plies")
    return Opening(" ".join(name_parts) or "none", tuple(moves))


# ------------------------------------------------------------------------------------
# Adjudication
# ------------------------------------------------------------------------------------
class Adjudicator(Protocol):
    """Decides the result of a game stopped at the ply cap: ``"1-0"``, ``"0-1"`` or ``"1/2-1/2"``."""

    def __call__(self, board: chess.Board) -> str: ...


def material_balance(board: chess.Board) -> int:
    """White's material minus Black's, in pawn units (P=1, N=B=3, R=5, Q=9)."""
    total = 0
    for piece_type, value in PIECE_VALUES.items():
        total += value * (len(board.pieces(piece_type, chess.WHITE)) - len(board.pieces(piece_type, chess.BLACK)))
    return total


@dataclass(frozen=True)
class MaterialAdjudicator:
    """Engine-free adjudication: a material lead of at least ``threshold`` pawn units wins."""

    threshold: int = 3

    def __call__(self, board: chess.Board) -> str:
        balance = material_balance(board)
        if balance >= self.threshold:
            return "1-0"
        if balance <= -self.threshold:
            return "0-1"
        return "1/2-1/2"


@dataclass
class EngineAdjudicator:
    """White wins if its engine winning chances are >= ``threshold``, loses if <= 1 - threshold."""

    engine: Engine
    limit: SearchLimit = DEFAULT_SCORE_LIMIT
    threshold: float = 0.8

    def __call__(self, board: chess.Board) -> str:
        p = self.engine.win_probability_white(board, self.limit)
        if p >= self.threshold:
            return "1-0"
        if p <= 1.0 - self.threshold:
            return "0-1"
        return "1/2-1/2"


# ------------------------------------------------------------------------------------
# Games
# ------------------------------------------------------------------------------------
@dataclass
class GameRecord:
    """One finished game: who played, how it ended, the moves, and the PGN game."""

    white: str
    black: str
    result: str  # "1-0", "0-1" or "1/2-1/2"
    termination: str  # checkmate, stalemate, threefold_repetition, ..., or "adjudication"
    moves: list[str]  # UCI, from start_fen, opening included
    opening: str
    opening_plies: int
    start_fen: str
    game: chess.pgn.Game = field(repr=False)

    @property
    def plies(self) -> int:
        return len(self.moves)

    def score_for(self, name: str) -> float:
        """1, 0.5 or 0 for the player called ``name`` (who must have played the game)."""
        if name not in (self.white, self.black):
            raise TranscendError(f"'{name}' did not play this game ({self.white} vs {self.black}).")
        if self.result == "1/2-1/2":
            return 0.5
        white_won = self.result == "1-0"
        return float(white_won if name == self.white else not white_won)


def play_game(
    white: MoveChooser,
    black: MoveChooser,
    rng: np.random.Generator,
    *,
    opening: Opening | None = None,
    start_fen: str | None = None,
    max_plies: int = DEFAULT_MAX_PLIES,
    adjudicate: Adjudicator | Callable[[chess.Board], str] | None = None,
    headers: dict[str, str] | None = None,
) -> GameRecord:
    """Play one game; all chooser randomness comes from ``rng`` (same rng state -> same game).

    ``max_plies`` counts every ply including the opening; at the cap the game is
    adjudicated (default :class:`MaterialAdjudicator`). An opening move that is illegal
    in the start position raises TranscendError.
    """
    if max_plies < 1:
        raise TranscendError(f"max_plies must be positive, got {max_plies}.")
    board = board_from_fen(start_fen) if start_fen else chess.Board()
    start = board.fen()
    adjudicate = adjudicate or MaterialAdjudicator()
    opening = opening or Opening("none", ())
    for uci in opening.moves:
        try:
            move = chess.Move.from_uci(uci)
        except ValueError as exc:
            raise TranscendError(f"Opening move '{uci}' is not a UCI move.") from exc
        if move not in board.legal_moves:
            raise TranscendError(f"Opening move '{uci}' is illegal in {board.fen()}.")
        board.push(move)
    outcome = board.outcome(claim_draw=True)
    while outcome is None and len(board.move_stack) < max_plies:
        chooser = white if board.turn == chess.WHITE else black
        move = chooser.choose_move(board, rng)
        if move not in board.legal_moves:
            raise TranscendError(f"Player '{chooser.name}' chose the illegal move {move.uci()} in {board.fen()}.")
        board.push(move)
        outcome = board.outcome(claim_draw=True)
    if outcome is not None:
        result = outcome.result()
        termination = outcome.termination.name.lower()
    else:
        result = adjudicate(board)
        if result not in ("1-0", "0-1", "1/2-1/2"):
            raise TranscendError(f"The adjudicator returned '{result}', expected 1-0, 0-1 or 1/2-1/2.")
        termination = "adjudication"
    moves = [m.uci() for m in board.move_stack]
    game = chess.pgn.Game.from_board(board)
    game.headers["Event"] = "transcend simulated game"
    game.headers["Site"] = "transcend"
    game.headers["Date"] = "????.??.??"  # no wall-clock data: identical runs give identical files
    game.headers["Round"] = "-"
    game.headers["White"] = white.name
    game.headers["Black"] = black.name
    game.headers["Result"] = result
    game.headers["Termination"] = "adjudication" if termination == "adjudication" else "normal"
    game.headers["TerminationDetail"] = termination
    game.headers["Opening"] = opening.name
    game.headers["OpeningPlies"] = str(len(opening.moves))
    game.headers["PlyCount"] = str(len(moves))
    for key, value in (headers or {}).items():
        game.headers[key] = value
    return GameRecord(
        white=white.name,
        black=black.name,
        result=result,
        termination=termination,
        moves=moves,
        opening=opening.name,
        opening_plies=len(opening.moves),
        start_fen=start,
        game=game,
    )


def play_match(
    a: MoveChooser,
    b: MoveChooser,
    n_games: int,
    *,
    seed: int,
    book: bool = True,
    random_plies: int = 0,
    max_plies: int = DEFAULT_MAX_PLIES,
    adjudicate: Adjudicator | Callable[[chess.Board], str] | None = None,
    progress: Callable[[GameRecord], None] | None = None,
) -> list[GameRecord]:
    """``n_games`` games between ``a`` and ``b``, colours alternating (``a`` is White in even games).

    Games ``2k`` and ``2k + 1`` share an opening (drawn with :func:`draw_opening`)
    with colours swapped, which cancels most of the opening's bias. Randomness of
    game ``i`` comes from ``SeedSequence([seed, i // 2])``: one child for the
    opening, one per game of the pair.
    """
    if n_games < 0:
        raise TranscendError(f"n_games must be >= 0, got {n_games}.")
    records: list[GameRecord] = []
    for i in range(n_games):
        pair = i // 2
        opening_ss, first_ss, second_ss = np.random.SeedSequence([int(seed), pair]).spawn(3)
        opening = draw_opening(np.random.default_rng(opening_ss), book=book, random_plies=random_plies)
        if i % 2 == 0:
            white, black, game_ss = a, b, first_ss
        else:
            white, black, game_ss = b, a, second_ss
        record = play_game(
            white,
            black,
            np.random.default_rng(game_ss),
            opening=opening,
            max_plies=max_plies,
            adjudicate=adjudicate,
            headers={"Round": str(i + 1)},
        )
        records.append(record)
        if progress is not None:
            progress(record)
    return records


def match_score(records: Sequence[GameRecord], name: str) -> float:
    """Total points of ``name`` over ``records``."""
    return sum(r.score_for(name) for r in records)


# ------------------------------------------------------------------------------------
# PGN
# ------------------------------------------------------------------------------------
def games_to_pgn(games: Iterable[chess.pgn.Game | GameRecord]) -> str:
    """PGN text of several games, separated by blank lines."""
    parts = []
    for g in games:
        game = g.game if isinstance(g, GameRecord) else g
        exporter = chess.pgn.StringExporter(headers=True, variations=True, comments=True)
        parts.append(game.accept(exporter))
    return "\n\n".join(parts) + ("\n" if parts else "")


def write_pgn(games: Iterable[chess.pgn.Game | GameRecord], path: str | os.PathLike[str]) -> Path:
    """Write games to a PGN file (atomically: a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(games_to_pgn(games), encoding="utf-8")
    tmp.replace(path)
    return path


class _QuietGameBuilder(chess.pgn.GameBuilder):
    """Collects parse errors on the game (as python-chess does) without logging them."""

    def handle_error(self, error: Exception) -> None:
        self.game.errors.append(error)


_DEFAULT_TAGS = {
    "Event": "?", "Site": "?", "Date": "????.??.??", "Round": "?", "White": "?", "Black": "?", "Result": "*"
}


def parse_pgn(text: str, source: str = "PGN text") -> list[chess.pgn.Game]:
    """All games in ``text``; TranscendError naming the game if any is malformed or illegal."""
    stream = io.StringIO(text)
    games: list[chess.pgn.Game] = []
    while True:
        game = chess.pgn.read_game(stream, Visitor=_QuietGameBuilder)
        if game is None:
            break
        number = len(games) + 1
        if game.errors:
            raise TranscendError(f"Game {number} in {source} is malformed: {game.errors[0]}.")
        if dict(game.headers) == _DEFAULT_TAGS and game.next() is None:
            raise TranscendError(f"Game {number} in {source} has no tags and no moves: this is not PGN.")
        games.append(game)
    if not games:
        raise TranscendError(f"{source} contains no PGN games.")
    return games


def read_pgn(path: str | os.PathLike[str]) -> list[chess.pgn.Game]:
    """All games of a PGN file; TranscendError if the file is missing, empty or malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TranscendError(f"PGN file '{path}' does not exist.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscendError(f"PGN file '{path}' cannot be read as UTF-8 text ({exc}).") from exc
    return parse_pgn(text, source=f"'{path}'")


def record_from_pgn(game: chess.pgn.Game) -> GameRecord:
    """Rebuild a :class:`GameRecord` from a PGN game written by :func:`play_game`."""
    headers = game.headers
    board = game.board()
    start = board.fen()
    moves = [m.uci() for m in game.mainline_moves()]
    result = headers.get("Result", "*")
    if result not in ("1-0", "0-1", "1/2-1/2"):
        raise TranscendError(f"PGN game {headers.get('White', '?')} vs {headers.get('Black', '?')} has no result.")
    try:
        opening_plies = int(headers.get("OpeningPlies", "0"))
    except ValueError as exc:
        raise TranscendError(f"PGN header OpeningPlies must be an integer, got {headers['OpeningPlies']!r}.") from exc
    return GameRecord(
        white=headers.get("White", "?"),
        black=headers.get("Black", "?"),
        result=result,
        termination=headers.get("TerminationDetail", headers.get("Termination", "unknown")),
        moves=moves,
        opening=headers.get("Opening", "none"),
        opening_plies=opening_plies,
        start_fen=start,
        game=game,
    )
