"""The Python API: build a config, run it, read every result back with SQL.

    from transcend import RunConfig, run, connect

    cfg = RunConfig.for_scale("tiny", mode="denoising")   # or RunConfig(mode="selection"), RunConfig.load(path)
    cfg.experts.experts = 5                                 # any field; checked again when the run starts
    metrics = run(cfg, "runs/five-experts")                 # the dict `transcend run --json` prints
    df = connect("runs").sql("SELECT metric, temperature, value FROM results").df()   # pandas

``run`` is ``transcend run``: it trains (or reuses a finished run, or resumes), writes the
run folder, and records the run's numbers in its ``results.parquet``, where
``connect``/``transcend results`` find them beside every sweep's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transcend.config import RunConfig, default_run_dir
from transcend.results.store import RESULTS


def run(cfg: RunConfig, out: str | Path | None = None, *, experiment: str = "run", resume: bool = False,
        progress: bool = False, **options: Any) -> dict:
    """Run ``cfg`` in ``out`` (default ``runs/<mode>-<config hash>``) and return its metrics.

    The config is validated again first (fields may have been changed after construction). A finished run
    is reused; ``resume=True`` continues an interrupted one. The numbers are written to
    ``out/results.parquet`` under the experiment name ``experiment``. ``options`` go to the pipeline."""
    from transcend.pipeline import run as run_pipeline
    from transcend.results.rows import metrics_rows
    from transcend.results.store import write_results

    cfg = RunConfig.from_dict(cfg.to_dict())
    out = Path(out) if out is not None else default_run_dir(cfg)
    metrics = run_pipeline(cfg, out, resume=resume, progress=progress, **options)
    if not (out / RESULTS).is_file():
        write_results(out, metrics_rows(metrics, cfg, experiment))
    return metrics


def connect(root: str | Path = "runs"):
    """A DuckDB connection with a view ``results`` over every ``results.parquet`` under ``root``
    (``.sql(...).df()`` gives a pandas DataFrame)."""
    from transcend.results.store import connect as connect_store

    return connect_store(Path(root))
