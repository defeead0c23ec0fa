"""Every config field is a flag; `transcend config` prints a config that loads back to the same run."""

import argparse
import json
from pathlib import Path

import pytest

from transcend import __version__
from transcend.cli import build_parser, config_from_args, main
from transcend.config import MODES, RunConfig
from transcend.experiments.registry import EXPERIMENTS, get_experiment
from transcend.flags import config_fields


def _cfg(argv: list[str]) -> RunConfig:
    args = build_parser().parse_args(argv)
    return config_from_args(args, args.mode)


def _options(parser: argparse.ArgumentParser, *path: str) -> dict[str, argparse.Action]:
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return {o: a for a in parser._actions for o in a.option_strings}


@pytest.mark.parametrize("mode", MODES)
def test_every_field_of_the_mode_is_a_flag_with_its_doc(mode):
    options = _options(build_parser(), "run", mode)
    for info in config_fields(RunConfig, instance=RunConfig(mode=mode)):
        if info.path == "mode":  # the subcommand
            continue
        other_mode = any(info.doc.startswith(f"{m.capitalize()} only") for m in MODES if m != mode)
        if other_mode or (info.path.startswith("two_hop.") and mode != "generalization"):
            assert f"--{info.path}" not in options, info.path
            continue
        assert f"--{info.path}" in options, info.path
        assert info.doc and info.doc.split(" (default")[0] in options[f"--{info.path}"].help.replace("%%", "%")


def test_dotted_flags_set_the_run_config():
    cfg = _cfg(["run", "denoising", "--training.lr", "0.003", "--model.n_layer", "3",
                "--eval.temperatures", "0,1", "--experts", "3", "--coverage", "0.5", "--steps", "7"])
    assert cfg.training.lr == 0.003 and cfg.model.n_layer == 3 and cfg.eval.temperatures == [0.0, 1.0]
    assert (cfg.experts.experts, cfg.experts.coverage, cfg.training.steps) == (3, 0.5, 7)  # the short flags
    gen = _cfg(["run", "generalization", "--cot", "--two_hop.repeat", "2", "--two-hop", "40"])
    assert gen.two_hop.cot and gen.two_hop.repeat == 2 and gen.two_hop.train == 40
    assert not _cfg(["run", "generalization", "--no-two_hop.cot"]).two_hop.cot


@pytest.mark.parametrize("mode", MODES)
def test_printed_config_runs_as_the_default_run(mode, tmp_path, capsys):
    assert main(["config", mode]) == 0
    path = tmp_path / "c.toml"
    path.write_text(capsys.readouterr().out)
    assert RunConfig.load(path).hash() == RunConfig(mode=mode).hash()
    assert _cfg(["run", mode, "--config", str(path)]).hash() == _cfg(["run", mode]).hash() \
        == RunConfig(mode=mode).hash()
    text = path.read_text()
    assert "# Peak learning rate" in text and "# entities = ...  (unset)" in text  # every field, documented


def test_explicit_flags_override_the_config_file_field_by_field(tmp_path, capsys):
    main(["config", "selection", "--training.lr", "0.001", "--model.n_layer", "3", "--alpha", "0.5"])
    path = tmp_path / "c.toml"
    path.write_text(capsys.readouterr().out)
    cfg = _cfg(["run", "selection", "--config", str(path), "--training.lr", "0.002"])
    assert cfg.training.lr == 0.002 and cfg.model.n_layer == 3 and cfg.experts.alpha == 0.5


@pytest.mark.parametrize("mode", MODES)
def test_scale_small_is_exactly_the_default(mode):
    default = _cfg(["run", mode])
    assert _cfg(["run", mode, "--scale", "small"]) == default == RunConfig.for_scale("small", mode)
    assert default.hash() == RunConfig(mode=mode).hash()


def test_scale_sizes_the_whole_run_and_preset_only_the_world():
    tiny = _cfg(["run", "denoising", "--scale", "tiny"])
    assert tiny.hash() == RunConfig.for_scale("tiny").hash()
    assert tiny.world.preset == "tiny" and tiny.model.n_layer == 1 and tiny.training.steps == 40
    world_only = _cfg(["run", "denoising", "--preset", "tiny"])
    assert world_only.world.preset == "tiny" and world_only.model.n_layer == RunConfig().model.n_layer


@pytest.mark.parametrize("argv", [["run", "denoising", "--cov", "0.5"], ["run", "denoising", "--training.l", "1"],
                                  ["run", "denoising", "--alpha", "0.5"],  # a selection field
                                  ["run", "denoising", "--model.n_layer", "two"]])
def test_abbreviated_unknown_or_malformed_flags_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2


def test_nonsense_together_is_warned(capsys):
    assert RunConfig().warnings() == []
    cfg = _cfg(["run", "denoising", "--steps", "60", "--training.warmup_steps", "100"])
    assert any("never reaches its peak" in w for w in cfg.warnings())
    assert main(["config", "denoising", "--steps", "60"]) == 0
    assert "warning: training.warmup_steps (100) >= training.steps (60)" in capsys.readouterr().err


def test_version_and_the_list_of_experiments(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"transcend {__version__}"
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in EXPERIMENTS:
        assert f"{name} {' '.join(get_experiment(name).description.split())}" in out


def test_chess_seed_has_help():
    for verb in ("play", "reproduce"):
        assert _options(build_parser(), "chess", verb)["--seed"].help


def test_single_run_lands_in_the_results_store(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["run", "denoising", "--scale", "tiny", "--training.lr", "0.003", "--model.n_layer", "2",
                 "--experts", "3", "--training.warmup_steps", "40", "--json", "--quiet"])
    assert code == 0
    out, err = capsys.readouterr()
    m = json.loads(out)
    # a nonsensical combination is said before any work (the corpus line is the first stage's), and recorded
    warning = "warning: training.warmup_steps (40) >= training.steps (40)"
    assert warning in err and err.index(warning) < err.index("corpus:")
    assert m["warnings"] and "never reaches its peak" in m["warnings"][0]
    saved = RunConfig.load(Path(m["run_dir"]) / "config.toml")
    assert saved.training.lr == 0.003 and saved.model.n_layer == 2 and saved.experts.experts == 3
    assert main(["results", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("run,1,")  # experiment, runs, rows
    assert main(["results", "--sql", "SELECT value FROM results WHERE experiment = 'run' AND "
                 "metric = 'best_expert_accuracy'", "--csv"]) == 0
    assert float(capsys.readouterr().out.splitlines()[1]) == pytest.approx(m["best_expert_accuracy"])


def test_every_chess_field_is_a_flag_and_config_chess_loads_back(tmp_path, capsys):
    from transcend.chess.config import ChessConfig

    options = _options(build_parser(), "chess", "reproduce")
    for info in config_fields(ChessConfig, instance=ChessConfig()):
        assert f"--{info.path}" in options, info.path
        assert info.doc and info.doc.split(" (default")[0] in options[f"--{info.path}"].help.replace("%%", "%")
    for old in ("--games-per-band", "--steps", "--rated-games", "--full-vocab", "--seed", "--cutoffs"):
        assert old in options  # the spellings from before stay
    flags = ["--scale", "tiny", "--training.lr", "0.001", "--games-per-band", "3", "--cutoffs", "1000,1200",
             "--no-legal_only", "--bands", "novice,club", "--training.warmup_steps", "3"]
    assert main(["config", "chess", *flags]) == 0
    path = tmp_path / "c.toml"
    path.write_text(capsys.readouterr().out)
    want = ChessConfig.for_scale("tiny", games_per_band=3, cutoffs=(1000.0, 1200.0), legal_only=False,
                                 training={**ChessConfig.for_scale("tiny").training.__dict__, "lr": 0.001,
                                           "warmup_steps": 3})
    assert ChessConfig.load(path) == want
    assert main(["config", "chess", "--scale", "tiny"]) == 0
    path.write_text(capsys.readouterr().out)
    assert ChessConfig.load(path) == ChessConfig.for_scale("tiny")
    # the chess verbs read the same flags, over a --config file, with the same validation at construction
    from transcend.chess.cli import config_from_args

    args = build_parser().parse_args(["chess", "generate", "--config", str(path), "--training.steps", "7",
                                      "--full-vocab", "--seed", "3"])
    assert config_from_args(args) == ChessConfig.for_scale("tiny", seed=3, legal_only=False, training={
        **ChessConfig.for_scale("tiny").training.__dict__, "steps": 7})


@pytest.mark.parametrize("flag, message", [(["--cutoffs", "nan"], "cutoffs must be a list of finite numbers"),
                                           (["--players_per_band", "1"], "players_per_band must be at least 2"),
                                           (["--training.lr", "inf"], "training.lr must be a finite number")])
def test_a_bad_chess_flag_is_one_sentence_before_any_work(tmp_path, capsys, flag, message):
    out = tmp_path / "run"
    assert main(["chess", "generate", "--scale", "tiny", *flag, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()
    with pytest.raises(SystemExit) as e:  # not a number at all: argparse, status 2
        build_parser().parse_args(["chess", "generate", "--training.lr", "fast"])
    assert e.value.code == 2
