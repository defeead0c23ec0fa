"""Control for the chess result: does the model still beat the best player when trained on that player alone?

In a finished run, for one cutoff: train the same model, with the same schedule, on

* ``single``: only the moves of the cutoff's best player (from the cutoff's training games);
* ``subsample``: the moves of all the cutoff's players, subsampled (seeded) to as many moves;

and rate each at τ = favor_temperature and τ = 1 with ``verdict_games`` games against the
run's ladder. With one player the ideal learner *is* that player (no vote), so a model
trained on it that still plays better than it at low τ is denoising by what it cannot
fit (position-specific errors), not by a vote of several players; the subsample keeps
the amount of data equal so that the two differ only in the number of players.

    OMP_NUM_THREADS=1 python bench/chess_single_player.py --run runs/chess-small --which single
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from transcend.chess.config import ChessConfig
from transcend.chess.pipeline import CONFIG, World, cutoff_label
from transcend.chess.rating import Ladder, rate_player
from transcend.chess.policy import PolicyPlayer, load_policy, policy_model, train_policy
from transcend.learner.train import CHECKPOINT
from transcend.chess.corpus import MoveCorpus


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/chess-small")
    parser.add_argument("--cutoff", help="cutoff label (default: the lowest)")
    parser.add_argument("--which", choices=("single", "subsample"), required=True)
    args = parser.parse_args(argv)
    run = Path(args.run)
    cfg = ChessConfig.load(run / CONFIG)
    metrics = json.loads((run / "metrics.json").read_text())
    label = args.cutoff or min(metrics["cutoffs"], key=float)
    entry = metrics["cutoffs"][label]
    corpus = MoveCorpus.load(run / "corpus" / f"{cutoff_label(float(entry['cutoff']))}.npz")
    best = entry["best_player"]
    n_single = int((corpus.players == best).sum())
    if args.which == "single":
        rows = np.flatnonzero(corpus.players == best)
    else:
        rng = np.random.default_rng([cfg.seed, 0x5B])
        rows = np.sort(rng.choice(len(corpus), size=n_single, replace=False))
    sub = corpus.subset(rows)
    out_dir = run / "controls" / f"{label}-{args.which}"
    ckpt = out_dir / CHECKPOINT
    if ckpt.is_file() and (out_dir / "training.json").is_file():
        model = load_policy(ckpt)
    else:
        torch.manual_seed(cfg.seed)
        model = policy_model(cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.causal)
        train_policy(model, sub, cfg.training, out_dir, seed=cfg.seed, resume=True)
        (out_dir / "training.json").write_text(json.dumps({"moves": len(sub)}))
    ladder = Ladder.from_dict(json.loads((run / "ladder.json").read_text()))
    result: dict = {"cutoff": label, "which": args.which, "moves": len(sub), "players": sorted(set(sub.players)),
                    "best_player": best, "best_player_rating": entry["best_player_rating"],
                    "best_player_rd": entry["best_player_rd"], "by_temperature": {}}
    with World(cfg, run) as world:
        opponents = world.ladder_entrants()
        for i, tau in enumerate((cfg.favor_temperature, 1.0)):
            player = PolicyPlayer(model, tau, name=f"control-{args.which}-t{tau:g}")
            rating, games = rate_player(player, ladder, opponents, cfg.verdict_games, cfg.seed * 43 + i,
                                        random_plies=cfg.random_plies, max_plies=cfg.max_plies)
            result["by_temperature"][repr(float(tau))] = {"rating": rating.rating, "rd": rating.rd,
                                                           "games": len(games)}
            print(f"{args.which} ({len(sub)} moves of {', '.join(result['players'])}) τ={tau:g}: "
                  f"{rating.rating:.0f} ± {2 * rating.rd:.0f} vs best player {best} "
                  f"{entry['best_player_rating']:.0f} ± {2 * entry['best_player_rd']:.0f}", flush=True)
    (out_dir / "rating.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
