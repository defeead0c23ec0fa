"""The results store: Parquet rows per run, atomic writes, DuckDB queries over all runs."""

import math
import multiprocessing as mp
from pathlib import Path

import pytest

from transcend.errors import TranscendError
from transcend.results.store import RESULTS, flatten_config, query, read_results, write_results


def _rows(run_id: str, n: int = 5, seed: int = 0) -> list[dict]:
    return [{"run_id": run_id, "experiment": "demo", "seed": seed, "metric": "model_accuracy",
             "temperature": float(i) / 4, "value": i / 10, "cfg.experts.experts": 10,
             "cfg.world.preset": "tiny"} for i in range(n)] + [
        {"run_id": run_id, "experiment": "demo", "seed": seed, "metric": "best_expert_accuracy", "value": 0.4}]


def test_flatten_config():
    flat = flatten_config({"mode": "denoising", "experts": {"coverage": 0.4}, "eval": {"temperatures": [0.0, 1.0]}})
    assert flat == {"cfg.mode": "denoising", "cfg.experts.coverage": 0.4, "cfg.eval.temperatures": "0.0,1.0"}


def test_write_and_read_round_trip(tmp_path):
    path = write_results(tmp_path / "run", _rows("a"))
    assert path == tmp_path / "run" / RESULTS
    rows = read_results(tmp_path / "run")
    assert len(rows) == 6
    assert math.isnan(rows[-1]["temperature"])  # a metric without temperature
    assert rows[0]["cfg.experts.experts"] == 10
    assert not list((tmp_path / "run").glob("*.tmp"))  # no temp file left behind


def test_rows_need_core_fields(tmp_path):
    with pytest.raises(TranscendError, match="run_id"):
        write_results(tmp_path, [{"metric": "x", "value": 1.0}])
    with pytest.raises(TranscendError, match="no results"):
        write_results(tmp_path, [])


def _writer(root: str, worker: int, repeats: int) -> None:
    for k in range(repeats):
        # Each worker rewrites its own run folder many times, and also a shared one.
        write_results(Path(root) / f"run{worker}", _rows(f"run{worker}", n=5 + k % 3, seed=worker))
        write_results(Path(root) / "shared", _rows(f"shared-{worker}", n=4, seed=worker))


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 20)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for w in range(4):
        rows = read_results(tmp_path / f"run{w}")
        assert len(rows) == 5 + 19 % 3 + 1  # the last write wins, whole
        assert {r["run_id"] for r in rows} == {f"run{w}"}
    shared = read_results(tmp_path / "shared")  # one complete file from one writer, never a mix
    assert len(shared) == 5 and len({r["run_id"] for r in shared}) == 1
    assert not list(tmp_path.rglob("*.tmp"))
    cols, rows = query("SELECT count(DISTINCT run_id) FROM results", tmp_path)
    assert rows[0][0] == 5


def test_query_unions_columns_and_reports_bad_sql(tmp_path):
    write_results(tmp_path / "a", _rows("a"))
    other = [{"run_id": "b", "experiment": "other", "seed": 1, "metric": "m", "value": 2.0,
              "cfg.two_hop.train": 500}]
    write_results(tmp_path / "deep" / "b", other)
    cols, rows = query("SELECT run_id, \"cfg.two_hop.train\" AS t FROM results WHERE metric = 'm'", tmp_path)
    assert cols == ["run_id", "t"] and rows == [("b", 500)]
    cols, rows = query("SELECT avg(value) FROM results WHERE metric = 'model_accuracy' AND temperature = 0",
                       tmp_path)
    assert rows[0][0] == pytest.approx(0.0)
    with pytest.raises(TranscendError, match="SQL"):
        query("SELEC nonsense", tmp_path)
    with pytest.raises(TranscendError, match="no results"):
        query("SELECT 1", tmp_path / "empty")
