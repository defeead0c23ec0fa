"""Intervals over seeds and the one rule that calls a grid point transcendent (no training: synthetic runs)."""

import math
import re

import numpy as np
import pytest
from scipy import stats

from transcend.evaluate.stats import seed_interval, transcendent
from transcend.experiments.registry import get_experiment, resolve_seeds
from transcend.experiments.runner import SPEC
from transcend.errors import TranscendError
from transcend.report.html import render_report
from transcend.results.store import query, write_results

# Student's t quantile t_{0.975} with 2 degrees of freedom (three seeds), as printed in tables.
T975_DF2 = 4.302652729911275


def test_seed_interval_is_scipys_t_interval():
    v = [0.71, 0.74, 0.69]
    iv = seed_interval(v)
    mean, sem = np.mean(v), np.std(v, ddof=1) / math.sqrt(3)
    assert iv.n == 3 and iv.mean == pytest.approx(0.713333333, abs=1e-9)
    assert (iv.lo, iv.hi) == pytest.approx((mean - T975_DF2 * sem, mean + T975_DF2 * sem), abs=1e-9)
    assert (iv.lo, iv.hi) == pytest.approx((0.650817, 0.775849), abs=1e-5)  # 0.7133 ± 4.3027 · 0.01453
    assert (iv.lo, iv.hi) == pytest.approx(stats.t.interval(0.95, 2, loc=mean, scale=stats.sem(v)), abs=1e-12)
    wide = seed_interval(v, level=0.99)
    assert wide.lo < iv.lo and wide.hi > iv.hi
    # None and NaN are left out; one value has no interval; equal values give a point
    one = seed_interval([0.5, None, math.nan])
    assert (one.mean, one.lo, one.hi, one.n, one.defined) == (0.5, None, None, 1, False)
    assert math.isnan(seed_interval([]).mean) and seed_interval([]).n == 0
    assert seed_interval([0.3, 0.3]) == (0.3, 0.3, 0.3, 2)


def test_transcendent_only_where_the_seed_interval_of_the_gap_lies_above_zero():
    crossing = [0.05, -0.02, 0.04]  # mean +0.023 > 0, but the interval over seeds reaches below 0
    assert np.mean(crossing) > 0 and seed_interval(crossing).lo < 0
    assert transcendent(crossing) == (False, "seeds")
    # a narrow query bootstrap of one run does not decide where there are seeds
    assert transcendent(crossing, query_ci=(0.01, 0.05)) == (False, "seeds")
    assert transcendent([0.05, 0.06, 0.055]) == (True, "seeds")
    assert transcendent([0.05, 0.06, 0.055]).label() == "yes"
    # one seed: the run's bootstrap over queries decides, and the label says so
    assert transcendent([0.03], query_ci=(0.01, 0.05)) == (True, "queries")
    assert transcendent([0.03], query_ci=(-0.01, 0.05)) == (False, "queries")
    assert transcendent([0.03], query_ci=(-0.01, 0.05)).label() == "no (1 seed: query bootstrap)"
    assert transcendent([]) == (None, None) and transcendent([0.03]).label() == "–"


def test_seeds_default_to_three_and_a_count_or_list_overrides():
    assert resolve_seeds() == [0, 1, 2] and resolve_seeds(1) == [0] and resolve_seeds([4, 2]) == [4, 2]
    for scale in ("tiny", "small", "paper"):
        assert get_experiment("temperature", scale).seeds == [0, 1, 2]
    assert get_experiment("temperature", "tiny", 5).seeds == [0, 1, 2, 3, 4]
    for bad, msg in ((0, "at least 1"), ([1, 1], "distinct"), ([-1], ">= 0"), ([], ">= 0")):
        with pytest.raises(TranscendError, match=msg):
            resolve_seeds(bad)


def _synthetic_experiment(root, gaps_by_point, query_cis=None):
    """An experiment folder with hand-made result rows: grid field experts.experts, one run per (point, seed)."""
    import json

    exp_dir = root / "synthetic"
    exp_dir.mkdir(parents=True)
    spec = {"name": "synthetic", "description": "", "scale": "custom", "base": {}, "seeds": [],
            "grid": {"experts.experts": list(gaps_by_point)}, "study": None, "study_options": {}, "runs": []}
    for n, gaps in gaps_by_point.items():
        for seed, gap in enumerate(gaps):
            run_id = f"n{n}s{seed}"
            lo, hi = (query_cis or {}).get(n, (gap - 0.01, gap + 0.01))
            rows = [{"run_id": run_id, "experiment": "synthetic", "seed": seed, "cfg.experts.experts": n,
                     "metric": m, "temperature": t, "value": v}
                    for m, t, v in (("model_accuracy", 0.0, 0.5 + gap), ("best_expert_accuracy", math.nan, 0.5),
                                    ("ideal_learner_accuracy", math.nan, 0.6), ("transcendence_gap", math.nan, gap),
                                    ("gap_ci95_lo", math.nan, lo), ("gap_ci95_hi", math.nan, hi))]
            write_results(exp_dir / run_id, rows)
            spec["runs"].append({"run_id": run_id, "params": {"experts.experts": n, "seed": seed}})
    (exp_dir / SPEC).write_text(json.dumps(spec))
    return exp_dir


def _seed_rows(page):
    table = page[page.index('<table class="seeds">'):]
    table = table[:table.index("</table>")]
    head = re.findall(r"<th>(.*?)</th>", table)
    return [dict(zip(head, re.findall(r"<td>(.*?)</td>", row))) for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]]


def test_report_shows_mean_interval_seeds_and_the_verdict_per_grid_point(tmp_path):
    exp_dir = _synthetic_experiment(tmp_path, {1: [0.05, -0.02, 0.04], 10: [0.05, 0.06, 0.055]})
    _, rows = query("SELECT seed, count(*) FROM results WHERE metric = 'transcendence_gap' GROUP BY seed "
                    "ORDER BY seed", tmp_path)
    assert rows == [(0, 2), (1, 2), (2, 2)]  # every seed's rows are in the store
    page = render_report(exp_dir, tmp_path / "figures")
    crossing, clear = _seed_rows(page)
    assert crossing["experts"] == "1" and crossing["seeds"] == "3"
    iv = seed_interval([0.05, -0.02, 0.04])
    assert crossing["gap"] == f"{iv.mean:+.3f} [{iv.lo:+.3f}, {iv.hi:+.3f}]"
    assert crossing["transcendent"] == "no"  # the mean gap is above 0, its interval is not
    assert clear["transcendent"] == "yes" and clear["model, greedy"].startswith("0.555 [")
    assert "Student-t" in page and "scipy.stats.t.interval" in page
    # the store's table of grid points carries the same interval and verdict
    _, seeds = query("SELECT \"cfg.experts.experts\", n_seeds, seeds, mean, ci95_lo, ci95_hi, transcendent, basis "
                     "FROM seeds WHERE metric = 'transcendence_gap' ORDER BY 1", tmp_path)
    assert seeds[0][:3] == (1, 3, "0,1,2") and seeds[0][3:6] == pytest.approx((iv.mean, iv.lo, iv.hi), abs=1e-12)
    assert seeds[0][6:] == (False, "seeds") and seeds[1][6:] == (True, "seeds")


def test_report_with_one_seed_says_the_interval_is_undefined_and_falls_back_to_the_query_bootstrap(tmp_path):
    exp_dir = _synthetic_experiment(tmp_path, {1: [0.03], 10: [0.03]}, query_cis={1: (-0.01, 0.07), 10: (0.01, 0.05)})
    wide, narrow = _seed_rows(render_report(exp_dir, tmp_path / "figures"))
    assert wide["seeds"] == "1" and wide["gap"] == "+0.030 [n/a: 1 seed]"
    assert wide["transcendent"] == "no (1 seed: query bootstrap)"
    assert narrow["transcendent"] == "yes (1 seed: query bootstrap)"
    _, seeds = query("SELECT n_seeds, mean, ci95_lo, ci95_hi, transcendent, basis FROM seeds "
                     "WHERE metric = 'transcendence_gap' ORDER BY \"cfg.experts.experts\"", tmp_path)
    assert seeds == [(1, 0.03, None, None, False, "queries"), (1, 0.03, None, None, True, "queries")]
