"""End to end on a tiny world: the CLI, determinism, resume after a kill, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from transcend.cli import main

TINY = ["--preset", "tiny", "--paragraphs", "3000", "--steps", "80", "--quiet"]
KEYS = {"best_expert_accuracy", "expert_accuracies", "ideal_learner_accuracy", "theory_accuracy",
        "model_accuracy", "transcendence_gap", "gap_ci95"}


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_json_has_the_promised_fields(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = _run(["run", "denoising", "--experts", "3", "--coverage", "0.5", *TINY,
                            "--out", str(out), "--json"], capsys)
    assert code == 0
    m = json.loads(stdout)
    assert KEYS <= set(m)
    assert set(m["model_accuracy"]) == {"0", "0.1", "0.5", "1.0", "1.5"}
    assert len(m["expert_accuracies"]) == 3
    assert all(0.35 <= a <= 0.7 for a in m["expert_accuracies"])
    assert m["gap_ci95"][0] <= m["transcendence_gap"] <= m["gap_ci95"][1]
    # Written and unwritten queries split every query, and their accuracies average to the whole's.
    parts = m["by_written"].values()
    assert sum(p["share"] for p in parts) == pytest.approx(1.0)
    for key, whole in (("model", m["model_accuracy"]["0"]), ("ideal_learner", m["ideal_learner_accuracy"])):
        assert sum(p["share"] * (p[key] or 0.0) for p in parts) == pytest.approx(whole)
    for name in ("config.toml", "metrics.json", "accuracy_vs_temperature.png", "corpus/manifest.json",
                 "checkpoints/latest.pt"):
        assert (out / name).is_file(), name
    # Running the same command again reuses the finished run.
    code, stdout2, err = _run(["run", "denoising", "--experts", "3", "--coverage", "0.5", *TINY,
                               "--out", str(out), "--json"], capsys)
    assert code == 0 and json.loads(stdout2) == m and "reusing" in err


def test_same_seed_same_corpus_and_metrics(tmp_path, capsys):
    results = []
    for name in ("a", "b"):
        code, stdout, _ = _run(["run", "denoising", "--experts", "2", *TINY, "--steps", "30",
                                "--out", str(tmp_path / name), "--json"], capsys)
        assert code == 0
        m = json.loads(stdout)
        results.append({k: m[k] for k in KEYS})
        shards = (tmp_path / name / "corpus" / "tokens_000.npy").read_bytes()
        results.append(shards)
    assert results[0] == results[2]
    assert results[1] == results[3]


def test_killed_run_resumes_to_the_same_metrics(tmp_path, capsys):
    args = ["run", "denoising", "--experts", "3", "--preset", "tiny", "--paragraphs", "3000",
            "--steps", "400", "--quiet", "--json"]
    code, stdout, _ = _run([*args, "--out", str(tmp_path / "whole")], capsys)
    assert code == 0
    whole = json.loads(stdout)

    # Kill a second run (SIGKILL: no clean-up code runs) once it has written a checkpoint.
    out = tmp_path / "killed"
    cfg = tmp_path / "cfg.toml"
    cfg.write_text((tmp_path / "whole" / "config.toml").read_text().replace(
        "checkpoint_every = 200", "checkpoint_every = 20"))
    cmd = [sys.executable, "-m", "transcend.cli", *args, "--config", str(cfg), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = out / "checkpoints" / "latest.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ckpt.exists() and proc.poll() is None, "the run should be mid-training"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists()

    code, _, err = _run([*args, "--config", str(cfg), "--out", str(out)], capsys)
    assert code == 2 and "--resume" in err  # an unfinished run is not silently restarted
    code, stdout, _ = _run([*args, "--config", str(cfg), "--out", str(out), "--resume"], capsys)
    assert code == 0
    resumed = json.loads(stdout)
    for k in KEYS:
        assert resumed[k] == whole[k], k


@pytest.mark.parametrize("args, message", [
    (["--coverage", "1.5"], "coverage must be in [0, 1]"),
    (["--coverage", "-0.1"], "coverage must be in [0, 1]"),
    (["--experts", "0"], "experts must be a whole number of at least 1"),
    (["--preset", "huge"], "preset must be one of"),
    (["--device", "tpu"], "device must be"),
])
def test_bad_input_is_one_clear_sentence_and_leaves_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    code, stdout, err = _run(["run", "denoising", *TINY, "--out", str(out), *args], capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_malformed_triples_exit_2_naming_the_line(tmp_path, capsys):
    bad = tmp_path / "g.tsv"
    bad.write_text("a\tr\tb\nc\tr\n")
    out = tmp_path / "run"
    code, _, err = _run(["run", "denoising", *TINY, "--triples", str(bad), "--out", str(out)], capsys)
    assert code == 2 and "line 2" in err and not out.exists()


def test_unknown_flag_value_exits_non_zero(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "transcend.cli", "run", "denoising", "--experts", "ten"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "expected a whole number" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_corrupt_checkpoint_on_resume_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "denoising", "--experts", "2", *TINY, "--out", str(out)]
    from transcend.config import RunConfig
    from transcend.pipeline import run
    from transcend.cli import build_parser, config_from_args
    parsed = build_parser().parse_args(args)
    cfg = config_from_args(parsed, "denoising")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, out, progress=False, stop_after=10, log=lambda m: None)
    (out / "checkpoints" / "latest.pt").write_bytes(b"garbage")
    code, _, err = _run([*args, "--resume"], capsys)
    assert code == 2 and "corrupt" in err
    assert (out / "config.toml").exists()  # the interrupted run is kept for the user to inspect
    assert isinstance(cfg, RunConfig)


def test_derived_steps_train_in_cycles_until_the_fit_gap_is_met_and_resume_alike(tmp_path, capsys):
    """Derived steps (``--steps 0``) with a floor of 20 steps a cycle: a tiny world's model is far from its
    data after 20 steps, so more cycles follow; a run stopped at a cycle's end (before its decision) and
    resumed reaches the same cycles, gaps and metrics."""
    from transcend.cli import build_parser, config_from_args
    from transcend.pipeline import run
    args = ["run", "denoising", "--experts", "2", "--preset", "tiny", "--paragraphs", "600", "--steps", "0",
            "--training.passes", "0.01", "--training.exposures", "0", "--training.min_steps", "20", "--training.max_cycles", "3", "--quiet"]
    cfg = config_from_args(build_parser().parse_args(args), "denoising")
    said = []
    whole = run(cfg, tmp_path / "whole", progress=False, log=said.append)
    t = whole["training"]
    gaps = [t["fit_gap_by_cycle"][str(i)] for i in (1, 2, 3)]
    assert t["cycles"] == len(t["fit_gap_by_cycle"]) == 3 and t["steps"] == 60
    assert all(g > 0.25 for g in gaps) and gaps[2] < gaps[0]  # short of the target, and closer each cycle
    assert whole["model_fit_gap"] == pytest.approx(gaps[-1])
    assert any("one more cycle of 20 steps" in m for m in said)
    assert any("not reached in training.max_cycles = 3 cycles" in m for m in said)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "part", progress=False, stop_after=20, log=lambda m: None)
    part = run(cfg, tmp_path / "part", resume=True, progress=False, log=lambda m: None)
    for key in ("model_accuracy", "model_fit_gap", "transcendence_gap"):
        assert part[key] == whole[key], key
    assert part["training"]["fit_gap_by_cycle"] == t["fit_gap_by_cycle"]
    # given steps are one cycle, and the table shows the gap
    code, out, _ = _run(["run", "denoising", "--experts", "2", *TINY, "--steps", "20", "--out",
                         str(tmp_path / "given")], capsys)
    assert code == 0 and "fit gap (0 = the mixture)" in out and "20 steps in 1 cycle)" in out
