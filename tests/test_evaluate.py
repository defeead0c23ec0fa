import numpy as np
import pytest
import torch

from transcend.corpus.tokenizer import ENTITY_OFFSET
from transcend.evaluate.experts_eval import expert_accuracy
from transcend.evaluate.ideal import ideal_accuracy, writes_per_answer, writes_per_query
from transcend.evaluate.model_eval import accuracy_by_temperature
from transcend.evaluate.stats import gap_bootstrap_ci
from transcend.experts.panel import ExpertPanel
from transcend.experts.writing import Writing
from transcend.theory import denoising_wrong_rate, majority_vote_accuracy, majority_vote_limit
from transcend.world.kg import KnowledgeGraph, Relation


@pytest.fixture()
def toy():
    # Entities 0..4; two queries: (0, r0) -> 1 and (2, r0) -> 3.
    kg = KnowledgeGraph(entity_names=list("ABCDE"), relations=[Relation("r")],
                        heads=np.array([0, 2]), rels=np.array([0, 0]), tails=np.array([1, 3]))
    return kg


def _writing(kg, facts):
    facts = np.array(facts)
    n = len(facts)
    return Writing(para_expert=np.zeros(n, np.int32), para_head=facts[:, 0].astype(np.int32),
                   sent_para=np.arange(n), sent_head=facts[:, 0], sent_rel=np.zeros(n, np.int32),
                   sent_tail=facts[:, 1])


def test_ideal_learner_plurality_ties_and_share(toy):
    # Query 0: tails 1,1,4 -> plurality right, share 2/3. Query 1: tails 3,4 -> tie, greedy 1/2.
    w = _writing(toy, [(0, 1), (0, 1), (0, 4), (2, 3), (2, 4)])
    acc = ideal_accuracy(w, toy, [0.0, 1.0, 0.5])
    assert acc[0.0] == pytest.approx([1.0, 0.5])
    assert acc[1.0] == pytest.approx([2 / 3, 0.5])
    assert acc[0.5] == pytest.approx([4 / 5, 0.5])  # counts squared: 4 / (4 + 1)
    assert writes_per_query(w, toy).tolist() == [3, 2]
    assert writes_per_answer(w, toy) == pytest.approx(5 / 4)  # (0,1) twice; (0,4), (2,3), (2,4) once


def test_ideal_learner_guesses_unwritten_queries_from_the_relation(toy):
    acc = ideal_accuracy(_writing(toy, [(0, 1)]), toy, [0.0])
    assert acc[0.0].tolist() == [1.0, 0.0]  # the relation's only written tail (1) is wrong for query 1
    # Query 1 unwritten; the relation's tails in the corpus: 3 twice, 4 once.
    w = _writing(toy, [(0, 3), (0, 3), (0, 4)])
    acc = ideal_accuracy(w, toy, [0.0, 1.0])
    assert acc[0.0].tolist() == [0.0, 1.0]
    assert acc[1.0] == pytest.approx([0.0, 2 / 3])


def test_expert_accuracy_counts_share_of_held_tails(toy):
    panel = ExpertPanel(kg=toy, num_experts=2, expert=np.array([0, 0, 1, 1]), heads=np.array([0, 2, 0, 0]),
                        rels=np.zeros(4, int), tails=np.array([1, 4, 1, 2]), write_prob=np.ones(4))
    acc = expert_accuracy(panel, [0.0, 1.0])
    assert acc[1.0].tolist() == [[1.0, 0.0], [0.5, 0.0]]  # expert 1 holds two tails for query 0, one right
    assert acc[0.0].tolist() == [[1.0, 0.0], [0.5, 0.0]]  # a two-way tie: split


def test_expert_without_an_answer_guesses_from_its_relation(toy):
    # Expert 0 holds nothing for query 1 (head 2); its tails for the relation: 3, 3, 1.
    panel = ExpertPanel(kg=toy, num_experts=1, expert=np.zeros(3, int), heads=np.array([0, 4, 1]),
                        rels=np.zeros(3, int), tails=np.array([3, 3, 1]), write_prob=np.ones(3))
    acc = expert_accuracy(panel, [0.0, 0.5, 1.0])
    assert acc[1.0][0, 0] == pytest.approx(0.0)      # holds tail 3 for query 0, wrong
    assert acc[1.0][0, 1] == pytest.approx(2 / 3)    # samples 3 two times in three: right for query 1
    assert acc[0.5][0, 1] == pytest.approx(4 / 5)    # counts squared: 4 / (4 + 1)
    assert acc[0.0][0, 1] == pytest.approx(1.0)      # greedy: its most common tail, 3


def test_accuracy_by_temperature_reads_the_softmax(toy):
    vocab = ENTITY_OFFSET + 5
    logits = torch.full((2, vocab), -1e9)
    logits[0, ENTITY_OFFSET + 1] = 2.0   # correct, most likely
    logits[0, ENTITY_OFFSET + 4] = 0.0
    logits[1, ENTITY_OFFSET + 3] = 0.0   # correct, less likely
    logits[1, ENTITY_OFFSET + 0] = 1.0
    acc = accuracy_by_temperature(logits, toy, [0.0, 1.0])
    assert acc[0.0].tolist() == [1.0, 0.0]
    e = np.exp(2.0)
    assert acc[1.0] == pytest.approx([e / (e + 1), 1 / (1 + np.e)])


def test_theory_matches_closed_forms():
    # One expert: the vote is that expert, accuracy c whatever the number of writes.
    one = majority_vote_accuracy(1, 0.3, np.array([1, 10]), np.array([1000, 1000]), trials=4000)
    assert one == pytest.approx([0.3, 0.3], abs=0.03)
    # Many candidates, every expert weighed once: P(k >= 2) + P(k = 1) / n (a tie of n singletons).
    n, c = 10, 0.4
    exact = 1 - (1 - c) ** n - n * c * (1 - c) ** (n - 1) + n * c * (1 - c) ** (n - 1) / n
    assert majority_vote_limit(n, c) == pytest.approx(exact, abs=0.01)
    # More writes per fact bring the vote closer to that limit; no writes, no answer.
    acc = majority_vote_accuracy(10, 0.4, np.array([0, 3, 30, 300]), np.full(4, 1000))
    assert acc[0] == 0 and acc[1] < acc[2] < acc[3] and acc[3] == pytest.approx(exact, abs=0.03)


def test_theory_with_abstaining_experts():
    writes, k = np.array([40]), np.array([1000])
    plain = majority_vote_accuracy(10, 0.4, writes, k)
    explicit = majority_vote_accuracy(10, 0.4, writes, k, wrong=0.6)
    fewer_wrong = majority_vote_accuracy(10, 0.4, writes, k, wrong=0.3)
    assert plain == pytest.approx(explicit)
    assert fewer_wrong[0] > plain[0] + 0.02
    # Experts who hold nothing never write: with no wrong answers at all, any write is right.
    assert majority_vote_accuracy(10, 0.2, writes, k, wrong=0.0)[0] == pytest.approx(1.0)
    assert denoising_wrong_rate(0.4, 1.0) == pytest.approx(0.6)
    assert denoising_wrong_rate(0.4, 0.0) == pytest.approx(0.3)


def test_gap_interval_brackets_the_gap():
    rng = np.random.default_rng(0)
    model = (rng.random(2000) < 0.8).astype(float)
    experts = (rng.random((5, 2000)) < 0.4).astype(float)
    lo, hi = gap_bootstrap_ci(model, experts, resamples=300)
    gap = model.mean() - experts.mean(axis=1).max()
    assert lo < gap < hi and hi - lo < 0.1
