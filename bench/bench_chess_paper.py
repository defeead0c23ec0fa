"""Benchmark: the chess experiment's three costs at paper scale, prepared for a GPU machine.

One run, three figures, each a ratio against a reference measured in the same run:

* **generation**: training games of simulated players (the paper config's bands, depth-2
  scoring of every legal move, a fresh score cache), games/min with ``--workers`` worker
  processes (one engine each, ``pipeline.stage_games``) against 1 worker: the speed-up.
  The games are checked to be byte-identical.
* **training**: the paper config's move model (bidirectional board encoder, square-pair
  head) on those games' positions, positions/s and model FLOP utilisation (MFU): the
  model's training FLOPs per second (6 × parameters × tokens, plus attention) against a
  dense matmul of the same width measured on the same device (a reference, not the data
  sheet; with ``--peak-tflops`` also against that number).
* **rating**: ``--rated-games`` games of the trained model (τ = 0.001) against a ladder
  (random mover, Stockfish skill 0 at 200 nodes, two simulated players; round robin
  calibrated here) and its Glicko-2 rating, against as many random-vs-random plies.

On a GPU machine (16 cores), the whole script is meant to take under 8 minutes:

    OMP_NUM_THREADS=1 python bench/bench_chess_paper.py --device cuda --workers 16

On a CPU at a tiny shape (proves that it works, says nothing about a GPU):

    OMP_NUM_THREADS=1 python bench/bench_chess_paper.py --tiny
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from transcend.chess import pipeline
from transcend.chess.config import ChessConfig
from transcend.chess.corpus import SEQ_LEN, build_corpus
from transcend.chess.games import play_match
from transcend.chess.policy import PolicyPlayer, policy_model, train_policy
from transcend.chess.players import RandomMover
from transcend.chess.rating import calibrate_ladder, rate_player
from transcend.config import TrainingConfig
from transcend.learner.train import pick_device


def _config(args: argparse.Namespace) -> ChessConfig:
    if args.tiny:
        return ChessConfig.for_scale("tiny", games_per_band=args.games or 8, device=args.device)
    return ChessConfig.for_scale("paper", games_per_band=args.games or 64, device=args.device)


def _generation(cfg: ChessConfig, workers: int, root: Path) -> dict:
    out = {}
    pgn = {}
    setup = root / "setup"  # the engine ladder and the population rule, once (not timed): games need players
    setup.mkdir(parents=True)
    with pipeline.World(cfg, setup) as world:
        ladder = pipeline.stage_ladder(world, setup, False, workers)
        pipeline.stage_population(world, ladder, setup, False, workers)
    for w in sorted({1, workers}):
        run_dir = root / f"gen-{w}"
        run_dir.mkdir(parents=True)
        for name in (pipeline.LADDER, pipeline.POPULATION):
            shutil.copyfile(setup / name, run_dir / name)
        with pipeline.World(cfg, run_dir) as world:
            t0 = time.perf_counter()
            games = pipeline.stage_games(world, run_dir, False, w)
            seconds = time.perf_counter() - t0
        n = sum(len(g) for g in games.values())
        out[w] = {"games": n, "seconds": round(seconds, 2), "games_per_min": round(60 * n / seconds, 1)}
        pgn[w] = [(run_dir / "games" / f"{b}.pgn").read_bytes() for b in cfg.bands]
    out["identical"] = pgn[1] == pgn[workers]
    out["speedup"] = round(out[workers]["games_per_min"] / out[1]["games_per_min"], 2)
    return out, games


def _matmul_flops(device: torch.device, width: int, seconds: float = 2.0) -> float:
    """Measured dense matmul FLOP/s at the model's dtype (bf16 on CUDA), the MFU reference."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    n = max(256, 16 * width)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def _training(cfg: ChessConfig, games: dict, device: torch.device, steps: int, root: Path,
              peak_tflops: float | None) -> tuple[dict, object]:
    corpus = build_corpus([r for band in cfg.bands for r in games[band]])
    torch.manual_seed(cfg.seed)
    model = policy_model(cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.causal)
    tcfg = TrainingConfig(steps=steps, batch_size=cfg.training.batch_size, lr=cfg.training.lr,
                          warmup_steps=max(1, steps // 10), checkpoint_every=10 * steps,
                          optimizer=cfg.training.optimizer)
    t0 = time.perf_counter()
    info = train_policy(model, corpus, tcfg, root / "model", seed=cfg.seed, device=device, progress=False)
    seconds = time.perf_counter() - t0
    model.to("cpu").eval()
    params = model.num_params()
    positions_per_s = steps * tcfg.batch_size / seconds
    # forward + backward ≈ 6 FLOPs per parameter per token, plus attention scores (12·L·T·d per token)
    flops_per_position = 6 * params * SEQ_LEN + 12 * cfg.n_layer * SEQ_LEN * SEQ_LEN * cfg.n_embd
    achieved = flops_per_position * positions_per_s
    reference = _matmul_flops(device, cfg.n_embd)
    out = {"positions": len(corpus), "params": params, "steps": steps, "batch": tcfg.batch_size,
           "seconds": round(seconds, 2), "positions_per_s": round(positions_per_s, 1),
           "model_tflops": round(achieved / 1e12, 4), "matmul_reference_tflops": round(reference / 1e12, 3),
           "mfu_vs_measured_matmul": round(achieved / reference, 4),
           "loss_first": float(info["losses"][0]), "loss_last": float(info["losses"][-1])}
    if peak_tflops:
        out["mfu_vs_peak"] = round(achieved / (peak_tflops * 1e12), 4)
    return out, model


def _rating(cfg: ChessConfig, model, n_games: int, root: Path) -> dict:
    run_dir = root / "rate"
    run_dir.mkdir()
    with pipeline.World(cfg, run_dir) as world:
        entrants = world.ladder_entrants()[:3]  # the random mover and the two weakest engine rungs
        ladder = calibrate_ladder(entrants, 2, cfg.seed, random_plies=cfg.random_plies, max_plies=cfg.max_plies)
        player = PolicyPlayer(model, 0.001, name="model")
        t0 = time.perf_counter()
        rating, played = rate_player(player, ladder, entrants, n_games, cfg.seed, random_plies=cfg.random_plies,
                                     max_plies=cfg.max_plies)
        seconds = time.perf_counter() - t0
    plies = sum(g.plies for g in played)
    t0 = time.perf_counter()
    ref_plies, k = 0, 0
    while ref_plies < plies:
        ref_plies += sum(r.plies for r in play_match(RandomMover("a"), RandomMover("b"), 2, seed=k,
                                                     max_plies=cfg.max_plies))
        k += 1
    ref_seconds = time.perf_counter() - t0
    return {"games": len(played), "seconds": round(seconds, 2), "rating": round(rating.rating, 1),
            "rd": round(rating.rd, 1), "plies": plies, "random_reference_seconds": round(ref_seconds, 2),
            "ratio_to_random_reference": round(seconds / ref_seconds, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny shape (a CPU check that the script works)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--workers", type=int, default=pipeline.default_workers(),
                        help="worker processes for game generation (default: all cores)")
    parser.add_argument("--games", type=int, help="training games per band (default 64; tiny 8)")
    parser.add_argument("--steps", type=int, help="training steps timed (default 300; tiny 10)")
    parser.add_argument("--rated-games", dest="rated_games", type=int, help="rated games (default 100; tiny 4)")
    parser.add_argument("--peak-tflops", dest="peak_tflops", type=float,
                        help="the device's peak dense TFLOP/s at the training dtype, for MFU against the data sheet")
    args = parser.parse_args(argv)
    cfg = _config(args)
    device = pick_device(cfg.device)
    steps = args.steps or (10 if args.tiny else 300)
    rated = args.rated_games or (4 if args.tiny else 100)
    root = Path(tempfile.mkdtemp(prefix="bench-chess-paper-"))
    t_start = time.perf_counter()
    try:
        generation, games = _generation(cfg, args.workers, root)
        training, model = _training(cfg, games, device, steps, root, args.peak_tflops)
        rating = _rating(cfg, model, rated, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report = {"scale": "tiny" if args.tiny else "paper", "device": str(device),
              "cuda": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
              "cores": os.cpu_count(), "workers": args.workers, "loadavg": list(os.getloadavg()),
              "generation": generation, "training": training, "rating": rating,
              "total_seconds": round(time.perf_counter() - t_start, 1)}
    print(json.dumps(report, indent=1))
    print(f"generation: {generation['speedup']}x with {args.workers} workers vs 1 (games identical: "
          f"{generation['identical']}); training: {training['positions_per_s']} positions/s, MFU "
          f"{training['mfu_vs_measured_matmul']:.3f} of a measured matmul; rating: {rating['games']} games in "
          f"{rating['seconds']} s, {rating['ratio_to_random_reference']}x random play; total "
          f"{report['total_seconds']} s", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
