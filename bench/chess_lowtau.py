"""Why a model can play worse at low temperature than at τ = 1: what its arg-max move is, on held-out positions.

For each cutoff of a finished run, on up to ``--positions`` held-out positions (never trained
on): the model's arg-max move (legal moves only, the τ → 0 move), the exact mixture's mode
(the ideal learner's τ → 0 move) and the move the player actually chose. For each: the mean
loss of engine win probability against the engine's best move (the run's scoring budget),
the share of blunders (a loss above 0.2), the share of captures, and the model's expected
loss at τ = 1 beside them. Then the lowest cutoff's model plays ``--games`` games at
τ = 0.001 and at τ = 1 against the four weakest ladder rungs and the games' endings are
counted (a board-only policy with no knowledge of the history repeats itself at low τ), and
so are those of the same model at τ = 0.001 with its draw flags hidden (every move shown as
not drawing: what the board alone tells it), of the ideal learner at τ = 0.001 and of the
cutoff's best player.

    OMP_NUM_THREADS=1 python bench/chess_lowtau.py --run runs/chess-fit-s0
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import chess
import numpy as np
import torch

from transcend.chess.config import ChessConfig
from transcend.chess.corpus import N_INPUT_TOKENS, MoveCorpus, encode_board, legal_tokens, token_move
from transcend.chess.ideal import IdealPlayer, Mixture
from transcend.chess.pipeline import CONFIG, LADDER, World
from transcend.chess.policy import PolicyPlayer, load_policy, predict_logits, tempered
from transcend.chess.rating import Ladder, rate_player

BLUNDER = 0.2


class FlagsHidden(PolicyPlayer):
    """The model shown no move as drawing (the board-only input): an ablation of the draw flags."""

    def logits(self, board: chess.Board) -> np.ndarray:
        x = torch.from_numpy(encode_board(board).astype(np.int64))[None]
        with torch.no_grad():
            return self.model(x)[0].float().numpy().astype(np.float64)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/chess-small")
    parser.add_argument("--positions", type=int, default=500)
    parser.add_argument("--games", type=int, default=24, help="games per temperature for the endings count")
    args = parser.parse_args(argv)
    run = Path(args.run)
    cfg = ChessConfig.load(run / CONFIG)
    out: dict = {"run": str(run)}
    with World(cfg, run) as world:
        for held_path in sorted((run / "corpus").glob("*.heldout.npz"), key=lambda p: float(p.name.split(".")[0])):
            label = held_path.name.split(".")[0]
            held = MoveCorpus.load(held_path)
            train = MoveCorpus.load(run / "corpus" / f"{label}.npz")
            counts = Counter(train.players.tolist())
            mixture = Mixture.from_counts([p for p in world.players if p.name in counts], counts)
            model = load_policy(run / "models" / label / "latest.pt")
            rows = np.arange(min(args.positions, len(held)))
            sub = held.subset(rows)
            logits = predict_logits(model, sub.inputs, draws=sub.draw_mask(np.arange(len(sub))))
            stats = {k: [] for k in ("model_argmax", "mixture_mode", "played")}
            captures = {k: [] for k in stats}
            expected_tau1 = []
            for i in range(len(sub)):
                board = chess.Board(sub.fens[i])
                wp = world.scorer.winprobs(board)
                best = max(wp.values())
                tokens = np.asarray(legal_tokens(board))
                p = tempered(logits[i][tokens - N_INPUT_TOKENS], 1.0)
                moves = [token_move(board, int(t)) for t in tokens]
                ucis, f = mixture.distribution(board)
                chosen = {"model_argmax": moves[int(np.argmax(p))],
                          "mixture_mode": chess.Move.from_uci(ucis[int(np.argmax(f))]),
                          "played": token_move(board, int(sub.targets[i]))}
                for k, m in chosen.items():
                    stats[k].append(best - wp[m.uci()])
                    captures[k].append(board.is_capture(m))
                expected_tau1.append(float(sum(pi * (best - wp[m.uci()]) for pi, m in zip(p, moves, strict=True))))
            out[label] = {"positions": len(sub),
                          **{k: {"mean_loss": float(np.mean(v)), "blunder_share": float(np.mean(np.array(v) > BLUNDER)),
                                 "capture_share": float(np.mean(captures[k]))} for k, v in stats.items()},
                          "model_tau1_expected_loss": float(np.mean(expected_tau1))}
        lowest = min((k for k in out if k != "run"), key=float)
        ladder = Ladder.from_dict(json.loads((run / LADDER).read_text()))
        model = load_policy(run / "models" / lowest / "latest.pt")
        endings = {}
        train = MoveCorpus.load(run / "corpus" / f"{lowest}.npz")
        counts = Counter(train.players.tolist())
        mixture = Mixture.from_counts([p for p in world.players if p.name in counts], counts)
        best = json.loads((run / "metrics.json").read_text())["cutoffs"][lowest]["best_player"]
        contestants = {"model 0.001": PolicyPlayer(model, 0.001, name="model-t0.001"),
                       "model 0.001, draw flags hidden": FlagsHidden(model, 0.001, name="model-t0.001-noflags"),
                       "model 1.0": PolicyPlayer(model, 1.0, name="model-t1"),
                       "ideal 0.001": IdealPlayer(mixture, 0.001, name="ideal-t0.001"),
                       f"best player {best}": world.player(best)}
        for key, player in contestants.items():
            rating, games = rate_player(player, ladder, world.ladder_entrants()[:4], args.games, 999,
                                        random_plies=cfg.random_plies, max_plies=cfg.max_plies)
            endings[key] = {"rating": rating.rating, "rd": rating.rd,
                                  "score": float(np.mean([g.score_for(player.name) for g in games])),
                                  "endings": dict(Counter(g.termination for g in games))}
        out["endings_" + lowest] = endings
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
