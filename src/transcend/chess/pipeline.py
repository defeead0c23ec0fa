"""The chess experiment, stage by stage, each stage cached in the run folder.

world (engine) -> ladder (engine rungs, round robin, Elo) -> population (calibration
against the ladder, players placed in their bands' rating ranges, every player re-rated)
-> games (per band, PGN) -> corpus
(per cutoff) -> learner (one model per cutoff) -> evaluate (ratings by temperature,
ideal learner, the best player re-rated, move prediction, favor, entropy) -> results (Parquet
rows) -> report (plots, report.html).

Run folder layout::

    config.toml            the ChessConfig of the run
    scores.json            engine move scores shared by all stages (cache by position)
    ladder.json            calibrated engine ladder (ratings, RD, games)
    population.json        the players fixed by the population rule (calibration probes, curve, players)
    games/<band>.pgn       training games of each band
    corpus/<cutoff>.npz    training examples of each cutoff
    models/<cutoff>/latest.pt
    ratings/<cutoff>.json  ratings by temperature, diagnostics, favor
    ratings/<cutoff>.ideal.json    the ideal learner
    ratings/players/<name>.json    every simulated player re-rated exactly as the models are
    entropy.json, metrics.json, results.parquet, chess_rating_vs_temperature.png, chess_favor.png,
    report.html

Game generation and the players' re-rating run in ``workers`` processes (one engine
each); a game's randomness is a function of its seed only and engine scores are a
function of (budget, position), so the games and ratings do not depend on the number
of workers.

A stage whose output file exists is skipped (files are written atomically, so an
interrupted stage leaves nothing and is redone); training resumes from its last
checkpoint. Engines are opened in ``with`` blocks, so they are shut down on errors
and on Ctrl-C.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import multiprocessing.util
import os
import platform
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from transcend import __version__
from transcend.chess.config import CHESS_BANDS, CHESS_CODE, ChessConfig
from transcend.config import code_identity
from transcend.errors import TranscendError
from transcend.chess import analyses
from transcend.chess.ideal import IdealPlayer, Mixture
from transcend.chess.rating import Ladder, fit_elo, play_pair, rate_player, round_robin_pairs
from transcend.chess.policy import PolicyPlayer, load_policy, policy_model, train_policy
from transcend.learner.log import LOG, TrainLog
from transcend.learner.train import CHECKPOINT, cpu_threads, pick_device
from transcend.chess.corpus import MoveCorpus, build_corpus
from transcend.chess.engine import Engine, SearchLimit
from transcend.chess.games import GameRecord, play_match, read_pgn, record_from_pgn, write_pgn
from transcend.chess.players import EnginePlayer, MoveScorer, RandomMover, ScoreCache, ShareRandomEngine, SimulatedPlayer
from transcend.chess.population import PlayerSpec, draw_population, fit_curve, probe_specs

CONFIG = "config.toml"
METRICS = "metrics.json"
SCORES = "scores.json"
LADDER = "ladder.json"
POPULATION = "population.json"
IDENTITY = "identity.json"  # the code that made the run (config.toml holds the rest)
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
    """The engine, its score cache and the simulated players of a run (use as a context manager).

    The players exist once the population stage has written ``population.json``.
    """

    def __init__(self, cfg: ChessConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        self.engine = Engine(cfg.engine)
        try:
            cache_path = run_dir / SCORES
            cache = ScoreCache.load(cache_path) if cache_path.is_file() else ScoreCache()
            self.scorer = MoveScorer(self.engine, SearchLimit(depth=cfg.score_depth), cache)
        except BaseException:
            self.engine.close()
            raise
        self._players: list[SimulatedPlayer] | None = None

    @property
    def players(self) -> list[SimulatedPlayer]:
        if self._players is None:
            path = self.run_dir / POPULATION
            if not path.is_file():
                raise TranscendError(f"{path} does not exist: the population stage has not run.")
            specs = [PlayerSpec.from_dict(d) for d in json.loads(path.read_text())["players"]]
            self._players = [s.build(self.scorer) for s in specs]
        return self._players

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
        """The fixed engine ladder: the random mover, Stockfish rungs with a share of random moves, Stockfish."""
        cfg = self.cfg
        low = min(cfg.ladder_skills)
        rungs = [ShareRandomEngine(self.engine, low, cfg.ladder_nodes, r) for r in sorted(cfg.ladder_random_shares,
                                                                                           reverse=True)]
        sf = [EnginePlayer(self.engine, s, cfg.ladder_nodes, name=f"stockfish-s{s}-n{cfg.ladder_nodes}")
              for s in cfg.ladder_skills]
        return [RandomMover(RANDOM_NAME), *rungs, *sf]

    def player(self, name: str) -> SimulatedPlayer:
        return next(p for p in self.players if p.name == name)


# ------------------------------------------------------------------------------------ workers
_WORKER: World | None = None


def _worker_start(cfg_dict: dict, run_dir: str) -> None:
    """A worker process's own engine, score cache (read from the run's, if any) and players."""
    global _WORKER
    torch.set_num_threads(1)
    _WORKER = World(ChessConfig.from_dict(cfg_dict), Path(run_dir))
    _KNOWN.update(_WORKER.scorer.cache.keys())  # the parent has these already
    # closed by the worker's exit hook, before Python waits for the engine's (non-daemon) thread
    multiprocessing.util.Finalize(None, _WORKER.engine.close, exitpriority=10)


def _new_scores(world: World, known: set[str]) -> dict:
    """Score-cache entries made since ``known`` (the parent merges them into the run's cache)."""
    return world.scorer.cache.raw_since(known)


_KNOWN: set[str] = set()


def _play_matches_job(jobs: list[tuple[str, str, int, int]]) -> tuple[list[GameRecord], dict]:
    world = _WORKER
    assert world is not None
    cfg = world.cfg
    records = [r for a, b, n, seed in jobs
               for r in play_match(world.player(a), world.player(b), n, seed=seed, random_plies=cfg.random_plies,
                                   max_plies=cfg.max_plies)]
    return records, _new_scores(world, _KNOWN)


def _ladder_pair_job(job: tuple[int, int, int]) -> tuple[list, dict]:
    world = _WORKER
    assert world is not None
    i, j, seed = job
    entrants = world.ladder_entrants()
    games = play_pair(entrants[i], entrants[j], world.cfg.games_per_pair, seed, random_plies=world.cfg.random_plies,
                      max_plies=world.cfg.max_plies)
    return games, _new_scores(world, _KNOWN)


def _rate_player_job(job: tuple[dict, dict, int, int]) -> tuple[dict, dict]:
    world = _WORKER
    assert world is not None
    spec, ladder_dict, n_games, seed = job
    player = PlayerSpec.from_dict(spec).build(world.scorer)
    return _rate_simulated(world, Ladder.from_dict(ladder_dict), player, n_games, seed), _new_scores(world, _KNOWN)


def _rate_answerer_job(job: tuple[str, str, float, int, int, dict, object]) -> tuple[tuple[dict, list[str]], dict]:
    """One (model or ideal learner, temperature) rated against the ladder; the model also returns its positions."""
    world = _WORKER
    assert world is not None
    cfg = world.cfg
    kind, name, tau, n_games, seed, ladder_dict, source = job
    positions: list[str] = []
    if kind == "model":
        player = PolicyPlayer(load_policy(Path(str(source))), tau, name=name, legal_only=cfg.legal_only)
        original = player.choose_move

        def recording(board, rng):
            positions.append(board.fen())
            return original(board, rng)

        player.choose_move = recording  # type: ignore[method-assign]
    else:
        counts = dict(source)  # type: ignore[call-overload]
        player = IdealPlayer(Mixture.from_counts([p for p in world.players if p.name in counts], counts), tau,
                             name=name)
    with _bar(False, n_games, name) as bar:  # a worker shows no bar; the parent counts finished jobs
        result = _rate(player, Ladder.from_dict(ladder_dict), world.ladder_entrants(), n_games, seed, cfg, bar)
    if kind == "model":
        result.update(illegal_draws=player.illegal_draws, forfeits=player.forfeits, moves=player.moves)
    return (result, positions), _new_scores(world, _KNOWN)


def _train_job(job: tuple[str, str]) -> tuple[None, dict]:
    """Train one cutoff's model in a worker (one torch thread); the parent then loads its checkpoint."""
    world = _WORKER
    assert world is not None
    run_dir, label = job
    corpus = MoveCorpus.load(Path(run_dir) / "corpus" / f"{label}.npz")
    stage_train(world.cfg, Path(run_dir), label, corpus, progress=False)
    return None, {}


def _in_workers(world: World, run_dir: Path, fn: Callable, jobs: Sequence, workers: int,
                on_done: Callable[[int], None] | None = None) -> list:
    """``fn`` over ``jobs`` in ``workers`` processes (in this process when 1), results in job order.

    Workers return the engine scores they computed; they are merged into this run's cache
    (scores are a function of budget and position, so the merge order does not matter).
    """
    if workers <= 1 or len(jobs) <= 1:
        global _WORKER
        saved, _WORKER = _WORKER, world
        try:
            out = []
            for job in jobs:
                out.append(fn(job)[0])
                if on_done:
                    on_done(len(out))
            return out
        finally:
            _WORKER = saved
    world.save_cache()  # workers start from the scores known so far
    results: list = [None] * len(jobs)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_worker_start,
                             initargs=(world.cfg.to_dict(), str(run_dir))) as pool:
        futures = [pool.submit(fn, job) for job in jobs]
        for i, fut in enumerate(futures):
            value, scores = fut.result()
            results[i] = value
            world.scorer.cache.merge_raw(scores)
            if on_done:
                on_done(i + 1)
    return results


def default_workers() -> int:
    """All cores this process may use (its affinity)."""
    return cpu_threads(1)


# ------------------------------------------------------------------------------------ stages
def stage_ladder(world: World, run_dir: Path, progress: bool, workers: int = 1) -> Ladder:
    """The round robin among the ladder's entrants (pairs in ``workers`` processes), then the Elo fit."""
    path = run_dir / LADDER
    if path.is_file():
        return Ladder.from_dict(json.loads(path.read_text()))
    cfg = world.cfg
    entrants = world.ladder_entrants()
    _say(progress, f"ladder: round robin of {len(entrants)} entrants, {cfg.games_per_pair} games per pair")
    jobs = round_robin_pairs(len(entrants), cfg.seed)
    with _bar(progress, len(jobs), "ladder") as bar:
        per_pair = _in_workers(world, run_dir, _ladder_pair_job, jobs, workers, lambda i: bar.update(1))
    games = [g for pair in per_pair for g in pair]
    ladder = Ladder(fit_elo([e.name for e in entrants], games), games)
    world.save_cache()
    _atomic_json(path, ladder.to_dict())
    return ladder


def match_jobs(cfg: ChessConfig, band_index: int, members: list[SimulatedPlayer]) -> list[tuple[str, str, int, int]]:
    """A band's training matches: pairs of its players in turn, two games per pair (colours swapped), seeded."""
    pairs = [(a, b) for i, a in enumerate(members) for b in members[i + 1:]]
    jobs, played, k = [], 0, 0
    while played < cfg.games_per_band:
        a, b = pairs[k % len(pairs)]
        n = min(2, cfg.games_per_band - played)
        jobs.append((a.name, b.name, n, int(cfg.seed) * 7_919 + band_index * 1_000_003 + k))
        played += n
        k += 1
    return jobs


#: Matches per worker task (a task returns its games and the new engine scores).
MATCHES_PER_TASK = 8


def stage_games(world: World, run_dir: Path, progress: bool, workers: int = 1) -> dict[str, list[GameRecord]]:
    """Training games within each band: pairs of the band's players in turn, two games per pair (colours swapped)."""
    out: dict[str, list[GameRecord]] = {}
    cfg = world.cfg
    for b_index, band in enumerate(cfg.bands):
        path = run_dir / "games" / f"{band}.pgn"
        if path.is_file():
            out[band] = [record_from_pgn(g) for g in read_pgn(path)]
            continue
        members = [p for p in world.players if p.band == band]
        jobs = match_jobs(cfg, b_index, members)
        tasks = [jobs[i:i + MATCHES_PER_TASK] for i in range(0, len(jobs), MATCHES_PER_TASK)]
        t0 = time.perf_counter()
        with _bar(progress, len(tasks), f"games {band}") as bar:
            chunks = _in_workers(world, run_dir, _play_matches_job, tasks, workers, lambda i: bar.update(1))
        records = [r for chunk in chunks for r in chunk]
        elapsed = time.perf_counter() - t0
        _say(progress, f"games {band}: {len(records)} in {elapsed:.0f} s ({60 * len(records) / elapsed:.1f} games/min, "
                       f"{workers} worker(s))")
        world.save_cache()
        write_pgn(records, path)
        _atomic_json(run_dir / "games" / f"{band}.timing.json",
                     {"games": len(records), "seconds": elapsed, "plies": sum(r.plies for r in records),
                      "workers": workers, "loadavg": _loadavg()})
        out[band] = records
    return out


def _loadavg() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:  # pragma: no cover - platforms without a load average
        return None


def resolve_cutoffs(cfg: ChessConfig, ratings: dict[str, float], players: list[SimulatedPlayer]) -> list[float]:
    """The rating cutoffs of the run (players' measured ratings); a cutoff below every player is an error."""
    if cfg.cutoffs is None:
        # rounded up to a tenth, so that the band's strongest player stays inside its cutoff
        cutoffs = sorted({math.ceil(10 * max(ratings[p.name] for p in players if p.band == b)) / 10
                          for b in cfg.bands})
    else:
        cutoffs = sorted(cfg.cutoffs)
    weakest = min(ratings.values())
    # games are played within a band: a cutoff needs two players of one band at or below it
    per_band = [sorted(ratings[p.name] for p in players if p.band == b) for b in cfg.bands]
    least = min((r[1] for r in per_band if len(r) >= 2), default=math.inf)
    for c in cutoffs:
        if c < weakest:
            raise TranscendError(f"cutoff {c:g} has no players: the weakest player is rated {weakest:.0f}; "
                                 f"choose cutoffs of at least {least:.0f}.")
        if c + 1e-9 < least:
            raise TranscendError(f"cutoff {c:g} has no games: no band has two players rated at most {c:g} (games are "
                                 f"played within a band); choose cutoffs of at least {least:.0f}.")
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
    # split by position: a held-out position that also occurs in a training game is not held out
    held = held.subset(np.flatnonzero(~np.isin(held.fens, train.fens)))
    held.save(held_path)
    train.save(train_path)
    return train, held


def stage_train(cfg: ChessConfig, run_dir: Path, label: str, corpus: MoveCorpus, progress: bool) -> tuple[object, dict]:
    ckpt_dir = run_dir / "models" / label
    done_path = ckpt_dir / "training.json"
    if done_path.is_file():
        return load_policy(ckpt_dir / CHECKPOINT), json.loads(done_path.read_text())
    torch.manual_seed(cfg.seed)
    model = policy_model(cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.causal)
    t0 = time.perf_counter()
    info = train_policy(model, corpus, cfg.training, ckpt_dir, seed=cfg.seed, resume=True,
                        device=pick_device(cfg.device), progress=progress, log=TrainLog(ckpt_dir / LOG))
    model.to("cpu").eval()
    summary = {"steps": info["steps"], "seconds": time.perf_counter() - t0, "examples": len(corpus),
               "examples_per_s": info["examples_per_s"], "params": model.num_params(),
               "loss_first100": float(np.mean(info["losses"][:100])) if info["losses"] else None,
               "loss_last100": float(np.mean(info["losses"][-100:])) if info["losses"] else None,
               # the training loss's curve: mean of every 100 steps (has it flattened?)
               "loss_by_100": [float(np.mean(info["losses"][i:i + 100])) for i in range(0, len(info["losses"]), 100)]}
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
                     heldout: MoveCorpus, progress: bool, workers: int = 1) -> dict:
    """The model at every temperature against the ladder (temperatures in ``workers`` processes, each loading
    the saved checkpoint, so the games are the same for any number of workers), then favor and move prediction."""
    path = run_dir / "ratings" / f"{label}.json"
    if path.is_file():
        return json.loads(path.read_text())
    cfg = world.cfg
    out: dict = {"by_temperature": {}}
    fav_fens: list[str] = []
    ckpt = str(run_dir / "models" / label / CHECKPOINT)
    jobs = [("model", f"model-{label}-t{tau:g}", float(tau), cfg.games_at(tau), cfg.seed * 31 + t_index,
             ladder.to_dict(), ckpt) for t_index, tau in enumerate(cfg.temperatures)]
    with _bar(progress, len(jobs), f"rate {label}") as bar:
        rated = _in_workers(world, run_dir, _rate_answerer_job, jobs, workers, lambda i: bar.update(1))
    for tau, (result, positions) in zip(cfg.temperatures, rated, strict=True):
        out["by_temperature"][repr(float(tau))] = result
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


def stage_ideal(world: World, ladder: Ladder, run_dir: Path, label: str, counts: dict[str, int], progress: bool,
                workers: int = 1) -> dict:
    """The ideal learner (the exact mixture of the corpus's players, weighted by ``counts``) at its temperatures."""
    path = run_dir / "ratings" / f"{label}.ideal.json"
    if path.is_file():
        return json.loads(path.read_text())
    cfg = world.cfg
    jobs = [("ideal", f"ideal-{label}-t{tau:g}", float(tau), cfg.ideal_games_at(tau), cfg.seed * 37 + t_index,
             ladder.to_dict(), sorted(counts.items())) for t_index, tau in enumerate(cfg.ideal_temperatures)]
    with _bar(progress, len(jobs), f"ideal {label}") as bar:
        rated = _in_workers(world, run_dir, _rate_answerer_job, jobs, workers, lambda i: bar.update(1))
    out = {repr(float(tau)): result for tau, (result, _) in zip(cfg.ideal_temperatures, rated, strict=True)}
    world.save_cache()
    _atomic_json(path, out)
    return out


def _rate_simulated(world: World, ladder: Ladder, player: SimulatedPlayer, n_games: int, seed: int) -> dict:
    opponents = world.ladder_entrants()
    rating, games = rate_player(player, ladder, opponents, n_games, seed, random_plies=world.cfg.random_plies,
                                max_plies=world.cfg.max_plies)
    low, high = rating.interval()
    return {"rating": rating.rating, "rd": rating.rd, "low": low, "high": high, "games": len(games),
            "score": float(np.mean([g.score_for(player.name) for g in games]))}


def stage_population(world: World, ladder: Ladder, run_dir: Path, progress: bool, workers: int = 1) -> dict:
    """The population rule (``chess/population.py``): calibrate weakness -> rating on the ladder, draw the players.

    Probe players at evenly spaced weaknesses are rated against the engine ladder; the
    decreasing isotonic fit of their ratings is inverted at each player's target rating
    (stratified over its band's range). Reads no model and no corpus.
    """
    path = run_dir / POPULATION
    if path.is_file():
        return json.loads(path.read_text())
    cfg = world.cfg
    probes = probe_specs(cfg.calibration_points, cfg.population_draw_seed)
    _say(progress, f"population: {len(probes)} calibration probes, {cfg.calibration_games} games each")
    jobs = [(p.to_dict(), ladder.to_dict(), cfg.calibration_games, cfg.seed * 43 + 11 + 1_000 * k)
            for k, p in enumerate(probes)]
    t0 = time.perf_counter()
    with _bar(progress, len(jobs), "calibrate") as bar:
        rated = _in_workers(world, run_dir, _rate_player_job, jobs, workers, lambda i: bar.update(1))
    weakness = [p.weakness for p in probes]
    curve = fit_curve(weakness, [r["rating"] for r in rated], [r["rd"] for r in rated])
    bands = [b for b in CHESS_BANDS if b.name in cfg.bands]
    specs = draw_population(bands, cfg.players_per_band, weakness, curve, cfg.population_draw_seed)
    out = {"probes": [{**p.to_dict(), **r} for p, r in zip(probes, rated, strict=True)],
           "curve": {"weakness": weakness, "rating": curve},
           "floor": curve[int(np.argmax(weakness))],
           "bands": {b.name: [curve[int(np.argmax(weakness))] + t for t in b.target] for b in bands},
           "players": [s.to_dict() for s in specs], "seconds": time.perf_counter() - t0, "loadavg": _loadavg()}
    world.save_cache()
    _atomic_json(path, out)
    world._players = None
    return out


def stage_rate_players(world: World, ladder: Ladder, run_dir: Path, progress: bool, workers: int = 1) -> dict:
    """Every simulated player rated exactly as the models are: fresh games against the ladder, one Glicko-2 period.

    As many games as a model gets at the verdict temperature, against the same ladder
    (less the player itself). The comparator of a cutoff is the maximum of its players'
    ratings measured this way. Why not the round-robin rating: its interval is wide (most
    of a player's round-robin games are against far stronger or weaker entrants), and the
    best of several players picked by one noisy rating and then re-rated alone is a
    comparator chosen by noise; rating every player the same way removes both.
    """
    cfg = world.cfg
    n = max(cfg.rated_games, cfg.verdict_games)
    out: dict[str, dict] = {}
    todo = []
    specs = {d["name"]: d for d in json.loads((run_dir / POPULATION).read_text())["players"]}
    for index, p in enumerate(world.players):
        path = run_dir / "ratings" / "players" / f"{p.name}.json"
        if path.is_file():
            out[p.name] = json.loads(path.read_text())
        else:
            todo.append((specs[p.name], ladder.to_dict(), n, cfg.seed * 41 + 7 + 1_000 * index))
    if todo:
        _say(progress, f"rating {len(todo)} players, {n} games each")
        with _bar(progress, len(todo), "rate players") as bar:
            rated = _in_workers(world, run_dir, _rate_player_job, todo, workers, lambda i: bar.update(1))
        for (spec, *_), r in zip(todo, rated, strict=True):
            _atomic_json(run_dir / "ratings" / "players" / f"{spec['name']}.json", r)
            out[spec["name"]] = r
        world.save_cache()
    return out


# ------------------------------------------------------------------------------------ run
def run(cfg: ChessConfig, run_dir: Path, *, progress: bool = True,
        stop_after: str | None = None, on_stage: Callable[[str], None] | None = None,
        workers: int | None = None) -> dict:
    """Run (or resume) the whole experiment in ``run_dir``; returns the metrics dict.

    ``workers``: processes for game generation and the players' re-rating (None = all cores);
    the results do not depend on it.
    """
    run_dir = Path(run_dir)
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise TranscendError(f"workers must be at least 1, got {workers}.")
    pick_device(cfg.device)  # a device that is not there is an error before any work, not after the games
    metrics_path = run_dir / METRICS
    if _prepare_run_dir(cfg, run_dir) and metrics_path.is_file():
        return json.loads(metrics_path.read_text())
    created = not run_dir.exists()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        with World(cfg, run_dir) if run_dir.exists() else _fresh_world(cfg, run_dir) as world:
            cfg.save(run_dir / CONFIG)
            _atomic_json(run_dir / IDENTITY, {"code": code_identity(CHESS_CODE)})
            t = time.perf_counter()
            ladder = stage_ladder(world, run_dir, progress, workers)
            timings["ladder_s"] = time.perf_counter() - t
            if on_stage:
                on_stage("ladder")
            if stop_after == "ladder":
                return {}
            t = time.perf_counter()
            population = stage_population(world, ladder, run_dir, progress, workers)
            timings["population_s"] = time.perf_counter() - t
            t = time.perf_counter()
            # every player rated exactly as the models will be, before any model exists
            rerated = stage_rate_players(world, ladder, run_dir, progress, workers)
            timings["rate_players_s"] = time.perf_counter() - t
            measured = {name: r["rating"] for name, r in rerated.items()}
            cutoffs = resolve_cutoffs(cfg, measured, world.players)  # a bad cutoff is refused before the games
            t = time.perf_counter()
            games = stage_games(world, run_dir, progress, workers)
            timings["games_s"] = time.perf_counter() - t
            if on_stage:
                on_stage("games")
            if stop_after == "games":
                return {}
            results = {}
            corpora, helds, countss = {}, {}, {}
            mixtures = {}
            for c in cutoffs:
                label = cutoff_label(c)
                allowed = {p.name for p in world.players if measured[p.name] <= c + 1e-9}
                corpora[label], helds[label] = stage_corpus(cfg, run_dir, games, c, allowed)
                countss[label] = Counter(corpora[label].players.tolist())
            # On CPU the cutoffs' models train side by side, one per worker (one torch thread each): a model
            # this small gains little from a second thread, and a second core would otherwise sit idle.
            pending = [label for label in corpora if not (run_dir / "models" / label / "training.json").is_file()]
            if workers > 1 and len(pending) > 1 and pick_device(cfg.device).type == "cpu":
                t = time.perf_counter()
                _in_workers(world, run_dir, _train_job, [(str(run_dir), label) for label in pending], workers)
                timings["train_parallel_s"] = time.perf_counter() - t
            for c in cutoffs:
                label = cutoff_label(c)
                train, held, counts = corpora[label], helds[label], countss[label]
                members = [p for p in world.players if p.name in counts]
                mixtures[label] = Mixture.from_counts(members, counts)
                t = time.perf_counter()
                model, train_info = stage_train(cfg, run_dir, label, train, progress)
                timings[f"train_{label}_s"] = time.perf_counter() - t
                if on_stage:
                    on_stage(f"train {label}")
                if stop_after == "train":
                    continue
                t = time.perf_counter()
                rated = stage_rate_model(world, ladder, run_dir, label, model, mixtures[label], held, progress,
                                         workers)
                ideal = stage_ideal(world, ladder, run_dir, label, dict(counts), progress, workers)
                players_rerated = {p.name: {k: rerated[p.name][k] for k in ("rating", "rd", "games")}
                                   for p in members}
                best = max(players_rerated, key=lambda name: (players_rerated[name]["rating"], name))
                timings[f"rate_{label}_s"] = time.perf_counter() - t
                results[label] = {
                    "cutoff": c, "players": sorted(counts), "positions": len(train), "heldout_positions": len(held),
                    "players_rerated": players_rerated,
                    "best_player": best, "best_player_rating": players_rerated[best]["rating"],
                    "best_player_rd": players_rerated[best]["rd"], "best_player_games": players_rerated[best]["games"],
                    "best_player_target": next(p["target"] for p in population["players"] if p["name"] == best),
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
                           "by_band": {b: analyses.action_entropy(m, states) for b, m in bands.items()},
                           # the paper's way: each cutoff's (band's) own frequently visited states, counted moves
                           "visited_by_cutoff": {k: analyses.visited_state_entropy(cp, cfg.entropy_min_visits)
                                                 for k, cp in corpora.items()},
                           "visited_by_band": {b: analyses.visited_state_entropy(build_corpus(games[b]),
                                                                                 cfg.entropy_min_visits)
                                               for b in cfg.bands}}
                _atomic_json(ent_path, entropy)
            world.save_cache()
            engine_name = world.engine.name
        metrics = {
            "experiment": "chess", "run_dir": str(run_dir), "config": cfg.to_dict(), "version": __version__,
            "python": platform.python_version(), "torch": torch.__version__, "engine": engine_name,
            "ladder": {k: {"rating": r.rating, "rd": r.rd} for k, r in ladder.ratings.items()},
            "population": {"curve": population["curve"], "floor": population["floor"], "bands": population["bands"],
                           "probes": {p["name"]: {k: p[k] for k in ("weakness", "rating", "rd", "games")}
                                      for p in population["probes"]},
                           "players": {p["name"]: {**p, "measured": rerated[p["name"]]["rating"]}
                                       for p in population["players"]}},
            "cutoffs": results, "entropy": entropy, "timings": timings,
            "seconds": time.perf_counter() - t_start,
        }
        metrics["transcends"] = {k: transcendence_verdict(v, cfg.favor_temperature, cfg.seed) for k, v in results.items()}
        _write_results(cfg, run_dir, metrics)
        _report(run_dir, metrics)
        _atomic_json(metrics_path, metrics)
        return metrics
    except TranscendError:
        # refused before the games (a bad cutoff, engine or config): the folder this command made goes, so that
        # nothing half-written is left; after the games the folder stays, to be resumed or corrected
        if created and run_dir.exists() and not any((run_dir / "games").glob("*.pgn")):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


#: The files of the stages up to the games (engine scores, ladder, population, the players' ratings, the
#: training games) and the config fields those files do not depend on. An unfinished run that differs from a new
#: command only in these fields keeps the files and makes everything after them again: a command that failed
#: after the games (a diverging lr, a device) is corrected without playing them again. A field not listed here
#: is taken to change the games.
EARLY_FILES = (SCORES, LADDER, POPULATION, "games", "ratings/players")
LATE_FIELDS = frozenset({
    "cutoffs", "n_layer", "n_embd", "n_head", "causal", "training", "temperatures", "ideal_temperatures",
    "legal_only", "favor_temperature", "favor_positions", "entropy_plies", "entropy_states", "entropy_min_visits",
    "heldout_fraction", "device"})


def _remove_all_but(folder: Path, keep: tuple[str, ...], prefix: str = "") -> None:
    """Remove what ``folder`` holds except the relative paths ``keep`` (and the folders above them)."""
    for path in folder.iterdir():
        rel = prefix + path.name
        if rel in keep:
            continue
        if path.is_dir() and not path.is_symlink() and any(k.startswith(rel + "/") for k in keep):
            _remove_all_but(path, keep, rel + "/")
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _prepare_run_dir(cfg: ChessConfig, run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run of exactly ``cfg`` (finished or not). An unfinished run of a config
    that differs only in ``LATE_FIELDS`` is taken over (its early files kept, the rest removed, one line
    says so); any other difference is refused in one sentence naming it."""
    if not (run_dir / CONFIG).is_file():
        return False
    try:
        made_by = json.loads((run_dir / IDENTITY).read_text())["code"]
    except (OSError, ValueError, KeyError, TypeError):
        made_by = {}  # a run from before the code was recorded
    code = code_identity(CHESS_CODE)
    if made_by != code:
        shown = "; ".join(f"code.{k} = {made_by.get(k)!r} (now {v!r})" for k, v in code.items() if made_by.get(k) != v)
        raise TranscendError(f"run folder {run_dir} holds a chess run made by other transcend code ({shown}), so "
                             "its games, models or ratings are not this code's; choose another --out, or delete "
                             "the folder to run it again.")
    old, new = ChessConfig.load(run_dir / CONFIG).to_dict(), cfg.to_dict()
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not changed:
        return True
    finished = (run_dir / METRICS).is_file()
    if finished or set(changed) - LATE_FIELDS:
        shown = [f"{k} = {old.get(k)!r} (now {new.get(k)!r})" for k in changed if finished or k not in LATE_FIELDS]
        more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
        raise TranscendError(f"run folder {run_dir} holds {'a finished' if finished else 'an unfinished'} run made "
                             f"with {'; '.join(shown[:3])}{more}; choose another --out, or delete the folder to run "
                             "it again.")
    print(f"transcend: run folder {run_dir}: keeping its ladder, players and games; {', '.join(changed)} changed, "
          "so what comes after the games is made again", file=sys.stderr)
    _remove_all_but(run_dir, EARLY_FILES)
    cfg.save(run_dir / CONFIG)
    return False


def _fresh_world(cfg: ChessConfig, run_dir: Path) -> World:
    """Open the engine before creating the run folder, so a bad engine path leaves nothing behind."""
    Engine(cfg.engine).close()
    run_dir.mkdir(parents=True, exist_ok=True)
    return World(cfg, run_dir)


def transcendence_verdict(entry: dict, low_tau: float, seed: int = 0) -> dict:
    """Is the model at ``low_tau`` rated above the best player in its data, intervals (± 2·RD) apart?

    The low temperature is fixed in advance (the config's ``favor_temperature``), not the
    best of several: picking the highest of eight noisy ratings would favour the model.
    The comparator is the highest of the cutoff's players, each re-rated as the model is.
    ``gain_recovered``: the model's rating gain over the best player as a fraction of the
    ideal learner's at the same temperature, (model − best) / (ideal − best), with a 95%
    interval from the three ratings' Glicko-2 posteriors (normal, independent; seeded draws).
    A ratio's interval is bounded only if its denominator is told apart from zero (Fieller),
    so the fraction is given only where the ideal learner's gain exceeds 1.96 standard errors
    of the difference of the two ratings; elsewhere it is None and ``gain_recovered_note``
    says why (a gain of 0 ± noise would put the point estimate anywhere, even outside its
    own "interval").
    """
    best_hi = entry["best_player_rating"] + 2 * entry["best_player_rd"]
    low, one = entry["by_temperature"].get(repr(float(low_tau))), entry["by_temperature"].get("1.0")
    ideal = entry.get("ideal", {}).get(repr(float(low_tau)))
    out = {
        "low_temperature": float(low_tau) if low else None,
        "model_low": low["rating"] if low else None,
        "model_low_lower_bound": low["low"] if low else None,
        "model_tau1": one["rating"] if one else None,
        "best_player_upper_bound": best_hi,
        "transcends_low_tau": bool(low and low["low"] > best_hi),
        "transcends_tau1": bool(one and one["low"] > best_hi),
        "rating_above_best_player_low_tau": bool(low and low["rating"] > entry["best_player_rating"]),
        "ideal_low": ideal["rating"] if ideal else None,
        "ideal_transcends_low_tau": bool(ideal and ideal["rating"] - 2 * ideal["rd"] > best_hi),
        "gain_recovered": None, "gain_recovered_ci95": None, "gain_recovered_note": None,
    }
    if low and ideal:
        best, best_rd = entry["best_player_rating"], entry["best_player_rd"]
        gain_se = float(np.hypot(ideal["rd"], best_rd))
        if ideal["rating"] - best <= 1.96 * gain_se:
            out["gain_recovered_note"] = (
                f"undefined: the ideal learner's gain over the best player, {ideal['rating'] - best:+.0f}, "
                f"is not above 1.96 standard errors ({1.96 * gain_se:.0f})")
            return out
        out["gain_recovered"] = (low["rating"] - best) / (ideal["rating"] - best)
        rng = np.random.default_rng([seed, 0x6A1])
        m = rng.normal(low["rating"], low["rd"], 20_000)
        b = rng.normal(best, best_rd, 20_000)
        i = rng.normal(ideal["rating"], ideal["rd"], 20_000)
        ratio = (m - b) / (i - b)
        out["gain_recovered_ci95"] = [float(q) for q in np.quantile(ratio, [0.025, 0.975])]
    return out


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
        for t, r in e["by_temperature"].items():
            for key in ("rating", "rd", "score", "illegal_draws", "forfeits"):
                rows.append({**base, **extra, "metric": f"model_{key}", "temperature": float(t), "value": float(r[key])})
        for t, r in e["ideal"].items():
            for key in ("rating", "rd"):
                rows.append({**base, **extra, "metric": f"ideal_{key}", "temperature": float(t), "value": r[key]})
        rows.append({**base, **extra, "metric": "favor_mean", "temperature": cfg.favor_temperature,
                     "value": e["favor"]["mean"]})
        for name, r in e.get("players_rerated", {}).items():
            rows.append({**base, **extra, "metric": "player_rerated_rating", "temperature": nan, "value": r["rating"],
                         "player": name})
        g = metrics["transcends"][label]
        if g.get("gain_recovered") is not None:
            rows.append({**base, **extra, "metric": "gain_recovered", "temperature": cfg.favor_temperature,
                         "value": g["gain_recovered"]})
        for key in ("top1_vs_plurality", "top1_vs_played", "cross_entropy_vs_mixture", "mixture_entropy",
                    "kl_mixture_model", "illegal_mass_full_vocab"):
            rows.append({**base, **extra, "metric": key, "temperature": nan, "value": e["move_prediction"][key]})
        ent = metrics["entropy"]["by_cutoff"].get(label)
        if ent:
            rows.append({**base, **extra, "metric": "action_entropy", "temperature": nan,
                         "value": ent["normalised_entropy"]})
        ent = metrics["entropy"].get("visited_by_cutoff", {}).get(label)
        if ent:
            rows.append({**base, **extra, "metric": "action_entropy_visited", "temperature": nan,
                         "value": ent["normalised_entropy"]})
    write_results(run_dir, rows)


def _report(run_dir: Path, metrics: dict) -> None:
    from transcend.chess.report import write_chess_report
    from transcend.chess.plot import plot_favor, plot_rating_vs_temperature

    plot_rating_vs_temperature(metrics, run_dir / "chess_rating_vs_temperature.png")
    plot_favor(metrics, run_dir / "chess_favor.png")
    write_chess_report(run_dir, metrics)
