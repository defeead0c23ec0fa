"""Sweeps on a real Ray head (``ray start --head``, started in another working directory, token auth on),
not only the in-process instance: paths resolved before dispatch, the token found, dead addresses fail fast."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]  # one Ray at a time under xdist
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head of its own (own temp dir, own HOME for its token, own port) started in another folder;
    stopped at the end by killing exactly its processes (``ray stop`` would stop every Ray on the machine)."""
    pytest.importorskip("ray")
    base = Path(tempfile.mkdtemp(prefix="trh"))  # short: Ray's socket paths must stay under 108 bytes
    home, head_cwd, temp = base / "home", base / "head", base / "t"
    for d in (home, head_cwd, temp):
        d.mkdir()
    port = _free_port()
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    env.pop("RAY_AUTH_MODE", None)
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # A token in the head's HOME: `ray start --head` then requires token authentication, as on a user's machine.
    subprocess.run([ray_cli, "get-auth-token", "--generate"], env=env, capture_output=True, timeout=120, check=True)
    assert (home / ".ray" / "auth_token").is_file()
    start = subprocess.run([ray_cli, "start", "--head", "--port", str(port), "--num-cpus", "1",
                            "--include-dashboard", "false", "--temp-dir", str(temp), "--disable-usage-stats"],
                           cwd=head_cwd, env=env, capture_output=True, text=True, timeout=180)
    try:
        assert start.returncode == 0, start.stderr[-2000:]
        yield {"address": f"127.0.0.1:{port}", "home": home, "head_cwd": head_cwd, "base": base}
    finally:
        for pid in _processes_mentioning(str(temp)) + _processes_mentioning(f"127.0.0.1:{port}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["rm", "-rf", str(base)], check=False)


def _transcend(args, cwd, home, timeout=600):
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    env.pop("RAY_AUTH_MODE", None)
    return subprocess.run([sys.executable, "-m", "transcend.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_a_sweep_on_a_head_started_elsewhere_writes_under_the_relative_root(ray_head, tmp_path):
    proc = _transcend(["reproduce", "temperature", "--scale", "tiny", "--seeds", "1", "--ray", ray_head["address"],
                       "--root", "runs/x", "--quiet"], tmp_path, ray_head["home"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(3 ran, 0 already finished, 0 failed)" in proc.stdout
    assert len(list((tmp_path / "runs" / "x" / "temperature").glob("*/results.parquet"))) == 3
    assert not (ray_head["head_cwd"] / "runs").exists()  # nothing written where the head was started


def test_a_head_with_token_auth_and_no_token_is_one_sentence(ray_head, tmp_path):
    empty_home = tmp_path / "home"
    empty_home.mkdir()
    proc = _transcend(["reproduce", "temperature", "--scale", "tiny", "--ray", ray_head["address"],
                       "--root", "runs/x", "--quiet"], tmp_path, empty_home, timeout=120)
    assert proc.returncode == 2 and "RAY_AUTH_TOKEN" in proc.stderr and "Traceback" not in proc.stderr


def test_a_dead_ray_address_fails_in_one_sentence(tmp_path):
    port = _free_port()  # nothing listens there
    proc = _transcend(["reproduce", "temperature", "--scale", "tiny", "--ray", f"127.0.0.1:{port}",
                       "--root", "runs/x"], tmp_path, tmp_path, timeout=30)  # a hang fails the test
    assert proc.returncode == 2 and "cannot reach a Ray head" in proc.stderr
    assert proc.stderr.count("\n") == 1
