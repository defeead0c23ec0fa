"""Glicko-2: Glickman's worked example, monotonicity, edge cases, and the MAP fit."""

from __future__ import annotations

import math

import pytest

from transcend.errors import TranscendError
from transcend.chess.glicko2 import (
    Rating,
    expected_score,
    rate_against_fixed,
    rate_map,
    update,
)

PAPER_PLAYER = Rating(1500, 200, 0.06)
PAPER_GAMES = [(1400, 30, 1.0), (1550, 100, 0.0), (1700, 300, 0.0)]


def test_glickman_worked_example() -> None:
    # "Example of the Glicko-2 system" (Glickman 2013): r' = 1464.06, RD' = 151.52, sigma' = 0.05999.
    new = rate_against_fixed(PAPER_GAMES, prior=PAPER_PLAYER, tau=0.5)
    assert new.rating == pytest.approx(1464.06, abs=0.01)
    assert new.rd == pytest.approx(151.52, abs=0.01)
    assert new.volatility == pytest.approx(0.05999, abs=1e-5)


def test_update_matches_helper() -> None:
    results = [(Rating(r, rd), s) for r, rd, s in PAPER_GAMES]
    assert update(PAPER_PLAYER, results) == rate_against_fixed(PAPER_GAMES, prior=PAPER_PLAYER)


def test_no_games_only_inflates_rd() -> None:
    new = update(PAPER_PLAYER, [])
    assert new.rating == PAPER_PLAYER.rating
    assert new.volatility == PAPER_PLAYER.volatility
    assert new.rd == pytest.approx(173.7178 * math.sqrt((200 / 173.7178) ** 2 + 0.06**2))
    assert rate_map([], prior=PAPER_PLAYER) == new


@pytest.mark.parametrize("score", [0.0, 0.5, 1.0])
def test_rating_monotone_in_score_and_opponent(score: float) -> None:
    base = rate_against_fixed([(1600, 80, score)] * 5).rating
    better = rate_against_fixed([(1600, 80, min(1.0, score + 0.25))] * 5).rating
    stronger_opp = rate_against_fixed([(1800, 80, score)] * 5).rating
    if score < 1.0:
        assert better > base
    assert stronger_opp > base  # the same score against a stronger field is worth more


def test_games_shrink_rd_and_draws_against_equal_keep_rating() -> None:
    few = rate_against_fixed([(1500, 50, 0.5)] * 2)
    many = rate_against_fixed([(1500, 50, 0.5)] * 40)
    assert many.rd < few.rd < 350
    assert many.rating == pytest.approx(1500.0)
    lo, hi = many.interval()
    assert hi - lo == pytest.approx(4 * many.rd)


def test_expected_score_symmetry() -> None:
    a, b = Rating(1700, 60), Rating(1500, 60)
    assert expected_score(a, b) == pytest.approx(1 - expected_score(b, a))
    assert expected_score(a, b) > 0.5


def test_map_first_iteration_is_glicko2_and_fixes_long_records() -> None:
    one_step = rate_map(PAPER_GAMES, prior=PAPER_PLAYER, max_iterations=1)
    assert one_step.rating == pytest.approx(rate_against_fixed(PAPER_GAMES, prior=PAPER_PLAYER).rating)
    # 60% against a 2000 field over 500 games: the logistic model says ~2000 + 70.
    games = [(2000, 50, 1.0)] * 300 + [(2000, 50, 0.0)] * 200
    fit = rate_map(games)
    assert fit.rating == pytest.approx(2000 + 400 * math.log10(1.5), abs=10)
    assert fit.rd < 30
    # A single Glicko-2 step from 1500 overshoots wildly here; that is why rate_map exists.
    assert abs(rate_against_fixed(games).rating - fit.rating) > 500


def test_map_all_wins_is_finite_and_above_field() -> None:
    fit = rate_map([(1800, 50, 1.0)] * 30)
    assert math.isfinite(fit.rating) and fit.rating > 1800


@pytest.mark.parametrize(
    "games",
    [[(1500, 50, 1.5)], [(1500, 50, -0.1)], [(1500, 0, 1.0)], [(1500, 50)], [(float("nan"), 50, 1.0)]],
)
def test_bad_input_is_a_transcend_error(games: list) -> None:
    with pytest.raises(TranscendError):
        rate_against_fixed(games)


def test_bad_tau_and_rating() -> None:
    with pytest.raises(TranscendError):
        rate_against_fixed(PAPER_GAMES, tau=0.0)
    with pytest.raises(TranscendError):
        Rating(1500, -1)
