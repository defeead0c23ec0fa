"""Benchmark: 1,000 rated games against the calibrated ladder (goal <= 10 minutes on 2 cores).

Uses a finished chess run folder (default ``runs/chess-small``, made by
``transcend chess reproduce --scale small --out runs/chess-small``): its calibrated
ladder, its score cache and the model of its lowest cutoff. The model plays
``--games`` games at ``--temperature`` against the ladder entrants in turn (colours
alternating), then gets its Glicko-2 rating; the whole thing is timed. Reference
measured in the same run: the same number of plies' worth of random-vs-random games
(the bare game loop), reported as a ratio.

    OMP_NUM_THREADS=1 python bench/bench_chess_rating.py --games 1000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from transcend.chess.config import ChessConfig
from transcend.chess.pipeline import CONFIG, LADDER, World, cutoff_label
from transcend.chess.rating import Ladder, play_pair, rate_player
from transcend.chess.policy import PolicyPlayer, load_policy
from transcend.chess.players import RandomMover


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/chess-small", help="a finished chess run folder")
    parser.add_argument("--games", type=int, default=1000)
    parser.add_argument("--temperature", type=float, default=0.001)
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args(argv)
    run = Path(args.run)
    cfg = ChessConfig.load(run / CONFIG)
    ladder = Ladder.from_dict(json.loads((run / LADDER).read_text()))
    metrics = json.loads((run / "metrics.json").read_text())
    label = cutoff_label(min(e["cutoff"] for e in metrics["cutoffs"].values()))
    model = load_policy(run / "models" / label / "latest.pt")
    with World(cfg, run) as world:
        opponents = world.ladder_entrants()
        player = PolicyPlayer(model, args.temperature, name=f"model-{label}")
        t0 = time.perf_counter()
        rating, games = rate_player(player, ladder, opponents, args.games, args.seed,
                                    random_plies=cfg.random_plies, max_plies=cfg.max_plies)
        seconds = time.perf_counter() - t0
    plies = sum(g.plies for g in games)
    t1 = time.perf_counter()
    ref_games = ref_plies = 0
    while ref_plies < plies:
        for g in play_pair(RandomMover("r1"), RandomMover("r2"), 2, args.seed + ref_games, max_plies=cfg.max_plies):
            ref_plies += g.plies
            ref_games += 1
    ref_seconds = time.perf_counter() - t1
    report = {"games": len(games), "seconds": round(seconds, 1), "minutes": round(seconds / 60, 2),
              "goal_minutes": 10, "plies": plies, "rating": round(rating.rating, 1), "rd": round(rating.rd, 1),
              "reference_random_games": ref_games, "reference_seconds": round(ref_seconds, 2),
              "ratio_vs_random_loop": round(seconds / ref_seconds, 1)}
    print(f"{len(games)} rated games (model {label}, τ={args.temperature:g}) in {seconds / 60:.2f} min "
          f"(goal ≤ 10 min); rating {rating.rating:.0f} ± {2 * rating.rd:.0f}")
    print(f"  reference: {ref_games} random-vs-random games with as many plies ({plies}) in {ref_seconds:.1f} s; "
          f"ratio {seconds / ref_seconds:.1f}x")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
