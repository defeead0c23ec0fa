"""Glicko-2 ratings (Mark E. Glickman, "Example of the Glicko-2 system", 2013).

Hand-written on purpose: the algorithm is ~50 lines, and the PyPI packages we found
(``glicko2``, ``glicko2-py``, ``pyglicko2``, ``skelo``, ``skills``) are small,
single-author and unmaintained or brand new, which is no better than code we test
against the paper's worked example ourselves (``tests/test_glicko2.py``).

Two ways to rate a player against opponents with known ratings:

* :func:`update` / :func:`rate_against_fixed` -- one Glicko-2 rating period: the
  paper's steps 1-8, i.e. one Newton step of the log-likelihood around the *prior*
  rating, with the prior deviation inflated by the new volatility.
* :func:`rate_map` -- the same model iterated to the maximum of the posterior
  (Gaussian prior with Glicko-2's inflated deviation x game likelihoods), with the
  deviation from the curvature there. Its first iteration is exactly
  Glicko-2's rating; unlike one Glicko-2 step it stays accurate when a player's
  many games put it far from the prior (e.g. 1,000 games in one period).

Rating scale: Glicko-1 numbers (1500 / 350); internally the Glicko-2 scale
``mu = (r - 1500) / 173.7178``, ``phi = RD / 173.7178``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from transcend.errors import TranscendError

SCALE = 173.7178  # 400 / ln(10): Glicko-1 points per Glicko-2 unit
BASE_RATING = 1500.0
DEFAULT_RD = 350.0
DEFAULT_VOLATILITY = 0.06
DEFAULT_TAU = 0.5  # system constant; Glickman suggests 0.3-1.2
CONVERGENCE_EPSILON = 1e-6  # tolerance of the volatility iteration (the paper's value)
MAX_NEWTON_STEP = 1.0  # rate_map: largest step, in Glicko-2 units


@dataclass(frozen=True)
class Rating:
    """A Glicko-2 rating on the Glicko-1 scale."""

    rating: float = BASE_RATING
    rd: float = DEFAULT_RD
    volatility: float = DEFAULT_VOLATILITY

    def __post_init__(self) -> None:
        if not math.isfinite(self.rating):
            raise TranscendError(f"A rating must be a finite number, got {self.rating!r}.")
        if not (math.isfinite(self.rd) and self.rd > 0):
            raise TranscendError(f"A rating deviation must be a positive number, got {self.rd!r}.")
        if not (math.isfinite(self.volatility) and self.volatility > 0):
            raise TranscendError(f"A volatility must be a positive number, got {self.volatility!r}.")

    def interval(self, z: float = 2.0) -> tuple[float, float]:
        """``(rating - z * RD, rating + z * RD)``; z = 2 is the usual ~95% interval."""
        return (self.rating - z * self.rd, self.rating + z * self.rd)

    @property
    def mu(self) -> float:
        return (self.rating - BASE_RATING) / SCALE

    @property
    def phi(self) -> float:
        return self.rd / SCALE


#: One game from the rated player's side: (opponent, score) with score 1 win, 0.5 draw, 0 loss.
Result = tuple[Rating, float]


def _g(phi: float) -> float:
    return 1.0 / math.sqrt(1.0 + 3.0 * phi * phi / (math.pi * math.pi))


def _expected(mu: float, mu_j: float, g_j: float) -> float:
    # 1 / (1 + exp(-x)) written with tanh, which cannot overflow for large |x|.
    return 0.5 * (1.0 + math.tanh(0.5 * g_j * (mu - mu_j)))


def expected_score(player: Rating, opponent: Rating) -> float:
    """Glicko-2 expected score of ``player`` against ``opponent`` (opponent's RD only)."""
    return _expected(player.mu, opponent.mu, _g(opponent.phi))


def _check_results(results: Sequence[Result]) -> None:
    for opponent, score in results:
        if not isinstance(opponent, Rating):
            raise TranscendError(f"An opponent must be a Rating, got {opponent!r}.")
        if not (0.0 <= score <= 1.0):
            raise TranscendError(f"A game score must be between 0 and 1 (1 win, 0.5 draw, 0 loss), got {score!r}.")


def _new_volatility(phi: float, sigma: float, v: float, delta: float, tau: float, eps: float) -> float:
    """Step 5 of the paper: the Illinois (regula falsi) iteration for ln(sigma'^2)."""
    a = math.log(sigma * sigma)
    phi2 = phi * phi

    def f(x: float) -> float:
        ex = math.exp(x)
        return ex * (delta * delta - phi2 - v - ex) / (2.0 * (phi2 + v + ex) ** 2) - (x - a) / (tau * tau)

    big_a = a
    if delta * delta > phi2 + v:
        big_b = math.log(delta * delta - phi2 - v)
    else:
        k = 1
        while f(a - k * tau) < 0:
            k += 1
        big_b = a - k * tau
    f_a, f_b = f(big_a), f(big_b)
    while abs(big_b - big_a) > eps:
        big_c = big_a + (big_a - big_b) * f_a / (f_b - f_a)
        f_c = f(big_c)
        if f_c * f_b <= 0:
            big_a, f_a = big_b, f_b
        else:
            f_a /= 2.0
        big_b, f_b = big_c, f_c
    return math.exp(big_a / 2.0)


def update(
    player: Rating,
    results: Sequence[Result],
    *,
    tau: float = DEFAULT_TAU,
    epsilon: float = CONVERGENCE_EPSILON,
) -> Rating:
    """The player's rating after one rating period with ``results`` (steps 1-8 of the paper).

    With no games, only the deviation grows: ``RD' = sqrt(phi^2 + sigma^2)`` (scaled).
    Opponents' volatilities are not used.
    """
    if not (math.isfinite(tau) and tau > 0):
        raise TranscendError(f"The Glicko-2 system constant tau must be positive, got {tau!r}.")
    _check_results(results)
    mu, phi, sigma = player.mu, player.phi, player.volatility
    if not results:
        return Rating(player.rating, SCALE * math.sqrt(phi * phi + sigma * sigma), sigma)
    inv_v = 0.0
    sum_g_diff = 0.0
    for opponent, score in results:
        g_j = _g(opponent.phi)
        e_j = _expected(mu, opponent.mu, g_j)
        inv_v += g_j * g_j * e_j * (1.0 - e_j)
        sum_g_diff += g_j * (score - e_j)
    v = 1.0 / inv_v
    delta = v * sum_g_diff
    new_sigma = _new_volatility(phi, sigma, v, delta, tau, epsilon)
    phi_star = math.sqrt(phi * phi + new_sigma * new_sigma)
    new_phi = 1.0 / math.sqrt(1.0 / (phi_star * phi_star) + 1.0 / v)
    new_mu = mu + new_phi * new_phi * sum_g_diff
    return Rating(BASE_RATING + SCALE * new_mu, SCALE * new_phi, new_sigma)


def _as_results(games: Iterable[tuple[float, float, float]]) -> list[Result]:
    out: list[Result] = []
    for item in games:
        try:
            opp_rating, opp_rd, score = item
        except (TypeError, ValueError) as exc:
            raise TranscendError(f"Each game must be (opponent rating, opponent RD, score), got {item!r}.") from exc
        out.append((Rating(float(opp_rating), float(opp_rd)), float(score)))
    return out


def rate_against_fixed(
    games: Iterable[tuple[float, float, float]],
    *,
    prior: Rating | None = None,
    tau: float = DEFAULT_TAU,
) -> Rating:
    """Glicko-2 rating from ``(opponent rating, opponent RD, score)`` triples, one rating period.

    ``prior`` defaults to an unrated player (1500 / 350 / 0.06).
    """
    return update(prior or Rating(), _as_results(games), tau=tau)


def rate_map(
    games: Iterable[tuple[float, float, float]],
    *,
    prior: Rating | None = None,
    tau: float = DEFAULT_TAU,
    max_iterations: int = 100,
    tolerance: float = 1e-10,
) -> Rating:
    """Posterior-mode rating from ``(opponent rating, opponent RD, score)`` triples.

    Prior: Normal(mu0, phi*^2) where phi* is the prior deviation inflated by the
    volatility that Glicko-2 would give for these games (so ``max_iterations=1``
    reproduces :func:`rate_against_fixed`). Newton's method on the log-posterior,
    which is strictly concave, so the mode is unique and exists even for all-win or
    all-loss records (steps are capped at one Glicko-2 unit, so a result far from the
    prior takes a few more iterations). RD is ``1 / sqrt(curvature)`` at the mode; the volatility is
    Glicko-2's.
    """
    prior = prior or Rating()
    results = _as_results(games)
    glicko = update(prior, results, tau=tau)
    if not results:
        return glicko
    phi_star2 = prior.phi**2 + glicko.volatility**2
    mu0 = prior.mu
    mu = mu0
    terms = [(_g(opp.phi), opp.mu, score) for opp, score in results]
    curvature = 1.0 / phi_star2
    for _ in range(max_iterations):
        grad = -(mu - mu0) / phi_star2
        curvature = 1.0 / phi_star2
        for g_j, mu_j, score in terms:
            e_j = _expected(mu, mu_j, g_j)
            grad += g_j * (score - e_j)
            curvature += g_j * g_j * e_j * (1.0 - e_j)
        # Newton step, capped at one Glicko-2 unit (~174 points) so that a long record
        # far from the prior cannot overshoot; the log-posterior is concave, so this converges.
        step = max(-MAX_NEWTON_STEP, min(MAX_NEWTON_STEP, grad / curvature))
        mu += step
        if abs(step) < tolerance:
            break
    curvature = 1.0 / phi_star2 + sum(
        g_j * g_j * _expected(mu, mu_j, g_j) * (1.0 - _expected(mu, mu_j, g_j)) for g_j, mu_j, _ in terms
    )
    return Rating(BASE_RATING + SCALE * mu, SCALE / math.sqrt(curvature), glicko.volatility)
