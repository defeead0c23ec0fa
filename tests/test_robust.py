"""Careless and hostile input: strict config types, abbreviated flags, sizes, devices, files, strict JSON."""

import json
import math

import pytest

from transcend.cli import main
from transcend.config import RunConfig
from transcend.errors import TranscendError, strict_json
from transcend.world.triples import load_triples

FAST = ["--preset", "tiny", "--experts", "2", "--paragraphs", "300", "--steps", "5", "--training.warmup_steps", "1",
        "--quiet"]


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
                   'paragraphs = 300\n[training]\nsteps = 10\nlr = 1e6\nmuon_lr = 1e6\nwarmup_steps = 0\n')
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


# --- run identity, locks, self-healing ---------------------------------------------------------------------------

def _graph(path, n):
    path.write_text("".join(f"E{i}\tr{i % 3}\tE{(i * 7 + 1) % n}\n" for i in range(n)))


def test_an_edited_graph_is_another_run_and_its_old_folder_refuses(tmp_path, capsys):
    g = tmp_path / "g.tsv"
    _graph(g, 80)
    args = ["run", "denoising", *FAST, "--triples", str(g), "--json", "--out", str(tmp_path / "r")]
    assert _run(args, capsys)[0] == 0
    before = RunConfig.from_dict({"world": {"triples": str(g)}}).hash()
    _graph(g, 120)
    assert RunConfig.from_dict({"world": {"triples": str(g)}}).hash() != before  # the default --out moves
    code, stdout, err = _run(args, capsys)
    assert code == 2 and stdout == "" and "world.triples_sha256" in err and err.count("\n") == 1
    code, _, err = _run([*args, "--resume"], capsys)
    assert code == 2 and "world.triples_sha256" in err


def test_a_config_edited_inside_a_finished_run_folder_is_detected(tmp_path, capsys):
    out = tmp_path / "r"
    assert _run(["run", "denoising", *FAST, "--out", str(out)], capsys)[0] == 0
    cfg = out / "config.toml"
    cfg.write_text(cfg.read_text().replace("coverage = 0.4", "coverage = 0.9"))
    code, stdout, err = _run(["run", "denoising", "--config", str(cfg), "--out", str(out), "--quiet"], capsys)
    assert code == 2 and stdout == "" and "experts.coverage = 0.4 (now 0.9)" in err


def test_two_identical_runs_into_one_folder_give_one_result(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "transcend.cli", "run", "denoising", *FAST, "--json", "--out", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert not any("Traceback" in err for _, err in results)
    assert json.loads(results[0][0]) == json.loads(results[1][0])
    assert sum("reusing" in err for _, err in results) == 1
    for name in ("config.toml", "identity.json", "metrics.json", "corpus/manifest.json", "checkpoints/latest.pt"):
        assert (out / name).is_file(), name


@pytest.mark.parametrize("damage", ["corpus/writing.npz", "corpus/tokens_000.npy"])
def test_a_deleted_or_corrupt_corpus_file_of_an_unfinished_run_is_rebuilt(tmp_path, capsys, damage):
    from transcend.cli import build_parser, config_from_args
    from transcend.pipeline import run

    out = tmp_path / "r"
    args = ["run", "denoising", *FAST, "--steps", "6", "--out", str(out)]
    parsed = build_parser().parse_args(args)
    cfg = config_from_args(parsed, "denoising")
    cfg.training.checkpoint_every = 3
    with pytest.raises(KeyboardInterrupt):
        run(cfg, out, progress=False, stop_after=3, log=lambda m: None)
    before = (out / damage).read_bytes()
    if damage.endswith(".npz"):
        (out / damage).unlink()
    else:
        (out / damage).write_bytes(before[:-8] + b"garbage!")
    lines = []
    run(cfg, out, resume=True, progress=False, log=lines.append)
    assert sum(line.startswith("rebuilding corpus") for line in lines) == 1
    assert (out / damage).read_bytes() == before  # the corpus is deterministic
    assert (out / "metrics.json").is_file()


def test_results_sql_is_sandboxed_and_names_are_quoted(tmp_path, capsys):
    from transcend.results.store import quote_literal, write_results

    write_results(tmp_path / "a", [{"run_id": "x", "experiment": "it's", "metric": "m", "value": 1.0}])
    write_results(tmp_path / "b", [{"run_id": "y", "experiment": "e", "metric": "m", "value": 2.0}])
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "results.parquet").write_bytes(b"PAR1 not really")
    sql = f"SELECT sum(value) AS s FROM results WHERE experiment = {quote_literal(chr(39).join(['it', 's']))}"
    code, out, err = _run(["results", "--root", str(tmp_path), "--sql", sql], capsys)
    assert code == 0 and out.split() == ["s", "1"] and "skipping damaged" in err and "c/results.parquet" in err
    for hostile in ["select * from read_csv('/etc/hostname')", f"COPY results TO '{tmp_path}/x.csv'",
                    f"ATTACH '{tmp_path}/x.duckdb'", "SET enable_external_access = true"]:
        code, _, err = _run(["results", "--root", str(tmp_path), "--sql", hostile], capsys)
        assert code == 2 and err.count("transcend: error:") == 1, hostile
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.duckdb").exists()
    code, _, err = _run(["results", "--root", str(tmp_path), "--sql", "-- only a comment"], capsys)
    assert code == 2 and "no statement" in err


def test_a_second_sweep_of_the_same_experiment_is_refused(tmp_path):
    from transcend.experiments.registry import get_experiment
    from transcend.experiments.runner import run_experiment
    import subprocess
    import sys

    lock = tmp_path / "temperature" / ".lock"
    lock.parent.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode())\n"
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TranscendError, match=rf"experiment temperature under .* is in use by another process "
                                                 rf"\(pid {holder.pid}\)"):
            run_experiment(get_experiment("temperature", "tiny"), tmp_path, progress=False, log=lambda m: None)
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "temperature" / "experiment.json").exists()


def test_a_damaged_experiment_json_is_one_sentence(tmp_path, capsys):
    (tmp_path / "coverage").mkdir()
    (tmp_path / "coverage" / "experiment.json").write_text("{not json")
    code, _, err = _run(["report", "coverage", "--root", str(tmp_path)], capsys)
    assert code == 2 and "experiment.json is damaged" in err


# --- chess input ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("d, message", [
    ({"games_per_band": 1.5}, "games_per_band must be a whole number, got 1.5"),
    ({"legal_only": 1}, "legal_only must be true or false"),
    ({"rated_games": True}, "rated_games must be a whole number, got True"),
    ({"temperatures": [0.1, "x"]}, "temperatures must be a list of finite numbers"),
    ({"training": {"lr": math.nan}}, "training.lr must be a finite number"),
    ({"training": {"nope": 1}}, "unknown field(s) nope in [training]"),
])
def test_chess_config_types_are_strict(d, message):
    from transcend.chess.config import ChessConfig

    with pytest.raises(TranscendError) as e:
        ChessConfig.from_dict(d)
    assert message in str(e.value)


@pytest.mark.parametrize("start, message", [
    (["--fen", ""], "is not a valid FEN"),
    (["--fen", "7k/6Q1/6K1/8/8/8/8/8 b - - 0 1"], "already over (checkmate)"),
    (["--fen", "7k/5Q2/6K1/8/8/8/8/8 b - - 0 1"], "already over (stalemate)"),
    (["--pgn", "mated.pgn"], "already over (checkmate)"),
])
def test_chess_play_refuses_empty_or_finished_starts(tmp_path, capsys, monkeypatch, start, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mated.pgn").write_text('[Result "1-0"]\n\n1. e4 e5 2. Bc4 Nc6 3. Qh5 Nf6 4. Qxf7# 1-0\n')
    code, stdout, err = _run(["chess", "play", *start], capsys)
    assert code == 2 and message in err and stdout == ""


def test_a_knowledge_graph_checkpoint_is_not_a_chess_player(tmp_path, capsys):
    import torch

    from transcend.learner.model import GPT, GPTConfig
    from transcend.learner.train import save_checkpoint

    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16))
    path = tmp_path / "latest.pt"
    save_checkpoint(path, model, [torch.optim.AdamW(model.parameters())], 1, [1.0])
    code, stdout, err = _run(["chess", "play", "--white", f"model:{path}"], capsys)
    assert code == 2 and "is not a chess move model" in err and stdout == ""


def test_players_that_need_no_engine_play_without_one(tmp_path, capsys):
    """Random against random opens no engine: the game is played where no Stockfish exists; a Stockfish
    player still needs one, and says so in one sentence."""
    missing = str(tmp_path / "no-stockfish")
    code, stdout, err = _run(["chess", "play", "--white", "random", "--black", "random", "--engine", missing,
                              "--json"], capsys)
    assert code == 0 and err == ""
    game = json.loads(stdout)
    assert game["white"] == "random" and len(game["moves"]) > 0
    code, stdout, err = _run(["chess", "play", "--white", "stockfish:1:10", "--black", "random", "--engine",
                              missing], capsys)
    assert code == 2 and "no-stockfish" in err and stdout == ""


def test_a_port_that_accepts_but_never_answers_as_a_ray_head_is_one_sentence(tmp_path, capsys, monkeypatch):
    """TCP connects (the kernel accepts into the backlog) but nothing speaks: Ray would retry for minutes."""
    import socket

    pytest.importorskip("grpc")
    from transcend.experiments import runner

    monkeypatch.setattr(runner, "RAY_CONNECT_TIMEOUT_S", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        code, stdout, err = _run(["reproduce", "temperature", "--scale", "tiny", "--ray", address,
                                  "--root", str(tmp_path / "runs"), "--quiet"], capsys)
    assert code == 2 and stdout == "" and f"something listens at {address} but does not answer as a Ray head" in err
    assert err.count("\n") == 1 and not (tmp_path / "runs").exists()


def test_code_digest_follows_what_the_code_does_not_its_comments(tmp_path):
    from transcend.config import source_digest

    f = tmp_path / "m.py"
    f.write_text('"""A module."""\ndef f(x):\n    """Doc."""\n    return x + 1  # one more\n')
    before = source_digest({"m.py": f})
    f.write_text('"""Reworded."""\n\n\ndef f(x):\n    # a new comment\n    return x + 1\n')
    assert source_digest({"m.py": f}) == before
    f.write_text('def f(x):\n    return x + 2\n')
    assert source_digest({"m.py": f}) != before


def test_a_run_folder_made_by_other_learner_code_is_refused_naming_it(tmp_path, capsys, monkeypatch):
    """A checkpoint from before a model/optimizer change: one sentence before any work, not 'another model shape'."""
    from transcend import config, pipeline

    from transcend.cli import build_parser, config_from_args

    out = tmp_path / "r"
    args = ["run", "denoising", *FAST, "--training.checkpoint_every", "2", "--out", str(out)]
    cfg = config_from_args(build_parser().parse_args(args), "denoising")
    with pytest.raises(KeyboardInterrupt):  # stopped after its first checkpoint: an unfinished run
        pipeline.run(cfg, out, progress=False, stop_after=2, log=lambda m: None)
    recorded = json.loads((out / "identity.json").read_text())["identity"]["code"]
    assert recorded == config.code_identity() and set(recorded) == {"transcend", "corpus", "learner", "evaluate"}
    before = cfg.hash()
    real = config.code_digest
    monkeypatch.setattr(config, "code_digest", lambda g: "0" * 12 if g == "learner" else real(g))
    assert cfg.hash() != before  # other code, another run: the default --out moves
    for extra in ([], ["--resume"]):
        code, stdout, err = _run([*args, *extra], capsys)
        assert code == 2 and stdout == "" and err.count("\n") == 1
        assert f"made by other transcend code (learner: code.learner = '{recorded['learner']}' (now '000000000000'))" \
            in err and "model shape" not in err
    # a folder from before the code was recorded says so
    identity = json.loads((out / "identity.json").read_text())
    del identity["identity"]["code"]
    (out / "identity.json").write_text(json.dumps(identity))
    code, _, err = _run([*args, "--resume"], capsys)
    assert code == 2 and "made by a transcend that did not record its code" in err
    # the corpus stage's hash covers the corpus code only: other learner code keeps the corpus cache key
    assert cfg.stage_hash(*pipeline.CORPUS_SECTIONS) == json.loads(
        (out / "corpus" / "manifest.json").read_text())["config_hash"]


def test_cached_areas_of_expertise_are_keyed_by_the_code_that_clusters(monkeypatch):
    from transcend import config
    from transcend.experts.selection import areas_file_name
    from transcend.world.kg import generate_graph

    kg = generate_graph(60, 0)
    before = areas_file_name(kg, 4, 0)
    assert config.code_digest("corpus") in before
    monkeypatch.setattr(config, "code_digest", lambda g: "0" * 12)
    assert areas_file_name(kg, 4, 0) != before
