"""Games -> training examples for the move model: board-state input, one move token out.

Representation (why this one, see docs/chess.md): the model sees the *board state*
of the position and predicts the move, instead of the move list of the game so far
(the paper's choice). With a few thousand games on two CPU cores, a model reading
move lists must first learn to track the board before it can learn which moves are
good; a board-state model only has to learn the second. Three further choices make
the most of little data:

* **Side-to-move view.** Positions with Black to move are mirrored
  (``chess.Board.mirror``: ranks flipped, colours swapped), so the model always plays
  "up the board" as White and what it learns about one colour serves the other. Moves
  are mirrored back when played.
* **Attack counts in the square tokens.** Each square's token is (piece, number of
  the mover's pieces attacking the square capped at 2, number of the opponent's
  capped at 2): 13 x 3 x 3 = 117 square tokens. These are facts of the rules
  (python-chess computes them), not engine judgements; they make "this piece hangs"
  visible in one token, which a small model otherwise needs many games to discover.
* **Global tokens first, then the squares.** A castling-rights token (16 values) and an
  en-passant-file token (9 values) come first, so that every square's position can
  attend to them; then the 64 square tokens a1..h8. The model scores a move from the
  hidden states at its from- and to-squares (``chess/policy.py``). The board
  state is input only: the loss is on the move, over the legal moves of the position.

Move vocabulary: the 1,968 UCI moves that can ever be legal (queen-line and knight
moves between squares, 1,792, plus 176 promotions), sorted; token id = number of input
tokens + index.

**Which moves end the game drawn.** A chess position is more than its placement: the game's
history decides which moves let a draw be claimed (threefold repetition, fifty moves;
``players.drawing_moves``, the game loop's own rule). The players value such a move as a
draw, and every legal move carries the flag (``legal_draws``) to the model, which learns from
the players' games when they take a draw and when they avoid one (``chess/policy.py``). Without
it a board-only model at low temperature plays the same move every time a position recurs and
draws won games by repetition (docs/chess.md).

An example is (66 input token ids, target move id, legal move ids, their draw flags); a corpus
stores them as numpy arrays (``inputs`` (N, 66) int16, ``targets`` (N,), legal moves as CSR
``legal_offsets``/``legal_ids``, ``legal_draws`` beside them) plus the position key and the
player who moved.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import chess
import numpy as np

from transcend.errors import TranscendError
from transcend.chess.games import GameRecord
from transcend.chess.players import drawing_moves

N_PIECE = 13  # empty, own P N B R Q K, opponent P N B R Q K
ATTACK_CAP = 2
N_ATTACK = ATTACK_CAP + 1
N_SQUARE_TOKENS = N_PIECE * N_ATTACK * N_ATTACK  # 117
CASTLE_BASE = N_SQUARE_TOKENS  # 16 tokens
EP_BASE = CASTLE_BASE + 16  # 9 tokens (no ep, files a-h)
N_INPUT_TOKENS = EP_BASE + 9  # 142
N_GLOBAL = 2  # castling, en passant; then the 64 squares
SEQ_LEN = N_GLOBAL + 64


@lru_cache(maxsize=1)
def move_vocabulary() -> tuple[str, ...]:
    """The 1,968 UCI moves that can be legal in some position, sorted."""
    moves: set[str] = set()
    for a in chess.SQUARES:
        fa, ra = chess.square_file(a), chess.square_rank(a)
        for b in chess.SQUARES:
            if a == b:
                continue
            fb, rb = chess.square_file(b), chess.square_rank(b)
            df, dr = abs(fa - fb), abs(ra - rb)
            if df == 0 or dr == 0 or df == dr or {df, dr} == {1, 2}:
                moves.add(chess.square_name(a) + chess.square_name(b))
    for fa in range(8):
        for fb in (fa - 1, fa, fa + 1):
            if 0 <= fb < 8:
                for piece in "qrbn":
                    moves.add(f"{chess.FILE_NAMES[fa]}7{chess.FILE_NAMES[fb]}8{piece}")
                    moves.add(f"{chess.FILE_NAMES[fa]}2{chess.FILE_NAMES[fb]}1{piece}")
    out = tuple(sorted(moves))
    assert len(out) == 1968, len(out)
    return out


@lru_cache(maxsize=1)
def move_index() -> dict[str, int]:
    return {m: i for i, m in enumerate(move_vocabulary())}


@lru_cache(maxsize=1)
def move_squares() -> tuple[np.ndarray, np.ndarray]:
    """From- and to-square (0-63) of every move of the vocabulary."""
    moves = [chess.Move.from_uci(m) for m in move_vocabulary()]
    return (np.array([m.from_square for m in moves], dtype=np.int64),
            np.array([m.to_square for m in moves], dtype=np.int64))


N_MOVES = 1968
VOCAB_SIZE = N_INPUT_TOKENS + N_MOVES


def mirror_uci(uci: str) -> str:
    """The same move seen from the other side (ranks flipped): e2e4 <-> e7e5."""
    move = chess.Move.from_uci(uci)
    return chess.Move(chess.square_mirror(move.from_square), chess.square_mirror(move.to_square),
                      move.promotion).uci()


def oriented(board: chess.Board) -> chess.Board:
    """The board from the side to move's point of view (mirrored when Black is to move)."""
    return board if board.turn == chess.WHITE else board.mirror()


def encode_board(board: chess.Board) -> np.ndarray:
    """The 66 input token ids of a position (side-to-move view)."""
    b = oriented(board)
    us, them = chess.WHITE, chess.BLACK
    out = np.empty(SEQ_LEN, dtype=np.int16)
    for sq in chess.SQUARES:
        piece = b.piece_at(sq)
        p = 0 if piece is None else piece.piece_type + (0 if piece.color == us else 6)
        a_us = min(len(b.attackers(us, sq)), ATTACK_CAP)
        a_them = min(len(b.attackers(them, sq)), ATTACK_CAP)
        out[N_GLOBAL + sq] = (p * N_ATTACK + a_us) * N_ATTACK + a_them
    castle = (int(b.has_kingside_castling_rights(us)) | int(b.has_queenside_castling_rights(us)) << 1
              | int(b.has_kingside_castling_rights(them)) << 2 | int(b.has_queenside_castling_rights(them)) << 3)
    out[0] = CASTLE_BASE + castle
    ep = b.ep_square if b.has_legal_en_passant() else None
    out[1] = EP_BASE + (0 if ep is None else 1 + chess.square_file(ep))
    return out


def move_token(board: chess.Board, move: chess.Move | str) -> int:
    """Token id of ``move`` played in ``board`` (in the side-to-move view)."""
    uci = move if isinstance(move, str) else move.uci()
    if board.turn == chess.BLACK:
        uci = mirror_uci(uci)
    try:
        return N_INPUT_TOKENS + move_index()[uci]
    except KeyError:
        raise TranscendError(f"'{uci}' is not a chess move that can be played.") from None


def token_move(board: chess.Board, token: int) -> chess.Move:
    """The real move (un-mirrored) for a move token id in ``board``; may be illegal."""
    index = int(token) - N_INPUT_TOKENS
    if not 0 <= index < N_MOVES:
        raise TranscendError(f"token {token} is not a move token.")
    uci = move_vocabulary()[index]
    if board.turn == chess.BLACK:
        uci = mirror_uci(uci)
    return chess.Move.from_uci(uci)


def legal_tokens(board: chess.Board) -> list[int]:
    """Token ids of the legal moves (side-to-move view), sorted."""
    return sorted(move_token(board, m) for m in board.legal_moves)


@dataclass
class MoveCorpus:
    """Training examples: board-state inputs, the move played, the legal moves, who played it."""

    inputs: np.ndarray  # (N, 66) int16
    targets: np.ndarray  # (N,) int32 move token ids
    legal_offsets: np.ndarray  # (N + 1,) int64
    legal_ids: np.ndarray  # (sum of legal moves,) int16, token ids
    players: np.ndarray  # (N,) str: who chose the move
    fens: np.ndarray  # (N,) str: the position (EPD, as players perceive it)
    games: np.ndarray  # (N,) int32: index of the game
    # (sum of legal moves,) bool, beside legal_ids: the move lets the game be claimed drawn (None = none do)
    legal_draws: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.legal_draws is None:
            self.legal_draws = np.zeros(len(self.legal_ids), dtype=bool)

    def __len__(self) -> int:
        return len(self.targets)

    def legal_mask(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), N_MOVES) boolean mask of the legal moves of those examples."""
        mask = np.zeros((len(rows), N_MOVES), dtype=bool)
        for i, r in enumerate(rows):
            ids = self.legal_ids[self.legal_offsets[r]:self.legal_offsets[r + 1]].astype(np.int64) - N_INPUT_TOKENS
            mask[i, ids] = True
        return mask

    def draw_mask(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), N_MOVES) boolean mask of the moves after which those positions' games can be claimed drawn."""
        mask = np.zeros((len(rows), N_MOVES), dtype=bool)
        for i, r in enumerate(rows):
            lo, hi = self.legal_offsets[r], self.legal_offsets[r + 1]
            ids = self.legal_ids[lo:hi][self.legal_draws[lo:hi]].astype(np.int64) - N_INPUT_TOKENS
            mask[i, ids] = True
        return mask

    def subset(self, rows: np.ndarray) -> MoveCorpus:
        rows = np.asarray(rows, dtype=np.int64)
        lens = self.legal_offsets[rows + 1] - self.legal_offsets[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        ids = np.concatenate([self.legal_ids[self.legal_offsets[r]:self.legal_offsets[r + 1]] for r in rows]) \
            if len(rows) else np.zeros(0, dtype=np.int16)
        draws = np.concatenate([self.legal_draws[self.legal_offsets[r]:self.legal_offsets[r + 1]] for r in rows]) \
            if len(rows) else np.zeros(0, dtype=bool)
        return MoveCorpus(self.inputs[rows], self.targets[rows], offsets, ids, self.players[rows],
                          self.fens[rows], self.games[rows], draws)

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, inputs=self.inputs, targets=self.targets, legal_offsets=self.legal_offsets,
                            legal_ids=self.legal_ids, players=self.players, fens=self.fens, games=self.games,
                            legal_draws=self.legal_draws)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MoveCorpus:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(**{k: z[k] for k in ("inputs", "targets", "legal_offsets", "legal_ids", "players",
                                                  "fens", "games", "legal_draws")})
        except FileNotFoundError:
            raise TranscendError(f"chess corpus '{path}' does not exist.") from None
        except (OSError, KeyError, ValueError) as e:
            raise TranscendError(f"chess corpus '{path}' is not a transcend move corpus ({e}).") from None


def build_corpus(games: Sequence[GameRecord], players: Iterable[str] | None = None,
                 skip_opening: bool = True) -> MoveCorpus:
    """One example per move chosen by a player of ``players`` (all players when None).

    Opening plies (book lines and random plies) are left out: nobody chose them.
    """
    wanted = None if players is None else set(players)
    inputs, targets, offsets, ids, who, fens, game_ix, draws = [], [], [0], [], [], [], [], []
    for g_index, record in enumerate(games):
        board = chess.Board(record.start_fen)
        for ply, uci in enumerate(record.moves):
            mover = record.white if board.turn == chess.WHITE else record.black
            if (ply >= record.opening_plies or not skip_opening) and (wanted is None or mover in wanted):
                inputs.append(encode_board(board))
                targets.append(move_token(board, uci))
                legal = legal_tokens(board)
                ids.extend(legal)
                drawing = {move_token(board, u) for u in drawing_moves(board)}
                draws.extend(t in drawing for t in legal)
                offsets.append(offsets[-1] + len(legal))
                who.append(mover)
                fens.append(board.epd(en_passant="legal"))
                game_ix.append(g_index)
            board.push_uci(uci)
    return MoveCorpus(
        inputs=np.stack(inputs) if inputs else np.zeros((0, SEQ_LEN), dtype=np.int16),
        targets=np.asarray(targets, dtype=np.int32),
        legal_offsets=np.asarray(offsets, dtype=np.int64),
        legal_ids=np.asarray(ids, dtype=np.int16),
        players=np.asarray(who, dtype=str),
        fens=np.asarray(fens, dtype=str),
        games=np.asarray(game_ix, dtype=np.int32),
        legal_draws=np.asarray(draws, dtype=bool),
    )
