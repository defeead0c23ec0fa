"""Careless and hostile input: strict config types, abbreviated flags, sizes, devices, files, strict JSON."""

import json
import math

import pytest

from transcend.cli import main
from transcend.config import RunConfig
from transcend.errors import TranscendError, strict_json
from transcend.world.triples import load_triples

FAST = ["--preset", "tiny", "--experts", "2", "--paragraphs", "300", "--steps", "5", "--quiet"]


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("flag", [["--cov", "0.9"], ["--step", "7"], ["--para", "10"]])
def test_abbreviated_flags_are_refused_not_ignored(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as e:
        main(["run", "denoising", *FAST, "--out", str(tmp_path / "r"), *flag])
    assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("toml, message", [
    ("[experts]\nexperts = true", "experts.experts must be a whole number, got True"),
    ("[training]\nbatch_size = 1.5", "training.batch_size must be a whole number, got 1.5"),
    ('[experts]\ncoverage = "0.4"', "experts.coverage must be a finite number (or left out), got '0.4'"),
    ("[training]\nlr = inf", "training.lr must be a finite number, got inf"),
    ("[training]\nlr = nan", "training.lr must be a finite number, got nan"),
    ("[corpus]\nparagraphs = 1e3", "corpus.paragraphs must be a whole number"),
    ('[eval]\ntemperatures = [0, "1"]', "eval.temperatures must be a list of finite numbers"),
    ("[two_hop]\ncot = 1", "two_hop.cot must be true or false"),
    ("seed = 18446744073709551616", "seed must be a whole number in [0, 2^64)"),
    ("seed = -1", "seed must be a whole number in [0, 2^64)"),
    ('device = 1', "device must be a string"),
])
def test_wrong_toml_types_are_one_sentence_at_construction(tmp_path, toml, message):
    path = tmp_path / "c.toml"
    mode = 'mode = "generalization"\n' if "two_hop" in toml else ""
    path.write_text(mode + toml + "\n")
    with pytest.raises(TranscendError) as e:
        RunConfig.load(path)
    assert message in str(e.value)


def test_binary_config_and_huge_seed_on_the_command_line(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    code, _, err = _run(["run", "denoising", *FAST, "--config", str(cfg), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "not UTF-8 text" in err and err.count("\n") == 1
    code, _, err = _run(["run", "denoising", *FAST, "--seed", str(2**64), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "seed must be a whole number in [0, 2^64)" in err
    assert not (tmp_path / "r").exists()


def test_diverging_training_stops_with_one_sentence_and_leaves_nothing(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('mode = "denoising"\n[world]\npreset = "tiny"\n[experts]\nexperts = 2\n[corpus]\n'
                   'paragraphs = 300\n[training]\nsteps = 10\nlr = 1e6\nwarmup_steps = 0\n')
    out = tmp_path / "r"
    code, stdout, err = _run(["run", "denoising", "--config", str(cfg), "--quiet", "--json", "--out", str(out)],
                             capsys)
    assert code == 2 and stdout == "" and "training diverged" in err and "training.lr" in err
    assert not out.exists()


def test_json_output_is_strict():
    obj = {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": {"d": 0.5}, "e": "nan"}
    text = strict_json(obj)

    def refuse(token):
        raise ValueError(token)

    assert json.loads(text, parse_constant=refuse) == {"a": None, "b": [1.0, None, None], "c": {"d": 0.5},
                                                       "e": "nan"}


@pytest.mark.parametrize("flag", ["--paragraphs", "--experts"])
def test_sizes_that_cannot_fit_in_memory_are_refused_up_front(tmp_path, capsys, flag):
    args = ["run", "denoising", *FAST, "--out", str(tmp_path / "r"), flag, str(10**15)]
    code, _, err = _run(args, capsys)
    assert code == 2 and "too large for this machine" in err and flag in err
    assert not (tmp_path / "r").exists()


def test_unwritable_out_is_one_sentence(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = _run(["run", "denoising", *FAST, "--out", str(tmp_path / "file" / "r")], capsys)
    assert code == 2 and err.startswith("transcend: error: cannot read or write") and err.count("\n") == 1


def test_cuda_without_a_gpu_is_refused_before_the_world_is_built(tmp_path, capsys, monkeypatch):
    import torch

    import transcend.pipeline as pipeline

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(pipeline, "build_world", lambda cfg: pytest.fail("the world was built"))
    code, _, err = _run(["run", "denoising", *FAST, "--device", "cuda", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "no CUDA GPU" in err and not (tmp_path / "r").exists()


def test_triples_with_bom_header_and_directory(tmp_path):
    lines = "".join(f"Ent{i}\tlikes\tEnt{(i + 1) % 60}\n" for i in range(60))
    plain = tmp_path / "plain.tsv"
    plain.write_text(lines, encoding="utf-8")
    marked = tmp_path / "bom.tsv"
    marked.write_text("\ufeffhead\trelation\ttail\n" + lines, encoding="utf-8")
    a, b = load_triples(plain), load_triples(marked)
    assert b.entity_names == a.entity_names and len(b.entity_names) == 60 and b.num_edges == 60
    assert b.fingerprint() == a.fingerprint()
    with pytest.raises(TranscendError, match="is a directory"):
        load_triples(tmp_path)
