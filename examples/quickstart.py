"""Quickstart: build a config, run it, read the results back into pandas.

    python examples/quickstart.py [ROOT]      # ROOT defaults to runs/quickstart

A tiny world (seconds on a CPU): five experts who each know half of the facts,
a one-layer model trained briefly on what they write, scored at several
sampling temperatures beside the best expert and the ideal learner (the exact
mixture of what they wrote). At this size the model has not learnt enough to
transcend; `transcend demo` shows that it does at the small scale. Run it
again and the finished run is reused.
"""

import sys
from pathlib import Path

from transcend import RunConfig, connect, run

root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart")

cfg = RunConfig.for_scale("tiny", mode="denoising")  # the sizes `transcend reproduce --scale tiny` uses
cfg.experts.experts = 5
cfg.experts.coverage = 0.5
cfg.eval.temperatures = [0.0, 0.5, 1.0]
cfg.training.steps = 400  # the tiny scale's 40 steps only test the plumbing; 400 take seconds more
metrics = run(cfg, root / "five-experts")
print(f"transcendence gap (model greedy - best expert): {metrics['transcendence_gap']:+.3f}")

con = connect(root)  # a DuckDB view named `results` over every results.parquet under root
df = con.sql("""
    SELECT temperature, metric, value FROM results
    WHERE metric IN ('model_accuracy', 'ideal_learner_by_temperature')
    ORDER BY temperature, metric""").df()
table = df.pivot(index="temperature", columns="metric", values="value")
table = table.rename(columns={"model_accuracy": "model", "ideal_learner_by_temperature": "ideal_learner"})
table["best_expert"] = con.execute("SELECT value FROM results WHERE metric = 'best_expert_accuracy'").fetchone()[0]
print(table[["model", "ideal_learner", "best_expert"]].round(3).to_string())
