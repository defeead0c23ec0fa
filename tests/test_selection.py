"""Skill selection: specialist experts, their writing, the selection covariance, the CLI and bad input."""

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

from transcend.cli import main
from transcend.config import RunConfig
from transcend.errors import TranscendError
from transcend.evaluate.experts_eval import expert_accuracy
from transcend.evaluate.ideal import ideal_accuracy
from transcend.evaluate.selection import (known_correctly, relation_prior_greedy, selection_covariance,
                                          selection_metrics, writer_shares)
from transcend.experts import selection as selection_mod
from transcend.experts.denoising import denoising_panel
from transcend.experts.panel import ExpertPanel
from transcend.experts.selection import (areas_file_name, default_num_clusters, load_or_cluster,
                                         selection_panel)
from transcend.experts.writing import Writing, write_paragraphs
from transcend.theory import majority_vote_accuracy, selection_ceiling, selection_vote_accuracy
from transcend.world.kg import KnowledgeGraph, Relation, generate_graph

TINY = ["--preset", "tiny", "--paragraphs", "3000", "--steps", "80", "--quiet"]


@pytest.fixture(scope="module")
def kg():
    return generate_graph(300, seed=5)


@pytest.fixture(scope="module")
def panels(kg):
    return {a: selection_panel(kg, 20, 0.2, a, None, seed=5) for a in (0.0, 0.5, 0.8, 1.0)}


# --- the panel ---------------------------------------------------------------------------------


def test_default_clusters_scale_like_the_paper():
    assert default_num_clusters(54_500) == 5000
    assert default_num_clusters(2164) == 199
    assert default_num_clusters(5) == 1 and default_num_clusters(1) == 1


def test_each_expert_covers_c_of_the_edges(kg, panels):
    p = panels[1.0]
    sizes = np.bincount(p.areas, minlength=p.num_clusters)
    assert p.num_clusters == default_num_clusters(kg.num_edges)
    assert np.allclose(p.skills @ sizes, 0.2 * kg.num_edges)  # exactly, per expert
    assert (((p.skills > 0) & (p.skills < 1)).sum(axis=1) <= 1).all()  # the LP's vertex: 0/1 but one
    correct = np.bincount(p.expert, weights=p.correct, minlength=20) / kg.num_edges
    # Known with probability s: the share correct is c per expert, plus the corruptions that hit another
    # true fact by chance (a head swapped for another entity with the same hub tail). That chance is
    # measured by experts who know nothing (coverage 0), and must stay a small correction.
    chance = denoising_panel(kg, 20, 0.0, seed=5).correct.mean()
    assert chance < 0.15
    expected = 0.2 + 0.8 * chance
    assert np.all(np.abs(correct - expected) <= 0.04), (correct, expected)
    # Specialists: experts know different clusters.
    overlap = (p.skills[:, None, :] * p.skills[None, :, :] * sizes).sum(axis=2) / (0.2 * kg.num_edges)
    assert overlap[~np.eye(20, dtype=bool)].mean() < 0.35


def test_write_probability_is_alpha_s_plus_one_minus_alpha(panels):
    for alpha, p in panels.items():
        allowed = {1.0, round(1.0 - alpha, 12)}
        strays = ~np.isin(np.round(p.write_prob, 12), list(allowed))
        largest = np.bincount(p.areas).max()
        assert np.bincount(p.expert[strays], minlength=20).max() <= largest  # only the one fractional cluster
        if alpha == 1.0:
            # Experts write only what they know: every written belief is a fact, every non-written one
            # comes from a cluster outside their expertise (and is corrupted, but for chance hits).
            assert p.correct[p.write_prob == 1.0].all()
            assert p.correct[p.write_prob == 0.0].mean() < 0.1


def test_alpha_zero_writes_uniformly_like_denoising(kg, panels):
    p = panels[0.0]
    assert np.all(p.write_prob == 1.0)
    w = write_paragraphs(p, 2000, seed=1)
    # Every paragraph holds all of the expert's facts about its entity, as in denoising.
    held = np.bincount(p.expert.astype(np.int64) * kg.num_entities + p.heads,
                       minlength=20 * kg.num_entities)
    per_para = np.bincount(w.sent_para, minlength=w.num_paragraphs)
    assert np.array_equal(per_para, held[w.para_expert.astype(np.int64) * kg.num_entities + w.para_head])
    # The same beliefs written through the denoising path give the same bytes.
    as_denoising = replace(denoising_panel(kg, 20, 0.2, seed=5), heads=p.heads, rels=p.rels, tails=p.tails,
                           expert=p.expert, write_prob=np.ones(len(p.write_prob)))
    w2 = write_paragraphs(as_denoising, 2000, seed=1)
    assert np.array_equal(w.sent_tail, w2.sent_tail) and np.array_equal(w.para_head, w2.para_head)


def test_writing_keeps_paragraph_counts_and_per_fact_rates(kg, panels):
    p = panels[0.5]
    w = write_paragraphs(p, 20_000, seed=2)
    counts = np.bincount(w.para_expert, minlength=20)
    assert counts.sum() == 20_000 and counts.max() - counts.min() <= 1  # empty paragraphs are redrawn
    # Expected writes of a belief are proportional to its write_prob: beliefs written with
    # probability 1 are written twice as often as those with probability 0.5.
    key = lambda e, h, r, t: ((e.astype(np.int64) * kg.num_entities + h) * 64 + r) * kg.num_entities + t
    bkey = key(p.expert, p.heads, p.rels, p.tails)
    order = np.argsort(bkey)
    wkey = key(w.sentence_expert(), w.sent_head, w.sent_rel, w.sent_tail)
    times = np.bincount(np.searchsorted(bkey[order], wkey), minlength=len(bkey))
    times_of_belief = np.empty(len(bkey))
    times_of_belief[order] = times
    ratio = times_of_belief[p.write_prob == 1.0].mean() / times_of_belief[p.write_prob == 0.5].mean()
    assert 1.8 <= ratio <= 2.2, ratio
    # At alpha = 1 every expert still writes its full share.
    w1 = write_paragraphs(panels[1.0], 3000, seed=2)
    assert w1.num_paragraphs == 3000


def test_denoising_writing_is_unchanged():
    """Golden bytes of a denoising corpus's writing (redrawing empty paragraphs must not touch it)."""
    w = write_paragraphs(denoising_panel(generate_graph(300, 3), 5, 0.4, 3), 2000, 3)
    h = hashlib.sha256()
    for k in w.__dataclass_fields__:
        h.update(np.ascontiguousarray(getattr(w, k)).tobytes())
    assert h.hexdigest()[:16] == "dcf1d52bc91ad725"


def test_same_seed_same_panel_and_clusters_are_cached(kg, tmp_path, monkeypatch):
    a = selection_panel(kg, 5, 0.3, 0.9, 20, seed=1, cache_dir=tmp_path)
    assert (tmp_path / areas_file_name(kg, 20, 1)).is_file()

    def no_clustering(*args, **kwargs):
        raise AssertionError("clustered again instead of reading the cache")

    monkeypatch.setattr(selection_mod, "cluster_edges", no_clustering)
    b = selection_panel(kg, 5, 0.3, 0.5, 20, seed=1, cache_dir=tmp_path)  # another alpha: same areas
    assert np.array_equal(a.areas, b.areas)
    c = selection_panel(kg, 5, 0.3, 0.9, 20, seed=1, cache_dir=tmp_path)
    assert np.array_equal(a.tails, c.tails) and np.array_equal(a.write_prob, c.write_prob)
    with pytest.raises(AssertionError):
        load_or_cluster(kg, 21, 1, tmp_path)  # another number of clusters is another clustering


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 1.5}, "alpha must be in [0, 1]"),
    ({"alpha": -0.1}, "alpha must be in [0, 1]"),
    ({"num_clusters": 10**6}, "clusters must be a whole number between 1 and the number of edges"),
    ({"num_clusters": 0}, "clusters must be a whole number between 1 and the number of edges"),
    ({"coverage": 1.2}, "coverage is 1.2"),
])
def test_panel_refuses_bad_input(kg, kwargs, message):
    args = {"num_experts": 3, "coverage": 0.2, "alpha": 1.0, "num_clusters": None, "seed": 0} | kwargs
    with pytest.raises(TranscendError, match=message.replace("[", r"\[").replace("]", r"\]")):
        selection_panel(kg, **args)


# --- the selection covariance ------------------------------------------------------------------


def test_covariance_sign_on_constructed_cases():
    rng = np.random.default_rng(0)
    n, q = 8, 4000
    r = (rng.random((n, q)) < 0.3).astype(float)  # who is right on which query

    def shares(weight):
        return weight / weight.sum(axis=0)

    more_where_right = selection_covariance(shares(0.1 + r), r)[0]
    independent = selection_covariance(shares(rng.random((n, q))), r)[0]
    more_where_wrong = selection_covariance(shares(1.1 - r), r)[0]
    assert more_where_right > 0.1
    assert abs(independent) < 0.01
    assert more_where_wrong < -0.05
    # Two experts, Theorem 2.1: E[(r_a - r_b)(g_a - g_b)] / 2 is the covariance sum when g_a + g_b = 1.
    g2, r2 = shares(0.1 + r[:2]), r[:2]
    theorem = ((r2[0] - r2[1]) * (g2[0] - g2[1])).mean() / 2
    centred = theorem - (r2[0].mean() - r2[1].mean()) * (g2[0].mean() - g2[1].mean()) / 2
    assert selection_covariance(g2, r2)[0] == pytest.approx(centred)


def test_covariance_from_the_corpus_rises_with_alpha(kg, panels):
    cov = {}
    for alpha, p in panels.items():
        w = write_paragraphs(p, 4000, seed=3)
        eq = expert_accuracy(p, [1.0])
        m = selection_metrics(w, p, eq, ideal_accuracy(w, kg, [1.0])[1.0], 0.2)
        s = m["selection"]
        assert s["writer_weighted_accuracy"] == pytest.approx(s["product_of_means"] + m["selection_covariance"])
        if alpha == 0.0:  # writes uniform: the mixture is exactly the g-weighted experts
            assert s["ideal_tau1_on_written"] == pytest.approx(s["writer_weighted_accuracy"])
        assert m["theory_ceiling"] == pytest.approx(1 - 0.8 ** 20)
        assert m["known_by_any"] >= 0.95 and m["ceiling"] >= m["known_by_any"]
        g, writes = writer_shares(w, kg, 20)
        assert np.allclose(g.sum(axis=0)[writes > 0], 1.0) and np.all(g[:, writes == 0] == 0)
        cov[alpha] = m["selection_covariance"]
    assert cov[1.0] > cov[0.8] > cov[0.5] > cov[0.0]
    assert cov[1.0] > 0.5 and cov[0.0] < 0.2  # at alpha = 0 who writes barely depends on who knows


def test_relation_prior_and_the_written_split():
    # Queries (0, r) -> 3, (1, r) -> 3, (2, r) -> 4; expert 0 wrote (0, r, 3) twice, expert 1 (1, r, 3) once.
    kg = KnowledgeGraph(entity_names=list("ABCDE"), relations=[Relation("r")],
                        heads=np.array([0, 1, 2]), rels=np.zeros(3, int), tails=np.array([3, 3, 4]))
    w = Writing(para_expert=np.array([0, 0, 1], np.int32), para_head=np.array([0, 0, 1], np.int32),
                sent_para=np.arange(3), sent_head=np.array([0, 0, 1], np.int32), sent_rel=np.zeros(3, np.int32),
                sent_tail=np.array([3, 3, 3], np.int32))
    assert relation_prior_greedy(w, kg).tolist() == [1.0, 1.0, 0.0]
    g, writes = writer_shares(w, kg, 2)
    assert writes.tolist() == [2, 1, 0] and g.tolist() == [[1, 0, 0], [0, 1, 0]]
    # Expert 0 holds (0, r, 3); expert 1 holds (1, r, 3) and a wrong (2, r, 3). Scores as given, with a
    # guess credited on query 2: known_by_any still counts only correct beliefs.
    panel = ExpertPanel(kg=kg, num_experts=2, expert=np.array([0, 1, 1]), heads=np.array([0, 1, 2]),
                        rels=np.zeros(3, int), tails=np.array([3, 3, 3]), write_prob=np.ones(3))
    assert known_correctly(panel).tolist() == [True, True, False]
    experts_q = {1.0: np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5]]), 0.0: np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])}
    m = selection_metrics(w, panel, experts_q, np.array([1.0, 1.0, 0.0]), 0.5, np.array([1.0, 1.0, 1.0]))
    s = m["selection"]
    assert m["known_by_any"] == pytest.approx(2 / 3)
    assert s["queries_written"] == 2 and s["relation_prior_on_unwritten"] == 0.0
    assert s["model_greedy_on_written"] == 1.0 and s["model_greedy_on_unwritten"] == 1.0
    assert s["best_expert_on_unwritten"] == 1.0  # the best expert at its best temperature
    assert m["ceiling"] == pytest.approx(2 / 3)  # query 2: nobody knows it, the corpus's guess (3) is wrong
    assert m["selection_covariance"] == pytest.approx(0.5)  # each expert writes exactly where it is right


# --- theory --------------------------------------------------------------------------------------


def test_selection_theory_reduces_to_the_vote_and_to_the_ceiling():
    assert selection_ceiling(100, 0.1) == pytest.approx(1 - 0.9 ** 100)
    writes, k = np.array([0, 3, 30]), np.full(3, 1000)
    plain = majority_vote_accuracy(10, 0.4, writes, k, wrong=0.5, trials=4000)
    greedy, share = selection_vote_accuracy(10, 0.4, 0.0, writes, k, wrong=0.5, trials=4000)
    assert greedy == pytest.approx(plain, abs=0.03)
    assert share[1:] == pytest.approx(0.4 / 0.9, abs=0.02)  # writers uniform among holders
    greedy, share = selection_vote_accuracy(10, 0.4, 1.0, writes, k, wrong=0.5)
    assert greedy.tolist() == [0.0, 1.0, 1.0] and share.tolist() == [0.0, 1.0, 1.0]
    mid = selection_vote_accuracy(10, 0.2, 0.8, writes, np.full(3, 3), wrong=0.5, trials=4000)[0]
    low = selection_vote_accuracy(10, 0.2, 0.0, writes, np.full(3, 3), wrong=0.5, trials=4000)[0]
    assert np.all(mid[1:] > low[1:] + 0.1)


# --- config and command line -------------------------------------------------------------------


def test_config_alpha_defaults_to_one_and_denoising_is_untouched():
    cfg = RunConfig(mode="selection")
    assert cfg.experts.alpha == 1.0 and cfg.experts.clusters is None
    assert RunConfig.from_dict(cfg.to_dict()).hash() == cfg.hash()
    assert set(RunConfig().to_dict()["experts"]) == {"experts", "coverage"}  # denoising hashes unchanged
    with pytest.raises(TranscendError, match="apply only to mode selection"):
        RunConfig.from_dict({"experts": {"alpha": 0.5}})


def test_cli_selection_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    code = main(["run", "selection", "--experts", "8", "--coverage", "0.3", "--alpha", "1", *TINY,
                 "--out", str(out), "--json"])
    assert code == 0
    m = json.loads(capsys.readouterr().out)
    for key in ("best_expert_accuracy", "expert_accuracies", "ideal_learner_accuracy", "theory_accuracy",
                "model_accuracy", "transcendence_gap", "gap_ci95", "ceiling", "known_by_any",
                "selection_covariance"):
        assert key in m, key
    assert m["mode"] == "selection" and m["alpha"] == 1.0
    assert m["clusters"] == default_num_clusters(m["world"]["edges"])
    assert m["theory_ceiling"] == pytest.approx(1 - 0.7 ** 8)
    assert m["known_by_any"] <= m["ceiling"] <= 1.0
    assert all(0.3 <= a <= 0.5 for a in m["expert_accuracies"])  # c = 0.3 known, plus greedy guesses
    assert m["selection_covariance"] > 0.3
    assert {"model_greedy_on_written", "relation_prior_accuracy"} <= set(m["selection"])
    assert m["ideal_learner_by_temperature"]["1.0"] > 2 * m["best_expert_accuracy"]  # the mixture selects
    for name in ("config.toml", "metrics.json", "accuracy_vs_temperature.png", "areas.npy", "corpus/manifest.json"):
        assert (out / name).is_file(), name
    assert "alpha = 1.0" in (out / "config.toml").read_text()

    # A second alpha beside it reuses the cached clustering, and the table names the extras.
    monkeypatch.setattr(selection_mod, "cluster_edges", lambda *a, **k: pytest.fail("clustered again"))
    code = main(["run", "selection", "--experts", "8", "--coverage", "0.3", "--alpha", "0.5", *TINY,
                 "--steps", "10", "--out", str(tmp_path / "run2")])
    assert code == 0
    table = capsys.readouterr().out
    assert "ceiling" in table and "selection covariance" in table and "alpha 0.5" in table


@pytest.mark.parametrize("args, message", [
    (["--alpha", "1.5"], "alpha must be a number in [0, 1]"),
    (["--alpha", "-0.1"], "alpha must be a number in [0, 1]"),
    (["--clusters", "100000"], "clusters must be a whole number between 1 and the number of edges"),
    (["--clusters", "0"], "clusters must be a whole number of at least 1"),
    (["--coverage", "1.5"], "coverage must be in [0, 1]"),
])
def test_bad_input_is_one_clear_sentence_and_leaves_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    code = main(["run", "selection", *TINY, "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_experts_who_write_nothing_are_a_clear_error(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "selection", "--coverage", "0", "--alpha", "1", *TINY, "--out", str(out)])
    assert code == 2 and "wrote nothing" in capsys.readouterr().err
    assert not out.exists()
