"""The issue's claims, measured on the default world with the default recipe (a few minutes on CPU).

These train the real default model: `transcend run denoising --experts 10 --coverage 0.4` and
`--experts 1`. They are the lab's golden numbers: a change to the world, the experts, the
corpus or the recipe that loses transcendence fails here.
"""

import json

import pytest

from transcend.cli import main

pytestmark = pytest.mark.slow


def _metrics(tmp_path, capsys, *args):
    code = main(["run", "denoising", *args, "--out", str(tmp_path / "run"), "--json", "--quiet"])
    assert code == 0
    return json.loads(capsys.readouterr().out)


def test_ten_experts_transcend_at_low_temperature_only(tmp_path, capsys):
    m = _metrics(tmp_path, capsys, "--experts", "10", "--coverage", "0.4")
    greedy = m["model_accuracy"]["0"]
    assert greedy - m["best_expert_accuracy"] >= 0.15
    assert m["gap_ci95"][0] > 0.1
    # The recipe (every write trained on after the separator, passes, Muon, 16 heads) measures 0.965-0.983x
    # of the ideal learner at greedy on seeds 0-2 (4 heads: 0.964-0.982x on two CPU kinds; docs/learner.md);
    # this bound catches a regression of the recipe.
    assert greedy >= 0.94 * m["ideal_learner_accuracy"]
    # At tau = 1 the model fits the corpus's mixture, the ideal learner at tau = 1: measured +0.017 to
    # +0.019 on seeds 0-2 (4 heads: +0.015 to +0.020, two CPU kinds; one thread; docs/learner.md).
    assert abs(m["model_accuracy"]["1.0"] - m["ideal_learner_by_temperature"]["1.0"]) <= 0.025
    # The theory predicts the ideal learner (measured +0.005, -0.004, +0.007 from it at greedy on seeds
    # 0-2, docs/design.md).
    assert abs(m["theory_accuracy"] - m["ideal_learner_accuracy"]) <= 0.01
    for t, v in m["theory_by_temperature"].items():
        assert abs(v - m["ideal_learner_by_temperature"][t]) <= 0.015, t


def test_one_expert_does_not_transcend(tmp_path, capsys):
    m = _metrics(tmp_path, capsys, "--experts", "1", "--coverage", "0.4")
    assert m["transcendence_gap"] <= 0.03
    # Scored by the rule every answerer is (greedy guesses where it holds nothing): c = 0.4 plus guesses,
    # and the ideal learner of its own corpus is that expert (measured 0.456 both, tests/test_scoring.py).
    assert m["best_expert_accuracy"] == pytest.approx(m["ideal_learner_accuracy"], abs=0.015)


def test_chain_of_thought_composes_facts_across_experts(tmp_path, capsys):
    """`transcend run generalization --two-hop 1500 --cot`: the experts' facts are learnt, and two-hop
    questions whose facts belong to different experts are answered (measured 0.99; see docs/generalization.md)."""
    # 20,000 paragraphs (the derived corpus, 25 writes per query, is 31,828 here): what CI's time affords;
    # measured one-hop 1.000, across expertise 0.993 against the best expert's 0.287 (docs/learner.md).
    code = main(["run", "generalization", "--two-hop", "1500", "--cot", "--paragraphs", "20000",
                 "--out", str(tmp_path / "gen"), "--json", "--quiet"])
    assert code == 0
    m = json.loads(capsys.readouterr().out)
    assert m["one_hop_accuracy"] >= 0.95
    across = m["two_hop"]["across"]
    assert across["model_accuracy"] >= 0.6
    assert across["model_accuracy"] >= across["majority_relation_baseline"] + 0.2
    assert across["model_accuracy"] >= across["direct_connection_baseline"] + 0.2
    assert across["gap_ci95"][0] > 0.2  # transcends every expert on questions no expert can answer


def test_a_dense_graph_with_long_paragraphs_reaches_its_ideal_learner_and_transcends(tmp_path, capsys):
    """The dense preset (every head holds every relation of its type: several tails per head and relation,
    paragraphs of up to 36 sentences) at 100 entities, the defaults deriving corpus, window and steps (the
    floor of 1,500 steps): measured with 4 heads 1.006 of the ideal learner, tau = 1 -0.002 from its
    mixture, and a gap of [+0.105, +0.181] (one thread, 132 s); the full dense preset of 200 entities with
    16 heads: 0.974 and [+0.171, +0.211] (4 heads: 0.964 and [+0.163, +0.205]; docs/learner.md)."""
    m = _metrics(tmp_path, capsys, "--experts", "10", "--coverage", "0.4", "--preset", "dense", "--entities", "100")
    assert m["model_fraction_of_ideal"] >= 0.9
    assert m["gap_ci95"][0] > 0
