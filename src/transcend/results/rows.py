"""A finished run's metrics (metrics.json, study results) as result-store rows."""

from __future__ import annotations

import math
from typing import Any

from transcend.config import RunConfig
from transcend.results.store import flatten_config

# Metrics given per temperature, as {"0": ..., "1.0": ...}.
BY_TEMPERATURE = {"model_accuracy", "ideal_learner_by_temperature", "theory_by_temperature"}
# Entries that are bookkeeping, not measurements.
SKIP = {"run_dir", "config_hash", "environment", "warnings", "two_hop_config", "cluster_sizes", "expert_accuracies", "mode",
        "world", "experts", "coverage", "alpha", "clusters"}


def _numbers(prefix: str, obj: Any) -> list[tuple[str, float]]:
    """Every number in a nested dict, under its dotted name (lists of two: _lo/_hi; other lists skipped)."""
    if isinstance(obj, bool):
        return [(prefix, float(obj))]
    if isinstance(obj, (int, float)):
        return [(prefix, float(obj))]
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            out += _numbers(f"{prefix}.{k}" if prefix else str(k), v)
        return out
    if isinstance(obj, (list, tuple)) and len(obj) == 2 and all(isinstance(x, (int, float)) for x in obj):
        return [(prefix + "_lo", float(obj[0])), (prefix + "_hi", float(obj[1]))]
    return []


def metrics_rows(metrics: dict, cfg: RunConfig, experiment: str, extra: dict[str, Any] | None = None
                 ) -> list[dict]:
    """One row per number in ``metrics``; temperature-keyed metrics give one row per temperature."""
    common = {"run_id": cfg.hash(), "experiment": experiment, "seed": cfg.seed, **flatten_config(cfg.identity())}
    rows = []
    for key, value in metrics.items():
        if key in SKIP:
            continue
        if key in BY_TEMPERATURE and isinstance(value, dict):
            for tau, v in value.items():
                rows.append({**common, "metric": key, "temperature": float(tau), "value": v})
            continue
        for name, v in _numbers(key, value):
            rows.append({**common, "metric": name, "temperature": math.nan, "value": v})
    for key, v in metrics.get("world", {}).items() if isinstance(metrics.get("world"), dict) else []:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            rows.append({**common, "metric": f"world.{key}", "temperature": math.nan, "value": float(v)})
    for row in extra_rows(extra or {}, common):
        rows.append(row)
    return rows


def extra_rows(study: dict[str, Any], common: dict[str, Any]) -> list[dict]:
    """Study results: ``{"rows": [{"metric", "value", "temperature"?, other columns...}]}``."""
    out = []
    for r in study.get("rows", []):
        out.append({**common, "temperature": math.nan, **r})
    return out
