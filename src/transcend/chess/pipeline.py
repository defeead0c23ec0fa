"""The chess experiment, stage by stage, each stage cached in the run folder.

world (engine, players) -> ladder (round robin, Elo) -> games (per band, PGN) -> corpus
(per cutoff) -> learner (one model per cutoff) -> evaluate (ratings by temperature,
ideal learner, the best player re-rated, move prediction, favor, entropy) -> results (Parquet
rows) -> report (plots, report.html).

Run folder layout::

    config.toml            the ChessConfig of the run
    scores.json            engine move scores shared by all stages (cache by position)
    ladder.json            calibrated ladder (ratings, RD, games)
    games/<band>.pgn       training games of each band
    corpus/<cutoff>.npz    training examples of each cutoff
    models/<cutoff>/latest.pt
    ratings/<cutoff>.json  ratings by temperature, diagnostics, favor
    ratings/<cutoff>.ideal.json, ratings/<cutoff>.best.json   the ideal learner; the best player
    entropy.json, metrics.json, results.parquet, chess_rating_vs_temperature.png, chess_favor.png,
    report.html

A stage whose output file exists is skipped (files are written atomically, so an
interrupted stage leaves nothing and is redone); training resumes from its last
checkpoint. Engines are opened in ``with`` blocks, so they are shut down on errors
and on Ctrl-C.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from transcend import __version__
from transcend.chess.config import CHESS_BANDS, ChessConfig
from transcend.errors import TranscendError
from transcend.chess import analyses
from transcend.chess.ideal import IdealPlayer, Mixture
from transcend.chess.rating import Ladder, calibrate_ladder, rate_player
from transcend.chess.policy import PolicyPlayer, load_policy, policy_model, train_policy
from transcend.learner.train import CHECKPOINT, pick_device
from transcend.chess.corpus import MoveCorpus, build_corpus
from transcend.chess.engine import Engine, SearchLimit
from transcend.chess.games import GameRecord, play_match, read_pgn, record_from_pgn, write_pgn
from transcend.chess.players import (EnginePlayer, MoveScorer, RandomMover, ScoreCache,
                                           SimulatedPlayer, make_population)

CONFIG = "config.toml"
METRICS = "metrics.json"
SCORES = "scores.json"
LADDER = "ladder.json"
RANDOM_NAME = "random"


def _atomic_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _bar(progress: bool, total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, disable=not progress, leave=False)


class World:
    """The engine, its score cache and the simulated players of a run (use as a context manager)."""

    def __init__(self, cfg: ChessConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        self.engine = Engine(cfg.engine)
        try:
            cache_path = run_dir / SCORES
            cache = ScoreCache.load(cache_path) if cache_path.is_file() else ScoreCache()
            self.scorer = MoveScorer(self.engine, SearchLimit(depth=cfg.score_depth), cache)
            bands = [b for b in CHESS_BANDS if b.name in cfg.bands]
            self.players: list[SimulatedPlayer] = make_population(self.scorer, cfg.players_per_band, bands=bands,
                                                                  seed=cfg.seed)
        except BaseException:
            self.engine.close()
            raise

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.save_cache()
        finally:
            self.engine.close()

    def save_cache(self) -> None:
        self.scorer.cache.save(self.run_dir / SCORES)

    def ladder_entrants(self) -> list:
        sf = [EnginePlayer(self.engine, s, self.cfg.ladder_nodes, name=f"stockfish-s{s}-n{self.cfg.ladder_nodes}")
              for s in self.cfg.ladder_skills]
        return [RandomMover(RANDOM_NAME), *sf, *self.players]

    def player(self, name: str) -> SimulatedPlayer:
        return next(p for p in self.players if p.name == name)


# ------------------------------------------------------------------------------------ stages
def stage_ladder(world: World, run_dir: Path, progress: bool) -> Ladder:
    path = run_dir / LADDER
    if path.is_file():
        return Ladder.from_dict(json.loads(path.read_text()))
    entrants = world.ladder_entrants()
    _say(progress, f"ladder: round robin of {len(entrants)} entrants, {world.cfg.games_per_pair} games per pair")
    n_pairs = len(entrants) * (len(entrants) - 1) // 2
    with _bar(progress, n_pairs, "ladder") as bar:
        ladder = calibrate_ladder(entrants, world.cfg.games_per_pair, world.cfg.seed,
                                  random_plies=world.cfg.random_plies, max_plies=world.cfg.max_plies,
                                  progress=lambda i, n: bar.update(1))
    world.save_cache()
    _atomic_json(path, ladder.to_dict())
    return ladder


def stage_games(world: World, run_dir: Path, progress: bool) -> dict[str, list[GameRecord]]:
    """Training games within each band: pairs of the band's players in turn, two games per pair (colours swapped)."""
    out: dict[str, list[GameRecord]] = {}
    cfg = world.cfg
    for b_index, band in enumerate(cfg.bands):
        path = run_dir / "games" / f"{band}.pgn"
        if path.is_file():
            out[band] = [record_from_pgn(g) for g in read_pgn(path)]
            continue
        members = [p for p in world.players if p.band == band]
        pairs = [(a, b) for i, a in enumerate(members) for b in members[i + 1:]]
        records: list[GameRecord] = []
        t0 = time.perf_counter()
        with _bar(progress, cfg.games_per_band, f"games {band}") as bar:
            k = 0
            while len(records) < cfg.games_per_band:
                a, b = pairs[k % len(pairs)]
                n = min(2, cfg.games_per_band - len(records))
                records += play_match(a, b, n, seed=int(cfg.seed) * 7_919 + b_index * 1_000_003 + k,
                                      random_plies=cfg.random_plies, max_plies=cfg.max_plies)
                bar.update(n)
                k += 1
        elapsed = time.perf_counter() - t0
        _say(progress, f"games {band}: {len(records)} in {elapsed:.0f} s ({60 * len(records) / elapsed:.1f} games/min)")
        world.save_cache()
        write_pgn(records, path)
        _atomic_json(run_dir / "games" / f"{band}.timing.json",
                     {"games": len(records), "seconds": elapsed, "plies": sum(r.plies for r in records)})
        out[band] = records
    return out


def resolve_cutoffs(cfg: ChessConfig, ladder: Ladder, players: list[SimulatedPlayer]) -> list[float]:
    """The rating cutoffs of the run; a cutoff below every player is an error."""
    ratings = {p.name: ladder.ratings[p.name].rating for p in players}
    if cfg.cutoffs is None:
        # rounded up to a tenth, so that the band's strongest player stays inside its cutoff
        cutoffs = sorted({math.ceil(10 * max(ratings[p.name] for p in players if p.band == b)) / 10
                          for b in cfg.bands})
    else:
        cutoffs = sorted(cfg.cutoffs)
    weakest = min(ratings.values())
    for c in cutoffs:
        if c < weakest:
            raise TranscendError(f"cutoff {c:g} has no players: the weakest player is rated {weakest:.0f}; "
                                 f"choose cutoffs of at least {weakest:.0f}.")
    return cutoffs


def cutoff_label(c: float) -> str:
    return f"{c:.0f}"


def split_games(records: list[GameRecord], cfg: ChessConfig, label: str) -> tuple[list[GameRecord], list[GameRecord]]:
    """Held-out games: a seeded draw of ``heldout_fraction`` of the games (at least one)."""
    rng = np.random.default_rng([cfg.seed, 0x4E1D, len(records)])
    n_held = max(1, int(round(cfg.heldout_fraction * len(records)))) if len(records) > 1 else 0
    held = set(rng.choice(len(records), size=n_held, replace=False).tolist()) if n_held else set()
    return ([r for i, r in enumerate(records) if i not in held], [r for i, r in enumerate(records) if i in held])


def stage_corpus(cfg: ChessConfig, run_dir: Path, games: dict[str, list[GameRecord]], cutoff: float,
                 allowed: set[str]) -> tuple[MoveCorpus, MoveCorpus]:
    label = cutoff_label(cutoff)
    train_path, held_path = run_dir / "corpus" / f"{label}.npz", run_dir / "corpus" / f"{label}.heldout.npz"
    if train_path.is_file() and held_path.is_file():
        return MoveCorpus.load(train_path), MoveCorpus.load(held_path)
    records = [r for band in cfg.bands for r in games[band] if r.white in allowed and r.black in allowed]
    if not records:
        raise TranscendError(f"cutoff {label} has no games: no band has two players rated at most {label}.")
    train_games, held_games = split_games(records, cfg, label)
    train, held = build_corpus(train_games), build_corpus(held_games)
    held.save(held_path)
    train.save(train_path)
    return train, held


def stage_train(cfg: ChessConfig, run_dir: Path, label: str, corpus: MoveCorpus, progress: bool) -> tuple[object, dict]:
    ckpt_dir = run_dir / "models" / label
    done_path = ckpt_dir / "training.json"
    if done_path.is_file():
        return load_policy(ckpt_dir / CHECKPOINT), json.loads(done_path.read_text())
    torch.manual_seed(cfg.seed)
    model = policy_model(cfg.n_layer, cfg.n_head, cfg.n_embd)
    t0 = time.perf_counter()
    info = train_policy(model, corpus, cfg.training, ckpt_dir, seed=cfg.seed, resume=True,
                        device=pick_device(cfg.device), progress=progress)
    model.to("cpu").eval()
    summary = {"steps": info["steps"], "seconds": time.perf_counter() - t0, "examples": len(corpus),
               "examples_per_s": info["examples_per_s"], "params": model.num_params(),
               "loss_first100": float(np.mean(info["losses"][:100])) if info["losses"] else None,
               "loss_last100": float(np.mean(info["losses"][-100:])) if info["losses"] else None}
    _atomic_json(done_path, summary)
    return model, summary


def _rate(player, ladder: Ladder, opponents: list, n_games: int, seed: int, cfg: ChessConfig, bar: tqdm) -> dict:
    """``n_games`` of ``player`` against the ladder, one Glicko-2 period: rating, RD, ± 2·RD, games, mean score."""
    rating, games = rate_player(player, ladder, opponents, n_games, seed, random_plies=cfg.random_plies,
                                max_plies=cfg.max_plies, progress=lambda i, n: bar.update(1) if i else None)
    low, high = rating.interval()
    return {"rating": rating.rating, "rd": rating.rd, "low": low, "high": high, "games": len(games),
            "score": float(np.mean([g.score_for(player.name) for g in games]))}


def stage_rate_model(world: World, ladder: Ladder, run_dir: Path, label: str, model, mixture: Mixture,
                     heldout: MoveCorpus, progress: bool) -> dict:
    path = run_dir / "ratings" / f"{label}.json"
    if path.is_file():
        return json.loads(path.read_text())
    cfg = world.cfg
    opponents = world.ladder_entrants()
    out: dict = {"by_temperature": {}}
    fav_fens: list[str] = []
    with _bar(progress, sum(cfg.games_at(t) for t in cfg.temperatures), f"rate {label}") as bar:
        for t_index, tau in enumerate(cfg.temperatures):
            player = PolicyPlayer(model, tau, name=f"model-{label}-t{tau:g}", legal_only=cfg.legal_only)
            positions: list[str] = []
            original = player.choose_move

            def recording(board, rng, _orig=original, _pos=positions):
                _pos.append(board.fen())
                return _orig(board, rng)

            player.choose_move = recording  # type: ignore[method-assign]
            out["by_temperature"][repr(float(tau))] = {
                **_rate(player, ladder, opponents, cfg.games_at(tau), cfg.seed * 31 + t_index, cfg, bar),
                "illegal_draws": player.illegal_draws, "forfeits": player.forfeits, "moves": player.moves}
            if tau == min(cfg.temperatures):
                fav_fens = positions
    world.save_cache()
    rng = np.random.default_rng([cfg.seed, 0xFA7])
    if len(fav_fens) > cfg.favor_positions:
        fav_fens = [fav_fens[i] for i in sorted(rng.choice(len(fav_fens), cfg.favor_positions, replace=False))]
    out["favor"] = analyses.favor(model, fav_fens, world.scorer, cfg.favor_temperature, seed=cfg.seed)
    out["move_prediction"] = analyses.move_prediction(model, heldout, mixture, seed=cfg.seed)
    world.save_cache()
    _atomic_json(path, out)
    return out


def stage_ideal(world: World, ladder: Ladder, run_dir: Path, label: str, mixture: Mixture, progress: bool) -> dict:
    path = run_dir / "ratings" / f"{label}.ideal.json"
    if path.is_file():
        return json.loads(path.read_text())
    cfg = world.cfg
    opponents = world.ladder_entrants()
    out = {}
    with _bar(progress, sum(cfg.games_at(t) for t in cfg.ideal_temperatures), f"ideal {label}") as bar:
        for t_index, tau in enumerate(cfg.ideal_temperatures):
            player = IdealPlayer(mixture, tau, name=f"ideal-{label}-t{tau:g}")
            out[repr(float(tau))] = _rate(player, ladder, opponents, cfg.games_at(tau), cfg.seed * 37 + t_index, cfg,
                                          bar)
    world.save_cache()
    _atomic_json(path, out)
    return out


def stage_rate_best(world: World, ladder: Ladder, run_dir: Path, label: str, best: SimulatedPlayer,
                    progress: bool) -> dict:
    """The best player of a cutoff rated exactly as the models are: Glicko-2 over fresh games against the ladder.

    Why not its round-robin rating alone: that fit's interval is wide (most of its games are
    against far stronger or weaker entrants, which say little), and the best of several
    players picked by a noisy rating is rated too high on average; fresh games, as many as
    the model gets at the verdict temperature, remove both.
    """
    path = run_dir / "ratings" / f"{label}.best.json"
    if path.is_file():
        return json.loads(path.read_text())
    cfg = world.cfg
    opponents = [o for o in world.ladder_entrants() if o.name != best.name]
    n = max(cfg.rated_games, cfg.verdict_games)
    with _bar(progress, n, f"rate {best.name}") as bar:
        out = {"player": best.name, **_rate(best, ladder, opponents, n, cfg.seed * 41 + 7, cfg, bar)}
    world.save_cache()
    _atomic_json(path, out)
    return out


# ------------------------------------------------------------------------------------ run
def run(cfg: ChessConfig, run_dir: Path, *, progress: bool = True,
        stop_after: str | None = None, on_stage: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) the whole experiment in ``run_dir``; returns the metrics dict."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / METRICS
    if (run_dir / CONFIG).is_file():
        saved = ChessConfig.load(run_dir / CONFIG)
        if saved.to_dict() != cfg.to_dict():
            raise TranscendError(f"run folder {run_dir} holds a run of another config; choose a new --out.")
        if metrics_path.is_file():
            return json.loads(metrics_path.read_text())
    created = not run_dir.exists()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        with World(cfg, run_dir) if run_dir.exists() else _fresh_world(cfg, run_dir) as world:
            cfg.save(run_dir / CONFIG)
            t = time.perf_counter()
            ladder = stage_ladder(world, run_dir, progress)
            timings["ladder_s"] = time.perf_counter() - t
            if on_stage:
                on_stage("ladder")
            if stop_after == "ladder":
                return {}
            t = time.perf_counter()
            games = stage_games(world, run_dir, progress)
            timings["games_s"] = time.perf_counter() - t
            if on_stage:
                on_stage("games")
            if stop_after == "games":
                return {}
            cutoffs = resolve_cutoffs(cfg, ladder, world.players)
            results = {}
            corpora = {}
            mixtures = {}
            for c in cutoffs:
                label = cutoff_label(c)
                allowed = {p.name for p in world.players if ladder.ratings[p.name].rating <= c + 1e-9}
                train, held = stage_corpus(cfg, run_dir, games, c, allowed)
                counts = Counter(train.players.tolist())
                members = [p for p in world.players if p.name in counts]
                mixtures[label] = Mixture.from_counts(members, counts)
                corpora[label] = train
                t = time.perf_counter()
                model, train_info = stage_train(cfg, run_dir, label, train, progress)
                timings[f"train_{label}_s"] = time.perf_counter() - t
                if on_stage:
                    on_stage(f"train {label}")
                if stop_after == "train":
                    continue
                t = time.perf_counter()
                rated = stage_rate_model(world, ladder, run_dir, label, model, mixtures[label], held, progress)
                ideal = stage_ideal(world, ladder, run_dir, label, mixtures[label], progress)
                best = max(members, key=lambda p: ladder.ratings[p.name].rating)
                best_rated = stage_rate_best(world, ladder, run_dir, label, best, progress)
                timings[f"rate_{label}_s"] = time.perf_counter() - t
                results[label] = {
                    "cutoff": c, "players": sorted(counts), "positions": len(train), "heldout_positions": len(held),
                    "best_player": best.name, "best_player_rating": best_rated["rating"],
                    "best_player_rd": best_rated["rd"], "best_player_games": best_rated["games"],
                    "best_player_ladder": {"rating": ladder.ratings[best.name].rating,
                                           "rd": ladder.ratings[best.name].rd},
                    "training": train_info, **rated, "ideal": ideal}
            if stop_after == "train":
                return {}
            ent_path = run_dir / "entropy.json"
            if ent_path.is_file():
                entropy = json.loads(ent_path.read_text())
            else:
                states = analyses.opening_states(list(corpora.values()), cfg.entropy_plies,
                                                       cfg.entropy_states, seed=cfg.seed)
                # Each band's own players, equally weighted, at the same states: a cutoff's mixture
                # also grows with its number of players (more players, more distinct moves).
                bands = {b: Mixture.from_counts(ps, {p.name: 1 for p in ps}) for b in cfg.bands
                         if len(ps := [p for p in world.players if p.band == b])}
                entropy = {"common_states": len(states), "plies": cfg.entropy_plies,
                           "by_cutoff": {k: analyses.action_entropy(m, states) for k, m in mixtures.items()},
                           "by_band": {b: analyses.action_entropy(m, states) for b, m in bands.items()}}
                _atomic_json(ent_path, entropy)
            world.save_cache()
            engine_name = world.engine.name
        metrics = {
            "experiment": "chess", "run_dir": str(run_dir), "config": cfg.to_dict(), "version": __version__,
            "python": platform.python_version(), "torch": torch.__version__, "engine": engine_name,
            "ladder": {k: {"rating": r.rating, "rd": r.rd} for k, r in ladder.ratings.items()},
            "cutoffs": results, "entropy": entropy, "timings": timings,
            "seconds": time.perf_counter() - t_start,
        }
        metrics["transcends"] = {k: transcendence_verdict(v, cfg.favor_temperature) for k, v in results.items()}
        _write_results(cfg, run_dir, metrics)
        _report(run_dir, metrics)
        _atomic_json(metrics_path, metrics)
        return metrics
    except TranscendError:
        if created and run_dir.exists() and not (run_dir / LADDER).exists():
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _fresh_world(cfg: ChessConfig, run_dir: Path) -> World:
    """Open the engine before creating the run folder, so a bad engine path leaves nothing behind."""
    Engine(cfg.engine).close()
    run_dir.mkdir(parents=True, exist_ok=True)
    return World(cfg, run_dir)


def transcendence_verdict(entry: dict, low_tau: float) -> dict:
    """Is the model at ``low_tau`` rated above the best player in its data, intervals (± 2·RD) apart?

    The low temperature is fixed in advance (the config's ``favor_temperature``), not the
    best of several: picking the highest of eight noisy ratings would favour the model.
    """
    best_hi = entry["best_player_rating"] + 2 * entry["best_player_rd"]
    low, one = entry["by_temperature"].get(repr(float(low_tau))), entry["by_temperature"].get("1.0")
    return {
        "low_temperature": float(low_tau) if low else None,
        "model_low": low["rating"] if low else None,
        "model_low_lower_bound": low["low"] if low else None,
        "model_tau1": one["rating"] if one else None,
        "best_player_upper_bound": best_hi,
        "transcends_low_tau": bool(low and low["low"] > best_hi),
        "transcends_tau1": bool(one and one["low"] > best_hi),
        "rating_above_best_player_low_tau": bool(low and low["rating"] > entry["best_player_rating"]),
    }


def _write_results(cfg: ChessConfig, run_dir: Path, metrics: dict) -> None:
    try:
        from transcend.results.store import flatten_config, write_results
    except ImportError:  # pragma: no cover - the store is part of the package
        return
    run_id = run_dir.name
    base = {"run_id": run_id, "experiment": "chess", "seed": cfg.seed, **flatten_config(cfg.to_dict())}
    rows = []
    nan = float("nan")
    for label, e in metrics["cutoffs"].items():
        extra = {"cutoff": float(e["cutoff"])}
        rows.append({**base, **extra, "metric": "best_player_rating", "temperature": nan,
                     "value": e["best_player_rating"]})
        rows.append({**base, **extra, "metric": "best_player_rd", "temperature": nan, "value": e["best_player_rd"]})
        if "best_player_ladder" in e:
            rows.append({**base, **extra, "metric": "best_player_ladder_rating", "temperature": nan,
                         "value": e["best_player_ladder"]["rating"]})
        for t, r in e["by_temperature"].items():
            for key in ("rating", "rd", "score", "illegal_draws", "forfeits"):
                rows.append({**base, **extra, "metric": f"model_{key}", "temperature": float(t), "value": float(r[key])})
        for t, r in e["ideal"].items():
            for key in ("rating", "rd"):
                rows.append({**base, **extra, "metric": f"ideal_{key}", "temperature": float(t), "value": r[key]})
        rows.append({**base, **extra, "metric": "favor_mean", "temperature": cfg.favor_temperature,
                     "value": e["favor"]["mean"]})
        for key in ("top1_vs_plurality", "top1_vs_played", "cross_entropy_vs_mixture", "mixture_entropy"):
            rows.append({**base, **extra, "metric": key, "temperature": nan, "value": e["move_prediction"][key]})
        ent = metrics["entropy"]["by_cutoff"].get(label)
        if ent:
            rows.append({**base, **extra, "metric": "action_entropy", "temperature": nan,
                         "value": ent["normalised_entropy"]})
    write_results(run_dir, rows)


def _report(run_dir: Path, metrics: dict) -> None:
    from transcend.chess.report import write_chess_report
    from transcend.chess.plot import plot_favor, plot_rating_vs_temperature

    plot_rating_vs_temperature(metrics, run_dir / "chess_rating_vs_temperature.png")
    plot_favor(metrics, run_dir / "chess_favor.png")
    write_chess_report(run_dir, metrics)
