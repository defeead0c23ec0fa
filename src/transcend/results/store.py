"""The results store: every run's measurements as Parquet rows, queried with DuckDB.

Each run folder holds one ``results.parquet``; one row per measured number::

    run_id, experiment, seed, metric, temperature, value, cfg.<dotted.path> ...

``temperature`` is NaN for metrics that have none (the best expert, the
theory, ...). The config fields are flattened into columns named
``cfg.world.preset``, ``cfg.experts.coverage``, ... so that a query can group
by any of them. Files are written atomically (a temp file in the same folder,
then ``os.replace``): concurrent workers each own their run folder, and a
reader sees either the old file or the new one, never half of one.

``query(sql, root)`` runs SQL over every ``results.parquet`` under ``root``,
copied into an in-memory table named ``results`` (files with different config
columns are unioned by name) on a DuckDB connection without file or network
access and with its configuration locked. Beside it, the table ``seeds``
holds each grid point's mean over seeds and its 95% interval over seeds.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from transcend.errors import TranscendError

RESULTS = "results.parquet"
CORE_COLUMNS = ("run_id", "experiment", "seed", "metric", "temperature", "value")


def flatten_config(d: dict[str, Any], prefix: str = "cfg") -> dict[str, Any]:
    """{"experts": {"coverage": 0.4}} -> {"cfg.experts.coverage": 0.4}; lists become strings."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}"
        if isinstance(v, dict):
            out.update(flatten_config(v, key))
        elif isinstance(v, (list, tuple)):
            out[key] = ",".join(str(x) for x in v)
        else:
            out[key] = v
    return out


def _column(name: str, values: list[Any]) -> pa.Array:
    present = [v for v in values if v is not None]
    if name in ("value", "temperature"):
        return pa.array([math.nan if v is None else float(v) for v in values], pa.float64())
    if name == "seed":
        return pa.array([None if v is None else int(v) for v in values], pa.int64())
    if present and all(isinstance(v, bool) for v in present):
        return pa.array(values, pa.bool_())
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, pa.int64())
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def rows_table(rows: list[dict]) -> pa.Table:
    """Rows (dicts) -> an Arrow table: core columns first, then the others sorted by name."""
    if not rows:
        raise TranscendError("no results to write: the run produced no rows.")
    for i, r in enumerate(rows):
        missing = [c for c in ("run_id", "metric", "value") if c not in r]
        if missing:
            raise TranscendError(f"result row {i} lacks {', '.join(missing)}; every row needs run_id, metric, value.")
    names = list(CORE_COLUMNS) + sorted({k for r in rows for k in r} - set(CORE_COLUMNS))
    return pa.table({n: _column(n, [r.get(n) for r in rows]) for n in names})


def write_results(run_dir: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as ``run_dir/results.parquet`` atomically; returns the file's path.

    Each row needs ``run_id``, ``metric`` and ``value``; ``experiment``, ``seed``,
    ``temperature`` (NaN when missing) and any ``cfg.*`` columns are optional.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    table = rows_table(rows)
    path = run_dir / RESULTS
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".parquet.tmp", dir=run_dir)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for everyone who reads the runs
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_results(run_dir: Path) -> list[dict]:
    """The rows of one run folder's ``results.parquet``."""
    return pq.read_table(Path(run_dir) / RESULTS).to_pylist()


def result_files(root: Path) -> list[Path]:
    return sorted(Path(root).rglob(RESULTS))


def readable_tables(paths: Iterable[Path], warn=lambda m: print(m, file=sys.stderr)
                    ) -> list[tuple[Path, pa.Table]]:
    """(path, table) of each results file that can be read; a damaged one is skipped with one line naming
    it (``transcend reproduce`` writes it again)."""
    tables = []
    for path in paths:
        try:
            tables.append((path, pq.read_table(path)))
        except Exception as e:  # pyarrow raises several kinds for a truncated or foreign file
            warn(f"transcend: skipping damaged {path} ({type(e).__name__}); `transcend reproduce` writes it again")
    return tables


def connect(root: Path):
    """A sandboxed in-memory DuckDB connection with a table ``results``: every readable results.parquet under
    ``root``, copied in (unioned by column name). The connection then has no access to files or the network
    and its configuration is locked, so pasted SQL can read and write nothing else."""
    import duckdb

    root = Path(root)
    tables = [table for _, table in readable_tables(result_files(root))]
    if not tables:
        raise TranscendError(f"no results under {root}: run an experiment first (transcend reproduce NAME).")
    results = pa.concat_tables(tables, promote_options="permissive")
    con = duckdb.connect(":memory:")
    con.register("results_arrow", results)
    con.execute("CREATE TABLE results AS SELECT * FROM results_arrow")
    con.unregister("results_arrow")
    _add_seeds_table(con)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


#: Columns of ``results`` that differ between the seeds of one grid point (the rest name the point).
SEED_VARYING = ("run_id", "seed", "cfg.seed", "value")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _add_seeds_table(con) -> None:
    """The table ``seeds``: one row per grid point (every column of ``results`` but the run, the seed and the
    value: experiment, metric, temperature, every config field...) with ``n_seeds``, the ``seeds``, their
    ``mean`` and its 95% interval over seeds ``ci95_lo``/``ci95_hi`` (``evaluate.stats.seed_interval``: a
    Student-t interval; NULL with one seed). Gap rows (``...transcendence_gap``) also carry ``transcendent``
    and its ``basis`` (``evaluate.stats.transcendent``: "seeds", or "queries" where one seed leaves the run's
    bootstrap interval over queries to decide)."""
    from transcend.evaluate.stats import seed_interval, transcendent

    cols = [r[0] for r in con.execute("DESCRIBE results").fetchall()]
    key = [c for c in cols if c not in SEED_VARYING]
    seed = "seed" if "seed" in cols else "NULL"
    grouped = con.execute(f"SELECT {', '.join(map(_ident, key))}, list(value ORDER BY {seed}), "
                          f"list({seed} ORDER BY {seed}) FROM results GROUP BY ALL").fetchall()
    nan_free = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731 (NaN != NaN in keys)
    rows = [tuple(map(nan_free, g[:-2])) for g in grouped]
    values, seeds = [g[-2] for g in grouped], [g[-1] for g in grouped]
    by_point = {r: i for i, r in enumerate(rows)}
    metric_at = key.index("metric")
    ivs = [seed_interval(v) for v in values]
    verdicts: list[Any] = [None] * len(rows)
    for i, r in enumerate(rows):
        metric = r[metric_at]
        if not isinstance(metric, str) or not metric.endswith("transcendence_gap"):
            continue
        stem = metric[: -len("transcendence_gap")]
        ends = [by_point.get(r[:metric_at] + (stem + end,) + r[metric_at + 1:]) for end in ("gap_ci95_lo", "gap_ci95_hi")]
        query_ci = (values[ends[0]][0], values[ends[1]][0]) if None not in ends and len(values[i]) == 1 else None
        verdicts[i] = transcendent(values[i], query_ci)
    columns = {c: _column(c, [g[j] for g in grouped]) for j, c in enumerate(key)}
    columns.update(n_seeds=pa.array([iv.n for iv in ivs], pa.int64()),
                   seeds=pa.array([",".join(str(x) for x in s if x is not None) for s in seeds], pa.string()),
                   mean=pa.array([iv.mean for iv in ivs], pa.float64()),
                   ci95_lo=pa.array([iv.lo for iv in ivs], pa.float64()),
                   ci95_hi=pa.array([iv.hi for iv in ivs], pa.float64()),
                   transcendent=pa.array([v.transcendent if v else None for v in verdicts], pa.bool_()),
                   basis=pa.array([v.basis if v else None for v in verdicts], pa.string()))
    table = pa.table(columns)
    con.register("seeds_arrow", table)
    con.execute("CREATE TABLE seeds AS SELECT * FROM seeds_arrow")
    con.unregister("seeds_arrow")


def quote_literal(text: str) -> str:
    """``text`` as an SQL string literal (for SQL the lab writes, e.g. the report's suggested query)."""
    return "'" + str(text).replace("'", "''") + "'"


def query(sql: str, root: Path = Path("runs")) -> tuple[list[str], list[tuple]]:
    """Run ``sql`` over the ``results`` table of every run under ``root``; returns (columns, rows)."""
    import duckdb

    con = connect(root)
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise TranscendError(f"the SQL query failed: {_first_line(e)}") from None
    if not statements:
        raise TranscendError("the SQL query holds no statement (only comments or blanks); "
                             "give one, e.g. SELECT * FROM results LIMIT 10.")
    try:
        cur = con.execute(sql)
    except duckdb.PermissionException as e:
        raise TranscendError(f"the SQL query was refused: it may read only the table 'results', no files or "
                             f"settings ({_first_line(e)}).") from None
    except duckdb.Error as e:
        raise TranscendError(f"the SQL query failed: {_first_line(e)}") from None
    if cur.description is None:
        return [], []
    cols = [d[0] for d in cur.description]
    return cols, cur.fetchall()


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def format_rows(columns: list[str], rows: Iterable[tuple], max_rows: int = 200) -> str:
    """A plain text table (right-aligned numbers, floats to 4 decimals)."""
    rows = list(rows)
    shown = rows[:max_rows]

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return "" if v is None else str(v)

    table = [[cell(v) for v in r] for r in shown]
    widths = [max([len(c)] + [len(r[i]) for r in table]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in table]
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more rows")
    return "\n".join(lines)
