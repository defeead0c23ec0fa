"""``transcend chess play|generate|train|rate|reproduce``.

generate, train, rate and reproduce run the same cached pipeline (``chess.pipeline``)
in one run folder, up to the named stage: ``generate`` calibrates the ladder and plays
the training games, ``train`` also builds the corpora and trains one model per cutoff,
``rate`` and ``reproduce`` run everything (ratings by temperature, ideal learner,
favor, entropy, results, plots, ``report.html``). A stage already done in the folder
is reused. ``report`` rewrites the HTML page of a finished run.
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from pathlib import Path

from transcend.chess.config import SCALES, ChessConfig
from transcend.errors import TranscendError
from transcend.experiments.spec import set_dotted
from transcend.flags import add_config_flags, given_flags


def add_chess_parser(sub: argparse._SubParsersAction) -> None:
    chess_p = sub.add_parser("chess", help="the chess experiment: transcendence against a real engine")
    verbs = chess_p.add_subparsers(dest="chess_command", required=True)
    play = verbs.add_parser("play", help="play one game and print its PGN")
    play.add_argument("--white", default="random",
                      help="random | stockfish[:SKILL[:NODES]] | model:CHECKPOINT[:TAU] | player:WEAKNESS[:SEED] (default random)")
    play.add_argument("--black", default="stockfish:0:200", help="as --white (default stockfish:0:200)")
    play.add_argument("--fen", help="start from this position instead of a book opening")
    play.add_argument("--pgn", help="start from the end of the first game of this PGN file")
    play.add_argument("--max-plies", type=int, default=200, help="ply cap, then material adjudication")
    play.add_argument("--engine", help="Stockfish path (default $TRANSCEND_STOCKFISH, PATH, /usr/games/stockfish)")
    play.add_argument("--seed", type=int, default=0,
                      help="seed of the opening, the players' move draws and a band player's blind spots (default 0)")
    play.add_argument("--json", action="store_true", help="print a JSON object instead of PGN")
    report = verbs.add_parser("report", help="(re)write RUN/report.html from a finished run's metrics and plots")
    report.add_argument("--out", required=True, help="the run folder of a finished transcend chess reproduce")
    for verb, text in (("generate", "calibrate the ladder and play the training games"),
                       ("train", "... and train one model per rating cutoff"),
                       ("rate", "... and rate the models at every temperature (the whole run)"),
                       ("reproduce", "the whole experiment, end to end, with a summary table")):
        p = verbs.add_parser(verb, help=text, description="Every ChessConfig field is a flag (--field, "
                             "--training.field); flags given explicitly override --config and --scale.")
        add_chess_config_options(p)
        p.add_argument("--out", help="run folder (default runs/chess-<scale>-<config hash>)")
        p.add_argument("--workers", type=int,
                       help="processes for game generation and the players' re-rating, one engine each "
                            "(default: all cores; the results do not depend on it)")
        p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
        p.add_argument("--quiet", action="store_true", help="no progress output")


#: Short spellings of chess config fields, kept from before every field had its generated flag: path -> options.
CHESS_SHORT_FLAGS: dict[str, list[str]] = {"games_per_band": ["--games-per-band"], "training.steps": ["--steps"],
                                           "rated_games": ["--rated-games"]}


def add_chess_config_options(p: argparse.ArgumentParser) -> None:
    """Every ChessConfig field as a flag (generated as for the knowledge-graph runs: ``flags.add_config_flags``),
    plus --scale, --config and --full-vocab (the same as --no-legal_only)."""
    dests = add_config_flags(p, ChessConfig, ChessConfig(), aliases=CHESS_SHORT_FLAGS, title="chess config")
    p.set_defaults(config_dests=dests)
    p.add_argument("--scale", default="small", choices=SCALES, help=f"{' | '.join(SCALES)} (default small)")
    p.add_argument("--config", help="a chess config.toml (flags given explicitly override it)")
    p.add_argument("--full-vocab", dest="full_vocab", action="store_true",
                   help="sample from all 1,968 moves: resample an illegal move up to 5 times, then forfeit "
                        "(the same as --no-legal_only)")


def config_from_args(args: argparse.Namespace) -> ChessConfig:
    """The base (--config, else --scale), then every config flag given on the command line."""
    if args.config:
        base = ChessConfig.load(Path(args.config)).to_dict()
    else:
        base = ChessConfig.for_scale(args.scale).to_dict()
    for path, value in given_flags(args, getattr(args, "config_dests", [])).items():
        set_dotted(base, path, list(value) if isinstance(value, tuple) else value)
    if args.full_vocab:
        base["legal_only"] = False
    return ChessConfig.from_dict(base)


def _chooser(spec: str, engine, seed: int):
    from transcend.chess.policy import PolicyPlayer, load_policy
    from transcend.chess.engine import SearchLimit
    from transcend.chess.players import EnginePlayer, MoveScorer, RandomMover
    from transcend.chess.population import PROBE_BLIND_SPOT, PlayerSpec

    parts = spec.split(":")
    try:
        if parts[0] == "random":
            return RandomMover()
        if parts[0] == "stockfish":
            skill = int(parts[1]) if len(parts) > 1 else 20
            nodes = int(parts[2]) if len(parts) > 2 else 1000
            return EnginePlayer(engine, skill, nodes)
        if parts[0] == "model":
            tau = float(parts[2]) if len(parts) > 2 else 0.001
            return PolicyPlayer(load_policy(Path(parts[1])), tau, name=f"model-t{tau:g}")
        if parts[0] == "player":  # a simulated player of the population rule's family, at a weakness in [0, 1]
            player_seed = int(parts[2]) if len(parts) > 2 else seed
            return PlayerSpec(f"player-w{float(parts[1]):g}", "", player_seed, float(parts[1]),
                              PROBE_BLIND_SPOT).build(MoveScorer(engine, SearchLimit(depth=2)))
    except (ValueError, IndexError):
        raise TranscendError(f"player '{spec}' is malformed: use random, stockfish:SKILL:NODES, "
                             "model:CHECKPOINT:TAU or player:WEAKNESS:SEED.") from None
    raise AssertionError(f"player kind of '{spec}' is in PLAYER_KINDS but has no branch in _chooser")


PLAYER_KINDS = ("random", "stockfish", "model", "player")  # what `chess play --white/--black` accepts


def _check_player(spec: str) -> None:
    """An unknown player kind is bad input, named before the engine is opened (so that a typo is not
    reported as a missing engine)."""
    if spec.split(":")[0] not in PLAYER_KINDS:
        raise TranscendError(f"unknown player '{spec}': use random, stockfish:SKILL:NODES, model:CHECKPOINT:TAU "
                             "or player:WEAKNESS:SEED (a simulated player, weakness in [0, 1]).")


def _needs_engine(spec: str) -> bool:
    """Whether a player of ``chess play`` searches with the engine (Stockfish and the simulated players)."""
    return spec.split(":")[0] in ("stockfish", "player")


def play(args: argparse.Namespace) -> int:
    import numpy as np

    from transcend.chess.engine import open_engine
    from transcend.chess.games import board_from_fen, draw_opening, games_to_pgn, play_game, read_pgn

    start_fen, opening = None, None
    if args.fen is not None and args.pgn is not None:  # an empty --fen "" is a bad FEN, not no FEN
        raise TranscendError("give either --fen or --pgn, not both.")
    if args.fen is not None:
        start_fen = board_from_fen(args.fen).fen()
    elif args.pgn is not None:
        start_fen = read_pgn(args.pgn)[0].end().board().fen()
    if start_fen is not None:
        import chess

        outcome = chess.Board(start_fen).outcome()
        if outcome is not None:  # a game of no moves would be credited to the players
            raise TranscendError(f"the starting position is already over ({outcome.termination.name.lower()}): "
                                 "give one where the side to move has a legal move.")
    else:
        opening = draw_opening(np.random.default_rng([args.seed, 1]))
    _check_player(args.white)
    _check_player(args.black)
    # Players that need no engine (random, model) are built first, a model's checkpoint read and checked,
    # and the engine is opened only where a player needs it: a bad checkpoint is named as such, and random
    # against a model plays where Stockfish is not installed.
    white = None if _needs_engine(args.white) else _chooser(args.white, None, args.seed)
    black = None if _needs_engine(args.black) else _chooser(args.black, None, args.seed + 1)
    with open_engine(args.engine) if white is None or black is None else nullcontext() as engine:
        if white is None:
            white = _chooser(args.white, engine, args.seed)
        if black is None:
            black = _chooser(args.black, engine, args.seed + 1)
        if white.name == black.name:
            black.name = black.name + "-2"
        record = play_game(white, black, np.random.default_rng([args.seed, 2]), opening=opening,
                           start_fen=start_fen, max_plies=args.max_plies)
    if args.json:
        print(json.dumps({"white": record.white, "black": record.black, "result": record.result,
                          "termination": record.termination, "moves": record.moves}))
    else:
        print(games_to_pgn([record]), end="")
    return 0


def format_summary(m: dict) -> str:
    lines = [f"chess: {m['engine']}; run folder {m['run_dir']}; {m['seconds'] / 60:.1f} min (this invocation)"]
    for label, e in m["cutoffs"].items():
        lines.append(f"cutoff {label}: {len(e['players'])} players, {e['positions']} training moves; best player "
                     f"(max of all re-rated) {e['best_player']} {e['best_player_rating']:.0f} ± "
                     f"{2 * e['best_player_rd']:.0f}")
        lines.append("  players re-rated: " + ", ".join(
            f"{n} {r['rating']:.0f} ± {2 * r['rd']:.0f}" for n, r in sorted(e.get("players_rerated", {}).items())))
        mp = e["move_prediction"]
        lines.append(f"  held-out positions ({mp['positions']}): top-1 = mixture mode {mp['top1_vs_plurality']:.3f}, "
                     f"= played {mp['top1_vs_played']:.3f}; H(f̄, model) {mp['cross_entropy_vs_mixture']:.3f} vs "
                     f"H(f̄) {mp['mixture_entropy']:.3f} nats (KL {mp['kl_mixture_model']:.3f}); illegal mass "
                     f"(full vocabulary, τ=1) {mp.get('illegal_mass_full_vocab', float('nan')):.3f}")
        for t, r in sorted(e["by_temperature"].items(), key=lambda kv: float(kv[0])):
            lines.append(f"  model τ={float(t):<6g} {r['rating']:6.0f} ± {2 * r['rd']:4.0f}  score {r['score']:.2f}"
                         + (f"  illegal draws {r['illegal_draws']}, forfeits {r['forfeits']}" if r["illegal_draws"]
                            else ""))
        for t, r in sorted(e["ideal"].items(), key=lambda kv: float(kv[0])):
            lines.append(f"  ideal τ={float(t):<6g} {r['rating']:6.0f} ± {2 * r['rd']:4.0f}  score {r['score']:.2f}")
        f = e["favor"]
        lines.append(f"  favor (τ={m['config']['favor_temperature']:g} vs 1): mean {f['mean']:+.4f} "
                     f"95% CI [{f['ci95'][0]:+.4f}, {f['ci95'][1]:+.4f}], {f['positions']} positions")
        v = m["transcends"][label]
        lines.append(f"  transcends at τ={v['low_temperature']} (rated above the best player, intervals apart): "
                     f"{v['transcends_low_tau']}; at τ=1: {v['transcends_tau1']}")
        if v.get("gain_recovered") is not None:
            lo, hi = v["gain_recovered_ci95"]
            lines.append(f"  model's share of the ideal learner's gain over the best player: {v['gain_recovered']:+.2f} "
                         f"(95% interval [{lo:+.2f}, {hi:+.2f}])")
        elif v.get("gain_recovered_note"):
            lines.append(f"  model's share of the ideal learner's gain over the best player: {v['gain_recovered_note']}")
    ent = m["entropy"]
    lines.append(f"action entropy over {ent['common_states']} common states: " + ", ".join(
        f"{k}: {v['normalised_entropy']:.3f}" for k, v in ent["by_cutoff"].items()))
    if "by_band" in ent:
        lines.append("  each band's own players at the same states: " + ", ".join(
            f"{k}: {v['normalised_entropy']:.3f}" for k, v in ent["by_band"].items()))
    if "visited_by_cutoff" in ent:
        lines.append("action entropy the paper's way (own states visited often, counted moves): " + ", ".join(
            f"cutoff {k}: {v['normalised_entropy']:.3f} ({v['states']} states)" for k, v in ent["visited_by_cutoff"].items())
            + "; by band: " + ", ".join(f"{k}: {v['normalised_entropy']:.3f} ({v['states']} states)"
                                        for k, v in ent["visited_by_band"].items()))
    return "\n".join(lines)


def run_stage(args: argparse.Namespace) -> int:
    from transcend.chess.pipeline import run

    cfg = config_from_args(args)
    out = Path(args.out) if args.out else Path("runs") / f"chess-{args.scale}-{cfg.hash()}"
    stop = {"generate": "games", "train": "train"}.get(args.chess_command)
    progress = not args.quiet
    metrics = run(cfg, out, progress=progress, stop_after=stop, workers=args.workers)
    if stop:
        payload = {"run_dir": str(out), "done": args.chess_command}
        print(json.dumps(payload) if args.json else f"{args.chess_command}: done in {out}")
        return 0
    metrics_out = {k: v for k, v in metrics.items()}
    if args.json:
        print(json.dumps(metrics_out))
    else:
        print(format_summary(metrics))
    return 0


def main_chess(args: argparse.Namespace) -> int:
    if args.chess_command == "play":
        return play(args)
    if args.chess_command == "report":
        from transcend.chess.report import write_chess_report

        print(write_chess_report(Path(args.out)))
        return 0
    return run_stage(args)
