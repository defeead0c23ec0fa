"""Run an experiment's sweep: locally in a process pool, or as Ray tasks on a cluster.

Layout under ``root`` (default ``runs/experiments``)::

    <name>/experiment.json          the spec that was run (scale, grid, seeds, base config)
    <name>/runner.log               one line per run started / finished (appended, never rewritten)
    <name>/<config hash>/           one run folder (config.toml, checkpoints/, metrics.json,
                                    results.parquet; corpus/ -> the shared corpus)
    .cache/corpus/<stage hash>/     corpora, keyed by the hash of the config sections that made them:
                                    one corpus serves every learner setting trained on it

A run is finished when its ``results.parquet`` exists (written last, atomically);
finished runs are skipped, unfinished ones continue from their last checkpoint,
a run that another experiment under the same root already finished (same
config hash) is copied from there instead of trained again, and a run whose
model another finished run already trained (same world, experts, corpus,
model and training sections; only the evaluation differs) starts from that
run's final checkpoint and is only evaluated.
Corpora are built first (each distinct one once, in parallel), then the runs.
The same two task functions run in a local ``ProcessPoolExecutor`` or as Ray
remote tasks (``ray_address``: a cluster's address, or ``"local"`` to start one).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable

from transcend.config import RunConfig
from transcend.errors import TranscendError
from transcend.experiments.spec import Experiment, RunSpec
from transcend.pipeline import CORPUS_SECTIONS, corpus_key
from transcend.results.store import RESULTS, write_results

DEFAULT_ROOT = Path("runs/experiments")
SPEC = "experiment.json"
LOG = "runner.log"


def corpus_cache(root: Path) -> Path:
    return Path(root) / ".cache" / "corpus"


def _log(exp_dir: Path, line: str) -> None:
    with open(exp_dir / LOG, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid={os.getpid()} {line}\n")


# --- the two tasks (top-level functions: picklable for the pool and for Ray) ---------------------------------

def prepare_corpus(cfg_dict: dict, corpus_dir: str) -> str:
    """Build (or find) the corpus of ``cfg`` in ``corpus_dir``; returns the folder."""
    from transcend.pipeline import areas_cache_dir, build_corpus, build_panel, build_world

    cfg = RunConfig.from_dict(cfg_dict)
    path = Path(corpus_dir)
    if (path / "manifest.json").is_file():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kg = build_world(cfg)
    panel = build_panel(cfg, kg, areas_cache_dir(path.parent))
    build_corpus(cfg, kg, panel, path)
    return str(path)


def execute_run(cfg_dict: dict, run_dir: str, corpus_dir: str | None, experiment: str, study: str | None = None,
                study_options: dict | None = None, progress: bool = False) -> dict:
    """Run (or resume, or reuse) one run of an experiment and write its results.parquet; returns a summary."""
    from transcend.experiments.studies import run_study
    from transcend.pipeline import CONFIG, run
    from transcend.results.rows import metrics_rows

    from transcend.pipeline import LOCK
    from transcend.runlock import locked

    cfg = RunConfig.from_dict(cfg_dict)
    out = Path(run_dir)
    with locked(out / LOCK, f"run folder {out}"):
        return _execute_locked(cfg, out, corpus_dir, experiment, study, study_options, progress)


def _execute_locked(cfg: RunConfig, out: Path, corpus_dir: str | None, experiment: str, study: str | None,
                    study_options: dict | None, progress: bool) -> dict:
    from transcend.experiments.studies import run_study
    from transcend.pipeline import CONFIG, write_identity, run
    from transcend.results.rows import metrics_rows

    exp_dir = out.parent
    if results_readable(out):
        return {"run_id": cfg.hash(), "status": "skipped"}
    t0 = time.perf_counter()
    _log(exp_dir, f"start {cfg.hash()}")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / CONFIG).is_file():
        source = _finished_elsewhere(out, cfg.hash())
        if source is not None:
            _reuse(source, out)
            _log(exp_dir, f"from={source.parent.name} reuse {cfg.hash()}")
        else:
            cfg.save(out / CONFIG)
            write_identity(cfg, out)  # what the run is made from, code included (pipeline.run verifies it)
            trained = _trained_elsewhere(out, cfg)
            if trained is not None:  # same world, experts, corpus, model and training: only the evaluation differs
                import shutil
                shutil.copytree(trained / "checkpoints", out / "checkpoints", dirs_exist_ok=True)
                _log(exp_dir, f"from={trained.parent.name}/{trained.name} checkpoint {cfg.hash()}")
    if corpus_dir is not None and not (out / "corpus").exists():
        link = out / "corpus"
        try:
            link.symlink_to(os.path.relpath(corpus_dir, out))
        except OSError:
            pass  # no symlinks here: the run builds its own corpus
    metrics = run(cfg, out, resume=True, progress=progress, log=lambda msg: _log(exp_dir, msg))
    extra = run_study(study, cfg, out, study_options or {}) if study else None
    write_results(out, metrics_rows(metrics, cfg, experiment, extra))
    _log(exp_dir, f"done {cfg.hash()}")
    return {"run_id": cfg.hash(), "status": "done", "seconds": time.perf_counter() - t0}


def results_readable(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a readable results.parquet (a finished run). A damaged one is removed, so
    that the run writes it again from its metrics, and a line says so."""
    import pyarrow.parquet as pq

    path = Path(run_dir) / RESULTS
    if not path.is_file():
        return False
    try:
        pq.read_metadata(path)
        return True
    except Exception as e:  # pyarrow raises several kinds for a truncated or foreign file
        print(f"transcend: {path} is damaged ({type(e).__name__}); writing it again", file=sys.stderr)
        path.unlink(missing_ok=True)
        return False


def _finished_elsewhere(out: Path, run_id: str) -> Path | None:
    """The same run (same config hash), finished in another experiment's folder under the same root."""
    for other in sorted(out.parent.parent.glob(f"*/{run_id}")):
        if other.resolve() != out.resolve() and (other / "metrics.json").is_file() and (other / "config.toml").is_file():
            return other
    return None


#: The config sections a trained model depends on (not the evaluation).
LEARNER_SECTIONS = (*CORPUS_SECTIONS, "model", "training")


def learner_key(cfg: RunConfig) -> str:
    """The hash of everything a trained model depends on (not the evaluation), its code included."""
    return cfg.stage_hash(*LEARNER_SECTIONS)


def _trained_elsewhere(out: Path, cfg: RunConfig) -> Path | None:
    """A finished run under the same root whose model is this run's model (its evaluation may differ): the
    same world, experts, corpus, model and training, and the same corpus and learner code, as its
    ``identity.json`` recorded them (a run without one was made by code that did not record it)."""
    from transcend.config import stage_hash
    from transcend.learner.train import CHECKPOINT
    from transcend.pipeline import IDENTITY

    key = learner_key(cfg)
    for metrics in sorted(out.parent.parent.glob("*/*/metrics.json")):
        other = metrics.parent
        if other.resolve() == out.resolve() or not (other / "checkpoints" / CHECKPOINT).is_file():
            continue
        try:
            recorded = json.loads((other / IDENTITY).read_text())["identity"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(recorded, dict) and stage_hash(recorded, *LEARNER_SECTIONS) == key:
            return other
    return None


def _reuse(source: Path, out: Path) -> None:
    """Copy a finished run (checkpoint, plots, then config, then metrics) into ``out``; link its corpus.

    Metrics come last: their presence marks the run finished, so an interrupted copy is redone."""
    import shutil

    if (source / "corpus").exists() and not (out / "corpus").exists():
        try:
            (out / "corpus").symlink_to(os.path.relpath((source / "corpus").resolve(), out))
        except OSError:
            pass
    for f in sorted(source.iterdir()):
        if f.name in ("corpus", RESULTS, "config.toml", "metrics.json") or f.suffix == ".json" or \
                f.name.startswith("."):  # its lock files stay its own
            continue  # results and study files are written anew for this experiment
        if f.is_dir():
            shutil.copytree(f, out / f.name, dirs_exist_ok=True)
        elif f.is_file():
            shutil.copy2(f, out / f.name)
    for name in ("config.toml", "identity.json", "metrics.json"):
        if name == "identity.json" and not (source / name).is_file():
            continue  # a run from before identities were recorded: the pipeline refuses it, naming why
        shutil.copy2(source / name, out / (name + ".tmp"))
        os.replace(out / (name + ".tmp"), out / name)


# --- executing many tasks -------------------------------------------------------------------------------------

def _one_thread_per_worker(workers: int) -> None:
    """W workers divide the cores: ``cpu_threads(W)`` torch threads each (the parent is left alone). Each
    worker also ends when the sweep that started it does (``_exit_with_parent``)."""
    import threading

    threading.Thread(target=_exit_with_parent, daemon=True).start()
    import torch

    from transcend.learner.train import cpu_threads
    torch.set_num_threads(cpu_threads(workers))


def _exit_with_parent() -> None:
    """Exit this pool worker once its parent is gone. A sweep killed by a signal it cannot clean up after
    (``kill``, SIGKILL) would otherwise leave its workers training their runs to the end, beside whatever
    runs next; a run left half done resumes from its checkpoint, as after any kill."""
    import multiprocessing.connection

    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])  # ready once the parent has exited
        os._exit(1)


def _map_local(fn: Callable, calls: list[tuple], workers: int) -> Iterable[tuple[int, Any, BaseException | None]]:
    """(index, result, error) for each call, as they finish. One worker runs in this process."""
    if workers <= 1:
        for i, args in enumerate(calls):
            try:
                yield i, fn(*args), None
            except (TranscendError, RuntimeError, ValueError, OSError) as e:
                yield i, None, e
        return
    # spawn, not fork: a forked child inherits locks held by the parent's torch/OpenMP threads and can
    # deadlock on its first tensor operation (seen in CI after earlier tests had trained in-process).
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_one_thread_per_worker, initargs=(workers,)) as pool:
        futures = {pool.submit(fn, *args): i for i, args in enumerate(calls)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                err = f.exception()
                yield futures[f], (None if err else f.result()), err


#: Seconds to wait for a Ray head's port to accept a connection, and again for it to answer as a gRPC
#: server, before saying it cannot be reached (at most twice this in all).
RAY_CONNECT_TIMEOUT_S = 10


def _check_reachable(address: str, timeout: float | None = None) -> None:
    """Fail in one sentence when nothing listens at a Ray head's HOST:PORT, or what listens there does not
    answer as a Ray head does (a gRPC server): Ray itself retries for many minutes without a word."""
    import socket

    timeout = RAY_CONNECT_TIMEOUT_S if timeout is None else timeout
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise TranscendError(f"--ray must be 'local', 'auto' or a head's HOST:PORT, got {address!r}.")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as e:
        raise TranscendError(f"cannot reach a Ray head at {address} ({e.strerror or type(e).__name__}); start one "
                             "with `ray start --head` or give its address as `--ray HOST:PORT`.") from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return  # a TLS head needs the certificates Ray reads itself: leave the handshake to ray.init
    try:
        import grpc  # installed with ray: the head's GCS (and a Ray client server) speak gRPC
    except ImportError:
        return
    channel = grpc.insecure_channel(f"{host or '127.0.0.1'}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise TranscendError(f"something listens at {address} but does not answer as a Ray head within "
                             f"{timeout:g} s; give the head's address (`ray status` on the head prints it) "
                             "as `--ray HOST:PORT`.") from None
    finally:
        channel.close()


def _use_token_if_available() -> None:
    """A head started with ``ray start --head`` (Ray 2.60) wants token authentication; connect with the token
    it saved (~/.ray/auth_token, or RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH) unless RAY_AUTH_MODE says otherwise."""
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or Path(path).is_file():
        os.environ["RAY_AUTH_MODE"] = "token"  # read when ray is imported (and by the workers it starts)
        if "ray" in sys.modules:  # imported already (in-process use): refresh the mode Ray cached
            try:
                from ray._raylet import Config
                Config.initialize("")
            except (ImportError, AttributeError):
                pass


def _ray_init(ray, address: str, init_kwargs: dict | None) -> None:
    """Start a private Ray instance ('local': never attach to a cluster this machine ran before), or connect
    to the head at ``address``; every failure is one sentence."""
    kwargs = dict(init_kwargs or {})
    if address == "local":
        kwargs.update(address="local", include_dashboard=False)
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs, log_to_driver=False)
    except Exception as e:  # ConnectionError, AuthenticationError, ValueError, RuntimeError ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if address == "auto" and isinstance(e, ConnectionError):
            raise TranscendError("no Ray cluster is running on this machine (--ray auto looks for one started by "
                                 "`ray start --head`); start one, give a head's address as --ray HOST:PORT, or use "
                                 "--ray local.") from None
        if address != "local" and os.environ.get("RAY_AUTH_MODE") != "token":
            # Ray's own message blames "a previous Ray instance that has since crashed"; the usual cause is a
            # head that wants a token (Ray 2.60's `ray start --head` does) which this client does not have.
            raise TranscendError(f"cannot connect to the Ray cluster at {address!r} ({type(e).__name__}); if its "
                                 "head uses token authentication, set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to "
                                 "the head's token (`ray get-auth-token` on the head prints it).") from None
        raise TranscendError(f"cannot connect to the Ray cluster at {address!r}: {first}") from None


def _connect_ray(address: str, init_kwargs: dict | None):
    """The ray module, connected to ``address`` (once per process)."""
    try:
        import ray
    except ImportError:
        raise TranscendError("--ray needs the ray package: pip install 'ray==2.60.0'.") from None
    if not ray.is_initialized():
        _ray_init(ray, address, init_kwargs)
    return ray


def _map_ray(fn: Callable, calls: list[tuple], address: str, init_kwargs: dict | None
             ) -> Iterable[tuple[int, Any, BaseException | None]]:
    ray = _connect_ray(address, init_kwargs)
    remote = ray.remote(num_cpus=1)(fn)
    refs = {remote.remote(*args): i for i, args in enumerate(calls)}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            try:
                yield refs[ref], ray.get(ref), None
            except Exception as e:  # a task's error, re-raised by Ray
                yield refs[ref], None, e


def _map(fn: Callable, calls: list[tuple], workers: int, ray_address: str | None, ray_init: dict | None):
    if ray_address:
        return _map_ray(fn, calls, ray_address, ray_init)
    return _map_local(fn, calls, workers)


def _write_spec(exp: Experiment, exp_dir: Path, runs: list[RunSpec]) -> None:
    d = exp.to_dict()
    d["runs"] = [{"run_id": r.run_id, "params": r.params} for r in runs]
    tmp = exp_dir / (SPEC + ".tmp")
    tmp.write_text(json.dumps(d, indent=2, default=str) + "\n")
    os.replace(tmp, exp_dir / SPEC)


def run_experiment(exp: Experiment, root: Path = DEFAULT_ROOT, *, workers: int = 1, ray_address: str | None = None,
                   ray_init: dict | None = None, progress: bool = True,
                   log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> dict:
    """Run every missing run of ``exp`` under ``root / exp.name``; returns counts and failures."""
    if workers < 1:
        raise TranscendError(f"workers must be at least 1, got {workers}.")
    from transcend.runlock import locked

    if ray_address not in (None, "local", "auto"):
        _check_reachable(ray_address)  # before anything is written
        _use_token_if_available()
    if ray_address:
        _connect_ray(ray_address, ray_init)  # a cluster that cannot be reached fails before anything is written
    root = Path(root).resolve()  # Ray workers run elsewhere: every path they get is absolute
    exp_dir = root / exp.name
    with locked(exp_dir / ".lock", f"experiment {exp.name} under {root}", wait=False):
        return _run_experiment_locked(exp, root, exp_dir, workers, ray_address, ray_init, progress, log)


def _run_experiment_locked(exp: Experiment, root: Path, exp_dir: Path, workers: int, ray_address: str | None,
                           ray_init: dict | None, progress: bool, log: Callable[[str], None]) -> dict:
    runs = exp.expand()
    _write_spec(exp, exp_dir, runs)
    todo = [r for r in runs if not results_readable(exp_dir / r.run_id)]
    log(f"{exp.name} ({exp.scale}): {len(runs)} runs, {len(runs) - len(todo)} already finished, "
        f"{len(todo)} to run" + (f" on Ray at {ray_address}" if ray_address else f" with {workers} worker(s)"))
    failures: list[str] = []
    cache = corpus_cache(root)
    corpora: dict[str, RunSpec] = {}
    for r in todo:
        if not (exp_dir / r.run_id / "metrics.json").is_file() and \
                _finished_elsewhere(exp_dir / r.run_id, r.run_id) is None:
            corpora.setdefault(corpus_key(r.config), r)
    need = [(r.config.to_dict(), str(cache / key)) for key, r in corpora.items()
            if not (cache / key / "manifest.json").is_file()]
    if need:
        log(f"building {len(need)} corpora")
        for i, _, err in _map(prepare_corpus, need, workers, ray_address, ray_init):
            if err is not None:
                failures.append(f"corpus {Path(need[i][1]).name}: {err}")
    calls = [(r.config.to_dict(), str(exp_dir / r.run_id),
              str(cache / corpus_key(r.config)) if (cache / corpus_key(r.config) / "manifest.json").is_file()
              else None, exp.name, exp.study, exp.study_options, False) for r in todo]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc=exp.name, unit="run", file=sys.stderr)
    done = 0
    try:
        for i, result, err in _map(execute_run, calls, workers, ray_address, ray_init):
            if err is not None:
                failures.append(f"run {todo[i].run_id} {todo[i].params}: {type(err).__name__}: {err}")
                log(f"run {todo[i].run_id} failed: {err}")
            else:
                done += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {"experiment": exp.name, "runs": len(runs), "ran": done, "skipped": len(runs) - len(todo),
            "failed": failures, "dir": str(exp_dir)}
