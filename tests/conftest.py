import os

import pytest

from transcend.experts.denoising import denoising_panel
from transcend.experts.writing import write_paragraphs
from transcend.chess.engine import ENGINE_ENV_VAR, default_engine_path, find_engine
from transcend.world.kg import generate_graph


def pytest_configure(config):
    """Test workers divide the cores as a sweep's workers do (``cpu_threads``): with pytest-xdist's two
    workers on two cores, each trains in one process of one thread, not two processes each."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        from transcend.learner.train import cpu_threads
        torch.set_num_threads(cpu_threads(workers))


@pytest.fixture(scope="session")
def small_kg():
    return generate_graph(300, seed=3)


@pytest.fixture(scope="session")
def small_panel(small_kg):
    return denoising_panel(small_kg, num_experts=5, coverage=0.4, seed=3)


@pytest.fixture(scope="session")
def small_writing(small_panel):
    return write_paragraphs(small_panel, 2000, seed=3)


@pytest.fixture(scope="session")
def stockfish_path() -> str:
    """The Stockfish binary; the test is skipped without one, except in CI, which must have it."""
    path = find_engine()
    if path is None:
        message = f"Stockfish not found at '{default_engine_path()}' (set {ENGINE_ENV_VAR} or install stockfish)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must have it.")
        pytest.skip(message)
    return path
