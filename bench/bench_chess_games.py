"""Benchmark: chess game generation throughput (games per minute) for simulated players.

Measures, in one run and on one core (Stockfish Threads=1):

* ``simulated``: games between four simulated players of the population rule's family
  (weakness 0.8, 0.5, 0.2, 0; paired round-robin style) at the default scoring budget
  (``engine.DEFAULT_SCORE_LIMIT``), with a fresh score cache -- the cost of making
  expert data;
* ``engine``: Stockfish (skill 20, ``--engine-nodes`` nodes per move) against itself,
  a reference for raw engine-driven play;
* ``random``: two random movers, a reference for the pure game-loop cost (move
  generation, draw claims, PGN objects).

and prints absolute games/minute and plies/second for each, and the ratio of the
simulated throughput to each reference (machines differ; ratios travel better).

    /work/venv/bin/python bench/bench_chess_games.py --games 12
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence

from transcend.chess.engine import DEFAULT_SCORE_LIMIT, Engine
from transcend.chess.games import DEFAULT_MAX_PLIES, GameRecord, play_match
from transcend.chess.players import EnginePlayer, MoveChooser, MoveScorer, RandomMover
from transcend.chess.population import PROBE_BLIND_SPOT, PlayerSpec


def _timed_games(pairs: Sequence[tuple[MoveChooser, MoveChooser]], n_games: int, max_plies: int, seed: int) -> dict:
    """Play ``n_games`` spread over ``pairs`` (two games per pair in turn, colours swapped)."""
    records: list[GameRecord] = []
    start = time.perf_counter()
    cycle = itertools.cycle(enumerate(pairs))
    while len(records) < n_games:
        index, (a, b) = next(cycle)
        batch = min(2, n_games - len(records))
        records += play_match(a, b, batch, seed=seed + 1000 * index + len(records), max_plies=max_plies)
    seconds = time.perf_counter() - start
    plies = sum(r.plies for r in records)
    return {
        "games": len(records),
        "seconds": round(seconds, 3),
        "games_per_minute": round(60.0 * len(records) / seconds, 2),
        "plies_per_second": round(plies / seconds, 1),
        "mean_plies": round(plies / len(records), 1),
        "adjudicated": sum(r.termination == "adjudication" for r in records),
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=12, help="games per measurement (default 12)")
    parser.add_argument("--max-plies", type=int, default=DEFAULT_MAX_PLIES, help="ply cap per game")
    parser.add_argument("--engine-nodes", type=int, default=2000, help="nodes per move of the engine reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", default=None, help="engine path (default: $TRANSCEND_STOCKFISH / PATH)")
    args = parser.parse_args(argv)

    with Engine(args.engine) as engine:
        scorer = MoveScorer(engine, DEFAULT_SCORE_LIMIT)
        population = [PlayerSpec(f"player-w{w:g}", "", args.seed * 1000 + i, w, PROBE_BLIND_SPOT).build(scorer)
                      for i, w in enumerate((0.8, 0.5, 0.2, 0.0))]  # four strengths of the population rule
        sim_pairs = list(itertools.combinations(population, 2))
        simulated = _timed_games(sim_pairs, args.games, args.max_plies, args.seed)
        simulated["cache_hit_rate"] = round(scorer.cache.hits / max(1, scorer.cache.hits + scorer.cache.misses), 3)
        simulated["budget"] = DEFAULT_SCORE_LIMIT.key
        sf = EnginePlayer(engine, 20, args.engine_nodes, name="sf-a")
        sf_b = EnginePlayer(engine, 20, args.engine_nodes, name="sf-b")
        engine_ref = _timed_games([(sf, sf_b)], args.games, args.max_plies, args.seed)
        engine_name = engine.name
    random_pair = (RandomMover("random-a"), RandomMover("random-b"))
    random_ref = _timed_games([random_pair], args.games, args.max_plies, args.seed)

    report = {
        "engine": engine_name,
        "simulated": simulated,
        "engine_reference": {**engine_ref, "nodes_per_move": args.engine_nodes},
        "random_reference": random_ref,
        "ratio_vs_engine": round(simulated["games_per_minute"] / engine_ref["games_per_minute"], 3),
        "ratio_vs_random": round(simulated["games_per_minute"] / random_ref["games_per_minute"], 4),
        "ratio_plies_per_second_vs_engine": round(
            simulated["plies_per_second"] / engine_ref["plies_per_second"], 3
        ),
    }
    print(f"engine: {engine_name}; {args.games} games per measurement, max {args.max_plies} plies")
    rows = (("simulated players", simulated), ("engine vs engine", engine_ref), ("random movers", random_ref))
    for label, row in rows:
        print(
            f"  {label:18s} {row['games_per_minute']:9.2f} games/min  {row['plies_per_second']:8.1f} plies/s"
            f"  mean {row['mean_plies']:.0f} plies  ({row['adjudicated']} adjudicated)"
        )
    print(
        f"  simulated / engine-only = {report['ratio_vs_engine']:.3f} (games/min), "
        f"{report['ratio_plies_per_second_vs_engine']:.3f} (plies/s); "
        f"simulated / random = {report['ratio_vs_random']:.4f}"
    )
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
