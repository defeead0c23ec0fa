"""examples/quickstart.py runs as a reader would run it and prints a table read from the results store."""

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_quickstart_runs_and_prints_the_results_table(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path / "runs")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("transcendence gap")
    header = lines[1].split()
    assert header == ["metric", "model", "ideal_learner", "best_expert"]
    rows = [line.split() for line in lines[3:]]
    assert [float(r[0]) for r in rows] == [0.0, 0.5, 1.0]  # one row per temperature
    stored = pq.read_table(tmp_path / "runs" / "five-experts" / "results.parquet").to_pylist()
    model = {r["temperature"]: r["value"] for r in stored if r["metric"] == "model_accuracy"}
    assert [float(r[1]) for r in rows] == [round(model[t], 3) for t in (0.0, 0.5, 1.0)]
    assert all(0.0 <= float(x) <= 1.0 for r in rows for x in r[1:])
