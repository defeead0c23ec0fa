"""Experiments: specs, the registry, the runner (skip, resume after a kill, shared corpora, Ray),
the results command, correlated experts and the vote study. Tiny worlds, a few training steps."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from transcend.cli import main
from transcend.config import RunConfig
from transcend.errors import TranscendError
from transcend.evaluate.stats import seed_interval
from transcend.evaluate.vote import experts_vote_accuracy, inference_vote_accuracy, plurality_correct
from transcend.experiments.registry import EXPERIMENTS, get_experiment, scale_base
from transcend.experiments.runner import LOG, corpus_cache, run_experiment
from transcend.experiments.spec import Experiment
from transcend.experts.denoising import denoising_panel
from transcend.results.store import RESULTS, query, read_results
from transcend.theory import majority_vote_accuracy, majority_vote_limit
from transcend.world.kg import generate_graph

QUIET = dict(progress=False, log=lambda m: None)


def _log_lines(exp_dir: Path, what: str) -> list[str]:
    return [line.split()[-1] for line in (exp_dir / LOG).read_text().splitlines() if line.split()[-2] == what]


# --- specs and the registry -----------------------------------------------------------------------------------

def test_spec_expands_grid_times_seeds_in_order():
    exp = Experiment("x", "", scale_base("tiny"), {"experts.experts": [1, 3], "experts.coverage": [0.2, 0.5, 0.8]},
                     seeds=[0, 1])
    runs = exp.expand()
    assert len(runs) == 2 * 3 * 2
    assert [(r.params["experts.experts"], r.params["experts.coverage"], r.params["seed"]) for r in runs[:3]] == \
        [(1, 0.2, 0), (1, 0.2, 1), (1, 0.5, 0)]
    assert runs[0].config.experts.experts == 1 and runs[-1].config.experts.coverage == 0.8
    assert runs[-1].config.seed == 1 and runs[0].config.world.preset == "tiny"
    assert len({r.run_id for r in runs}) == len(runs)


def test_spec_union_of_grids_runs_shared_points_once():
    exp = Experiment("x", "", scale_base("tiny"), [{"experts.experts": [1, 2]}, {"experts.experts": [2, 3]}])
    assert [r.params["experts.experts"] for r in exp.expand()] == [1, 2, 3]
    assert exp.fields == ["experts.experts"]


def test_spec_bad_field_or_value_names_it():
    with pytest.raises(TranscendError, match="coverage"):
        Experiment("x", "", scale_base("tiny"), {"experts.coverage": [1.5]}).expand()
    with pytest.raises(TranscendError, match="nonsense"):
        Experiment("x", "", scale_base("tiny"), {"experts.nonsense": [1]}).expand()
    with pytest.raises(TranscendError, match="non-empty"):
        Experiment("x", "", scale_base("tiny"), {"experts.experts": []})


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
@pytest.mark.parametrize("scale", ["small", "paper", "tiny"])
def test_every_reproduction_expands_to_valid_configs(name, scale):
    exp = get_experiment(name, scale, seeds=2)
    runs = exp.expand()
    assert len(runs) >= 2 and {r.config.seed for r in runs} == {0, 1}


def test_coverage_small_is_the_issue_grid():
    runs = get_experiment("coverage", "small").expand()
    assert sorted({(r.config.experts.coverage, r.config.experts.experts) for r in runs}) == \
        sorted((c, n) for c in (0.2, 0.4, 0.6, 0.8) for n in (1, 10, 100))


def test_unknown_experiment_scale_and_bad_sql_are_one_sentence(tmp_path, capsys):
    with pytest.raises(TranscendError, match="unknown experiment 'nope'; known: temperature"):
        get_experiment("nope")
    assert main(["reproduce", "nope", "--root", str(tmp_path)]) == 2
    assert main(["reproduce", "coverage", "--scale", "huge", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["transcend: error: unknown experiment 'nope'; known: temperature, coverage, selection, "
                   "generalization, correlation, vote.",
                   "transcend: error: scale must be one of small, paper, tiny, got 'huge'."]
    assert main(["results", "--root", str(tmp_path)]) == 2  # nothing there yet
    assert main(["report", "coverage", "--root", str(tmp_path)]) == 2


# --- the runner -----------------------------------------------------------------------------------------------

def test_runner_writes_results_then_skips_finished_runs(tmp_path, capsys):
    exp = get_experiment("temperature", "tiny", seeds=1)
    s = run_experiment(exp, tmp_path, workers=2, **QUIET)  # a process pool
    assert (s["runs"], s["ran"], s["skipped"], s["failed"]) == (3, 3, 0, [])
    files = sorted((tmp_path / "temperature").glob(f"*/{RESULTS}"))
    assert len(files) == 3
    mtimes = [f.stat().st_mtime_ns for f in files]
    rows = read_results(files[0].parent)
    metrics = {r["metric"] for r in rows}
    assert {"model_accuracy", "ideal_learner_by_temperature", "best_expert_accuracy", "theory_accuracy",
            "transcendence_gap"} <= metrics
    taus = sorted(r["temperature"] for r in rows if r["metric"] == "model_accuracy")
    assert taus == [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5]
    assert all(r["cfg.world.preset"] == "tiny" and r["experiment"] == "temperature" for r in rows)

    again = run_experiment(exp, tmp_path, workers=1, **QUIET)
    assert (again["ran"], again["skipped"]) == (0, 3)
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert len(_log_lines(tmp_path / "temperature", "done")) == 3

    # transcend results --sql: rows from every run
    assert main(["results", "--root", str(tmp_path), "--sql",
                 "SELECT \"cfg.experts.experts\" AS n, value FROM results WHERE metric = 'model_accuracy' "
                 "AND temperature = 0 ORDER BY n"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].split() == ["n", "value"] and [line.split()[0] for line in out[1:]] == ["1", "10", "100"]
    assert all(0.0 <= float(line.split()[1]) <= 1.0 for line in out[1:])
    assert main(["results", "--root", str(tmp_path), "--sql", "SELECT nope FROM results"]) == 2
    assert "SQL query failed" in capsys.readouterr().err

    # Damaged derived files heal: a corrupt results.parquet is not a finished run (it is written again from
    # the run's metrics), and a corrupt shard of a cached corpus is rebuilt when a run needs it again.
    files[0].write_bytes(b"PAR1 garbage")
    (files[1].parent / "metrics.json").unlink()
    files[1].unlink()
    shard = (files[1].parent / "corpus").resolve() / "tokens_000.npy"
    good = shard.read_bytes()
    shard.write_bytes(good[:-4] + b"oops")
    healed = run_experiment(exp, tmp_path, workers=1, **QUIET)
    assert (healed["ran"], healed["skipped"], healed["failed"]) == (2, 1, [])
    assert "is damaged" in capsys.readouterr().err
    assert read_results(files[0].parent) and read_results(files[1].parent)
    assert shard.read_bytes() == good
    assert any("rebuilding corpus" in line for line in (tmp_path / "temperature" / LOG).read_text().splitlines())


def test_cli_reproduce_runs_three_seeds_by_default_then_reports_intervals_over_them(tmp_path, capsys):
    assert get_experiment("temperature", "small").seeds == [0, 1, 2] == get_experiment("coverage", "paper").seeds
    assert main(["reproduce", "temperature", "--scale", "tiny", "--root", str(tmp_path), "--quiet", "--report"]) == 0
    out = capsys.readouterr().out
    assert "temperature: 9 runs (9 ran, 0 already finished, 0 failed)" in out  # 3 grid points x seeds 0, 1, 2
    # the store holds every seed's rows, each seed with its own world, experts and corpus
    _, rows = query("SELECT seed, \"cfg.experts.experts\" AS n, count(DISTINCT run_id) FROM results "
                    "WHERE metric = 'transcendence_gap' GROUP BY ALL ORDER BY ALL", tmp_path)
    assert rows == [(s, n, 1) for s in (0, 1, 2) for n in (1, 10, 100)]
    _, best = query("SELECT seed, value FROM results WHERE metric = 'best_expert_accuracy' "
                    "AND \"cfg.experts.experts\" = 10 ORDER BY seed", tmp_path)
    assert [s for s, _ in best] == [0, 1, 2] and len({v for _, v in best}) > 1  # a seed redraws the panel
    _, gaps = query("SELECT \"cfg.experts.experts\", list(value ORDER BY seed) FROM results "
                    "WHERE metric = 'transcendence_gap' GROUP BY 1 ORDER BY 1", tmp_path)
    _, points = query("SELECT \"cfg.experts.experts\", n_seeds, seeds, mean, ci95_lo, ci95_hi, basis FROM seeds "
                      "WHERE metric = 'transcendence_gap' ORDER BY 1", tmp_path)
    for (n, values), (m, k, seeds, *iv, basis) in zip(gaps, points):
        assert (n, k, seeds, basis) == (m, 3, "0,1,2", "seeds")
        assert iv == pytest.approx(list(seed_interval(values)[:3]), abs=1e-12)
    # the report: one row per grid point with three seeds and a 95% interval over them, and a verdict
    page = (tmp_path / "temperature" / "report.html").read_text(encoding="utf-8")
    table = page[page.index('<table class="seeds">'):]
    table = table[:table.index("</table>")]
    cells = re.findall(r"<tr>(.*?)</tr>", table)[1:]
    assert len(cells) == 3
    for row in cells:
        tds = re.findall(r"<td>(.*?)</td>", row)
        assert tds[1] == "3" and re.fullmatch(r"[0-9.]+ \[[0-9.]+, [0-9.]+\]", tds[2])  # model greedy [lo, hi]
        assert tds[-1] in ("yes", "no")
    assert "n/a" not in table
    # --seeds overrides: a count, or a list; the runs of seeds already run are not run again
    assert main(["reproduce", "temperature", "--scale", "tiny", "--root", str(tmp_path), "--quiet",
                 "--seeds", "1"]) == 0
    assert "temperature: 3 runs (0 ran, 3 already finished, 0 failed)" in capsys.readouterr().out
    assert main(["reproduce", "temperature", "--scale", "tiny", "--root", str(tmp_path), "--quiet",
                 "--seeds", "2,0"]) == 0
    assert "temperature: 6 runs (0 ran, 6 already finished, 0 failed)" in capsys.readouterr().out
    assert main(["reproduce", "temperature", "--scale", "tiny", "--root", str(tmp_path), "--seeds", "1,1"]) == 2
    assert "seeds must be distinct" in capsys.readouterr().err


def test_one_corpus_serves_every_learner_setting(tmp_path):
    base = scale_base("tiny")
    exp = Experiment("steps", "", base, {"training.steps": [10, 20], "model.n_embd": [16, 32]})
    s = run_experiment(exp, tmp_path, **QUIET)
    assert s["ran"] == 4 and not s["failed"]
    corpora = [p for p in corpus_cache(tmp_path).iterdir() if p.is_dir()]  # (beside them: their lock files)
    assert len(corpora) == 1  # same world, experts and corpus: built once
    for r in exp.expand():
        link = tmp_path / "steps" / r.run_id / "corpus"
        assert link.resolve() == corpora[0].resolve()


def test_a_run_finished_by_another_experiment_is_reused_not_retrained(tmp_path):
    base = scale_base("tiny")
    first = run_experiment(Experiment("a", "", base, {"experts.experts": [1, 3]}), tmp_path, **QUIET)
    assert first["ran"] == 2
    b = Experiment("b", "", base, {"experts.experts": [3]}, study="vote", study_options={"k": [1, 5], "trials": 4})
    second = run_experiment(b, tmp_path, **QUIET)
    assert second["ran"] == 1 and not second["failed"]
    run_id = b.expand()[0].run_id
    assert _log_lines(tmp_path / "b", "reuse") == [run_id] and "from=a reuse" in (tmp_path / "b" / LOG).read_text()
    ckpt = "checkpoints/latest.pt"
    assert (tmp_path / "b" / run_id / ckpt).read_bytes() == (tmp_path / "a" / run_id / ckpt).read_bytes()
    rows = read_results(tmp_path / "b" / run_id)
    assert {r["experiment"] for r in rows} == {"b"} and any(r["metric"] == "vote.inference" for r in rows)
    assert len([p for p in corpus_cache(tmp_path).iterdir() if p.is_dir()]) == 2  # nothing rebuilt for b


def test_a_model_trained_elsewhere_is_only_evaluated(tmp_path):
    base = scale_base("tiny")
    run_experiment(Experiment("a", "", base, {"experts.experts": [3]}), tmp_path, **QUIET)
    other = dict(base, eval={**base["eval"], "temperatures": [0.0, 0.3, 1.0]})
    b = Experiment("b", "", other, {"experts.experts": [3]})
    assert run_experiment(b, tmp_path, **QUIET)["ran"] == 1
    a_id, b_id = Experiment("a", "", base, {"experts.experts": [3]}).expand()[0].run_id, b.expand()[0].run_id
    assert a_id != b_id and f"from=a/{a_id} checkpoint {b_id}" in (tmp_path / "b" / LOG).read_text()
    acc = {}
    for name, run_id in (("a", a_id), ("b", b_id)):
        rows = read_results(tmp_path / name / run_id)
        acc[name] = {r["temperature"]: r["value"] for r in rows if r["metric"] == "model_accuracy"}
    assert acc["b"][0.0] == acc["a"][0.0] and acc["b"][1.0] == acc["a"][1.0] and 0.3 in acc["b"]
    # a model trained by other learner code (as its identity.json records) is not this code's: trained anew
    for name, run_id in (("a", a_id), ("b", b_id)):
        path = tmp_path / name / run_id / "identity.json"
        identity = json.loads(path.read_text())
        identity["identity"]["code"]["learner"] = "0" * 12
        path.write_text(json.dumps(identity))
    c = Experiment("c", "", dict(base, eval={**base["eval"], "temperatures": [0.0, 0.5]}), {"experts.experts": [3]})
    assert run_experiment(c, tmp_path, **QUIET)["ran"] == 1
    assert " checkpoint " not in (tmp_path / "c" / LOG).read_text()


_SWEEP = textwrap.dedent("""
    import sys
    from pathlib import Path
    from transcend.experiments.registry import scale_base
    from transcend.experiments.runner import run_experiment
    from transcend.experiments.spec import Experiment
    base = scale_base("tiny")
    base["training"].update(steps=400, checkpoint_every=20)
    exp = Experiment("killme", "", base, {"experts.experts": [1, 2, 3]})
    run_experiment(exp, Path(sys.argv[1]), progress=False)
""")


def test_killed_sweep_reruns_only_the_missing_runs(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _SWEEP, str(tmp_path)], env=env, start_new_session=True,
                            stderr=subprocess.DEVNULL)
    exp_dir = tmp_path / "killme"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if (exp_dir / LOG).is_file() and _log_lines(exp_dir, "done"):
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first_done = _log_lines(exp_dir, "done")
    assert len(first_done) >= 1
    finished_before = {p.parent.name: p.stat().st_mtime_ns for p in exp_dir.glob(f"*/{RESULTS}")}
    assert 1 <= len(finished_before) < 3, "the sweep must be killed while runs remain"

    rerun = subprocess.run([sys.executable, "-c", _SWEEP, str(tmp_path)], env=env, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    done = _log_lines(exp_dir, "done")
    assert sorted(done) == sorted(set(done)) and len(done) == 3  # every run finished exactly once
    started_after_kill = _log_lines(exp_dir, "start")[len(finished_before) + 1:]
    assert not set(started_after_kill) & set(finished_before)  # finished runs were not started again
    for run_id, mtime in finished_before.items():
        assert (exp_dir / run_id / RESULTS).stat().st_mtime_ns == mtime
    cols, rows = query("SELECT count(DISTINCT run_id) FROM results", exp_dir)
    assert rows[0][0] == 3


def _workers_of(pid: int) -> list[int]:
    """The pool workers among a process's children (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmd:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads processes from Linux's /proc")
def test_pool_workers_end_when_their_sweep_is_killed(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Runs far longer than the wait below, so that a worker left alone would still be training.
    script = _SWEEP.replace("progress=False)", "progress=False, workers=2)").replace("steps=400", "steps=100000")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 120, []
    try:
        log = tmp_path / "killme" / LOG
        while time.time() < deadline and proc.poll() is None and not (
                log.is_file() and len(_log_lines(tmp_path / "killme", "start")) >= 2):
            time.sleep(0.05)
        workers = _workers_of(proc.pid)
    finally:
        proc.kill()  # the parent only: SIGKILL leaves it no way to stop its pool
        proc.wait()
    assert len(workers) == 2, "both workers must be training when the sweep is killed"

    def running(pid: int) -> bool:  # an exited worker may linger as a zombie until its new parent reaps it
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.time() + 30
    while time.time() < deadline and any(running(w) for w in workers):
        time.sleep(0.1)
    alive = [w for w in workers if running(w)]
    for w in alive:
        os.kill(w, signal.SIGKILL)
    assert not alive, "pool workers outlived their sweep"


@pytest.mark.ray
@pytest.mark.xdist_group("ray")  # one Ray at a time under xdist
def test_ray_runner_on_a_local_ray(tmp_path):
    ray = pytest.importorskip("ray") if not os.environ.get("CI") else __import__("ray")
    try:
        exp = Experiment("ray", "", scale_base("tiny"), {"experts.experts": [1, 3]})
        s = run_experiment(exp, tmp_path, ray_address="local", ray_init={"num_cpus": 1}, **QUIET)
    finally:
        ray.shutdown()
    assert (s["runs"], s["ran"], s["failed"]) == (2, 2, [])
    cols, rows = query("SELECT count(DISTINCT run_id), count(*) FROM results", tmp_path)
    assert rows[0][0] == 2 and rows[0][1] > 20
    assert len(_log_lines(tmp_path / "ray", "done")) == 2


# --- correlated experts ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kg():
    return generate_graph(300, seed=5)


def _wrong(panel):
    bad = ~panel.correct
    return np.stack([panel.heads[bad], panel.rels[bad], panel.tails[bad]], axis=1), panel.expert[bad]


def test_rho_zero_is_the_independent_panel_and_keeps_the_hash(kg):
    a = denoising_panel(kg, 5, 0.4, seed=2)
    b = denoising_panel(kg, 5, 0.4, seed=2, rho=0.0)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("expert", "heads", "rels", "tails"))
    assert RunConfig.from_dict({"experts": {"rho": 0.0}}).hash() == RunConfig().hash()
    assert RunConfig.from_dict({"experts": {"rho": 0.5}}).hash() != RunConfig().hash()
    with pytest.raises(TranscendError, match="rho"):
        RunConfig.from_dict({"experts": {"rho": 1.5}})
    with pytest.raises(TranscendError, match="rho applies only to mode denoising"):
        RunConfig.from_dict({"mode": "selection", "experts": {"rho": 0.5}})


def test_correlated_errors_share_one_misconception(kg):
    n, c = 10, 0.4
    shares, distinct = {}, {}
    for rho in (0.0, 0.5, 1.0):
        panel = denoising_panel(kg, n, c, seed=2, rho=rho)
        assert panel.correct.mean() == pytest.approx(c, abs=0.03)  # who errs does not depend on rho
        wrong, _ = _wrong(panel)
        triples, counts = np.unique(wrong, axis=0, return_counts=True)
        shares[rho] = counts[counts > 1].sum() / counts.sum()  # wrong beliefs also held by another expert
        distinct[rho] = len(triples)
        if rho == 1.0:
            # every wrong belief is its edge's one shared misconception: at most one per edge
            assert len(triples) <= kg.num_edges
    assert shares[1.0] > 0.95
    # independent errors collide only by chance (small slot pools in this tiny graph)
    assert shares[0.0] < 0.6 and distinct[0.0] > 2 * kg.num_edges
    assert shares[0.0] + 0.15 < shares[0.5] < shares[1.0] and distinct[1.0] < distinct[0.5] < distinct[0.0]


def test_theory_of_correlated_votes():
    limits = [majority_vote_limit(10, 0.4, rho=r) for r in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(a > b for a, b in zip(limits, limits[1:]))
    assert limits[0] > 0.9 and limits[-1] < 0.4  # a shared wrong answer held by 60% outvotes the truth
    assert majority_vote_limit(1, 0.4, rho=1.0) == pytest.approx(0.4, abs=0.02)  # one expert: rho is moot
    w, k = np.array([20, 20]), np.array([50, 50])
    assert np.array_equal(majority_vote_accuracy(10, 0.4, w, k), majority_vote_accuracy(10, 0.4, w, k, rho=0.0))
    assert majority_vote_accuracy(10, 0.4, w, k, rho=1.0).mean() < majority_vote_accuracy(10, 0.4, w, k).mean()


# --- the vote study -------------------------------------------------------------------------------------------

def test_plurality_with_ties():
    answers = np.array([[1, 1, 2], [1, 2, 3], [5, 5, 5], [2, 1, 2]])
    correct = np.array([[True, True, False], [True, False, False], [False, False, False], [False, True, False]])
    assert plurality_correct(answers, correct).tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.0])


def test_inference_vote_on_known_distributions(kg):
    from transcend.corpus.tokenizer import ENTITY_OFFSET

    qh, qr = kg.queries
    Q, V = 2, ENTITY_OFFSET + kg.num_entities
    probs = torch.zeros(Q, V)
    wrong = [e for e in range(kg.num_entities) if not kg.is_fact(qh[:1], qr[:1], np.array([e]))[0]][:2]
    right = kg.tails[np.flatnonzero(kg.edge_query == 0)[0]]
    probs[0, ENTITY_OFFSET + right], probs[0, ENTITY_OFFSET + wrong[0]], probs[0, ENTITY_OFFSET + wrong[1]] = \
        0.5, 0.25, 0.25  # mode correct, below 1/2
    right1 = kg.tails[np.flatnonzero(kg.edge_query == 1)[0]]
    other = [e for e in range(kg.num_entities) if not kg.is_fact(qh[1:2], qr[1:2], np.array([e]))[0]][0]
    probs[1, ENTITY_OFFSET + right1], probs[1, ENTITY_OFFSET + other] = 0.35, 0.65  # mode wrong
    acc = inference_vote_accuracy(probs, kg, [1, 5, 65], trials=400, seed=0)
    assert acc[1][0] == pytest.approx(0.5, abs=0.06) and acc[1][1] == pytest.approx(0.35, abs=0.06)
    assert acc[65][0] > 0.97 and acc[65][1] < 0.03  # many samples: the mode, right or wrong
    assert acc[1][0] < acc[5][0] < acc[65][0]


def test_experts_vote_of_one_expert_is_that_expert(kg):
    from transcend.evaluate.experts_eval import expert_accuracy

    one = denoising_panel(kg, 1, 0.6, seed=1)
    # One voter: the vote is that expert's greedy answer, query by query (guesses included).
    assert experts_vote_accuracy(one) == pytest.approx(expert_accuracy(one)[0.0][0], abs=1e-12)
    many = denoising_panel(kg, 15, 0.6, seed=1)
    assert experts_vote_accuracy(many).mean() > expert_accuracy(many)[0.0].mean(axis=1).max() + 0.15


def test_vote_study_end_to_end_sanity(tmp_path):
    exp = get_experiment("vote", "tiny", seeds=1)
    exp.base["training"]["steps"] = 150
    s = run_experiment(exp, tmp_path, **QUIET)
    assert s["ran"] == 3 and not s["failed"]
    for run_dir in (tmp_path / "vote").glob("*/"):
        if not (run_dir / "vote.json").is_file():
            continue
        res = json.loads((run_dir / "vote.json").read_text())["result"]
        inf = {int(k): v for k, v in res["inference_vote"].items()}
        se = {int(k): v for k, v in res["inference_vote_se"].items()}
        assert all(0.0 <= v <= 1.0 for v in inf.values())
        # one sample is sampling at tau = 1 (exact expectation), up to Monte Carlo noise
        assert inf[1] == pytest.approx(res["model_tau1"], abs=4 * se[1] + 0.02)
        # many samples approach the mode, i.e. greedy decoding
        assert abs(inf[65] - res["training_vote"]) < abs(inf[1] - res["training_vote"]) + 0.02
        rows = read_results(run_dir)
        assert {r["k"] for r in rows if r["metric"] == "vote.inference"} == {1, 3, 5, 9, 17, 33, 65}
