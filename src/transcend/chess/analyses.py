"""Chess analyses: move-prediction diagnostics, the favor analysis, and action entropy.

* **Move prediction** on held-out positions (positions of held-out games that never occur
  in the training games, so a held-out position was never trained on): top-1 agreement of
  the model's arg-max with the mixture's mode (what the low-τ model should play), with the
  move actually played, the cross-entropy H(f̄, model) against the mixture's own entropy
  H(f̄) (their gap is KL(f̄ || model) -- zero for the ideal learner), and the share of the
  model's probability on illegal moves when it samples the whole vocabulary at τ = 1.
* **Favor** (Transcendence paper, §5): at positions from the model's own games, the
  engine's win probability of the move the model plays at low τ minus at τ = 1, as exact
  expectations over the model's move distributions (no sampling noise):
  ``favor(x) = Σ_y p_τ(y|x) w(y|x) − Σ_y p_1(y|x) w(y|x)``. Reported: mean with a
  bootstrap 95% interval, quantiles, and the distribution (positive mean with a long
  right tail = a few positions where denoising gains a lot).
* **Action entropy** of a cutoff's data over common opening states: the entropy of the
  mixture f̄ at each state, divided by log(number of legal moves) (1 = uniform), averaged
  over the same states for every cutoff: the *opening states* (:func:`opening_states`),
  positions among the first chosen plies of a game that are in every cutoff's corpus.
  Using the exact mixture (players' policies are known) instead of move counts makes
  cutoffs with different amounts of data comparable, and it is why a state need not
  repeat: the paper counts moves at states that many games reach, which simulated games
  after random opening plies rarely do (:func:`common_states` gives those).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import chess
import numpy as np

from transcend.chess.ideal import Mixture, entropy
from transcend.chess.policy import ChessPolicy, predict_logits, tempered
from transcend.chess.corpus import N_INPUT_TOKENS, MoveCorpus, encode_board, legal_tokens, token_move
from transcend.chess.players import MoveScorer


def bootstrap_mean_ci(values: np.ndarray, seed: int, n: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng([seed, 0xB007])
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def _legal_probs(logits: np.ndarray, tokens: np.ndarray, tau: float) -> np.ndarray:
    return tempered(logits[tokens - N_INPUT_TOKENS], tau)


def move_prediction(model: ChessPolicy, heldout: MoveCorpus, mixture: Mixture, max_positions: int = 2000,
                    seed: int = 0) -> dict:
    """Held-out diagnostics of how well the model learnt the mixture (see module doc)."""
    rng = np.random.default_rng([seed, 0xD1A6])
    rows = np.arange(len(heldout))
    if len(rows) > max_positions:
        rows = np.sort(rng.choice(rows, size=max_positions, replace=False))
    sub = heldout.subset(rows)
    logits = predict_logits(model, sub.inputs, draws=sub.draw_mask(np.arange(len(sub))))
    agree_plurality = agree_played = 0
    ce_model = ce_self = illegal_mass = 0.0
    full = tempered(logits, 1.0)  # whole-vocabulary sampling at τ = 1
    for i in range(len(sub)):
        board = chess.Board(sub.fens[i])
        tokens = np.asarray(legal_tokens(board))
        p_model = _legal_probs(logits[i], tokens, 1.0)
        illegal_mass += 1.0 - float(full[i, tokens - N_INPUT_TOKENS].sum())
        ucis, f = mixture.distribution(board)
        by_uci = dict(zip(ucis, f, strict=True))
        f_tok = np.array([by_uci[token_move(board, int(t)).uci()] for t in tokens])
        agree_plurality += int(np.argmax(p_model) == np.argmax(f_tok))
        agree_played += int(tokens[np.argmax(p_model)] == sub.targets[i])
        ce_model += float(-(f_tok * np.log(p_model + 1e-12)).sum())
        ce_self += entropy(f_tok)
    n = max(1, len(sub))
    return {"positions": int(len(sub)), "top1_vs_plurality": agree_plurality / n, "top1_vs_played": agree_played / n,
            "cross_entropy_vs_mixture": ce_model / n, "mixture_entropy": ce_self / n,
            "kl_mixture_model": (ce_model - ce_self) / n, "illegal_mass_full_vocab": illegal_mass / n}


def favor(model: ChessPolicy, fens: Sequence[str], scorer: MoveScorer, tau_low: float, seed: int = 0) -> dict:
    """Favor of sampling at ``tau_low`` over τ = 1 at ``fens`` (see module doc)."""
    values = []
    if fens:
        inputs = np.stack([encode_board(chess.Board(f)) for f in fens])
        logits = predict_logits(model, inputs)
    for i, fen in enumerate(fens):
        board = chess.Board(fen)
        tokens = np.asarray(legal_tokens(board))
        wp = scorer.winprobs(board)
        w = np.array([wp[token_move(board, int(t)).uci()] for t in tokens])
        low = _legal_probs(logits[i], tokens, tau_low)
        one = _legal_probs(logits[i], tokens, 1.0)
        values.append(float(low @ w - one @ w))
    v = np.asarray(values)
    lo, hi = bootstrap_mean_ci(v, seed)
    q = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95, 0.99]).tolist() if len(v) else []
    return {"positions": len(v), "mean": float(v.mean()) if len(v) else float("nan"), "ci95": [lo, hi],
            "quantiles": dict(zip(["q05", "q25", "q50", "q75", "q95", "q99"], q, strict=True)),
            "share_positive": float((v > 0).mean()) if len(v) else float("nan"),
            "skewness": float(((v - v.mean()) ** 3).mean() / (v.std() ** 3 + 1e-12)) if len(v) > 2 else float("nan"),
            "values": v.tolist()}


def common_states(corpora: Sequence[MoveCorpus], min_count: int) -> list[str]:
    """Position keys occurring at least ``min_count`` times over all corpora, most frequent first."""
    counts: Counter[str] = Counter()
    for c in corpora:
        counts.update(c.fens.tolist())
    return [s for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]


def opening_states(corpora: Sequence[MoveCorpus], plies: int, max_states: int, seed: int = 0) -> list[str]:
    """Positions among the first ``plies`` chosen moves of a game that occur in every corpus.

    At most ``max_states`` of them, a seeded draw, in a fixed order.
    """
    per_corpus = []
    for c in corpora:
        keep: set[str] = set()
        seen: Counter[int] = Counter()
        for fen, game in zip(c.fens.tolist(), c.games.tolist(), strict=True):
            if seen[game] < plies:
                keep.add(fen)
            seen[game] += 1
        per_corpus.append(keep)
    states = sorted(set.intersection(*per_corpus)) if per_corpus else []
    if len(states) > max_states:
        rng = np.random.default_rng([seed, 0xE7])
        states = [states[i] for i in sorted(rng.choice(len(states), size=max_states, replace=False))]
    return states


def visited_state_entropy(corpus: MoveCorpus, min_visits: int) -> dict:
    """The paper's action entropy: at every state ``corpus`` visits at least ``min_visits`` times, the
    entropy of the moves played there divided by log(number of legal moves), averaged over those states.

    Counted from the data (not from the players' known policies), over each corpus's own frequent
    states, as Zhang et al. (2024) measure their datasets.
    """
    by_state: dict[str, Counter[int]] = {}
    legal: dict[str, int] = {}
    for i, (fen, target) in enumerate(zip(corpus.fens.tolist(), corpus.targets.tolist(), strict=True)):
        by_state.setdefault(fen, Counter())[target] += 1
        legal[fen] = int(corpus.legal_offsets[i + 1] - corpus.legal_offsets[i])
    values, visits = [], []
    for fen, moves in by_state.items():
        n = sum(moves.values())
        if n < min_visits or legal[fen] < 2:
            continue
        p = np.array(list(moves.values()), dtype=np.float64) / n
        values.append(entropy(p) / np.log(legal[fen]))
        visits.append(n)
    v = np.asarray(values)
    return {"states": len(v), "min_visits": int(min_visits), "visits": int(sum(visits)),
            "normalised_entropy": float(v.mean()) if len(v) else float("nan"),
            "sd": float(v.std()) if len(v) else float("nan")}


def action_entropy(mixture: Mixture, states: Sequence[str]) -> dict:
    """Mean normalised entropy of f̄ over ``states`` (positions with at least two legal moves)."""
    values = []
    for fen in states:
        board = chess.Board(fen)
        n_legal = board.legal_moves.count()
        if n_legal < 2:
            continue
        _, f = mixture.distribution(board)
        values.append(entropy(f) / np.log(n_legal))
    v = np.asarray(values)
    return {"states": len(v), "normalised_entropy": float(v.mean()) if len(v) else float("nan"),
            "sd": float(v.std()) if len(v) else float("nan")}
