import pytest

from transcend.experts.denoising import denoising_panel
from transcend.experts.writing import write_paragraphs
from transcend.world.kg import generate_graph


@pytest.fixture(scope="session")
def small_kg():
    return generate_graph(300, seed=3)


@pytest.fixture(scope="session")
def small_panel(small_kg):
    return denoising_panel(small_kg, num_experts=5, coverage=0.4, seed=3)


@pytest.fixture(scope="session")
def small_writing(small_panel):
    return write_paragraphs(small_panel, 2000, seed=3)
