import numpy as np

from transcend.experts.denoising import denoising_panel
from transcend.experts.writing import write_paragraphs
from transcend.world.kg import generate_graph


def test_coverage_sets_share_of_correct_beliefs():
    kg = generate_graph(600, 0)
    for c in (0.0, 0.3, 0.8, 1.0):
        panel = denoising_panel(kg, 8, c, seed=1)
        share = panel.correct.mean()
        # A corruption can land on a true fact by chance (small pools, hubs): share >= c.
        assert c - 0.02 <= share <= c + 0.08, (c, share)


def test_corruptions_respect_types_and_change_the_fact(small_panel):
    kg, p = small_panel.kg, small_panel
    for r, rel in enumerate(kg.relations):
        sel = p.rels == r
        assert np.all(kg.entity_types[p.heads[sel]] == kg.type_names.index(rel.head_type))
        assert np.all(kg.entity_types[p.tails[sel]] == kg.type_names.index(rel.tail_type))
    assert len(p.heads) == 5 * kg.num_edges


def test_errors_are_independent_across_experts(small_panel):
    p = small_panel
    per_expert = p.correct.reshape(p.num_experts, -1)  # sorted by expert; same edge count each
    corr = np.corrcoef(per_expert.astype(float))
    off = corr[~np.eye(p.num_experts, dtype=bool)]
    assert np.abs(off).max() < 0.15


def test_paragraphs_split_evenly_and_share_a_head(small_writing, small_panel):
    w = small_writing
    counts = np.bincount(w.para_expert, minlength=small_panel.num_experts)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 2000
    assert np.array_equal(w.sent_head, w.para_head[w.sent_para])
    assert np.all(np.diff(w.sent_para) >= 0)


def test_writing_is_deterministic(small_panel):
    a, b = write_paragraphs(small_panel, 500, 7), write_paragraphs(small_panel, 500, 7)
    c = write_paragraphs(small_panel, 500, 8)
    assert np.array_equal(a.sent_tail, b.sent_tail) and np.array_equal(a.sent_para, b.sent_para)
    assert not np.array_equal(a.sent_head, c.sent_head)


def test_write_probability_zero_writes_nothing(small_panel):
    from dataclasses import replace
    silent = replace(small_panel, write_prob=np.zeros(len(small_panel.write_prob)))
    w = write_paragraphs(silent, 100, 0)
    assert w.num_paragraphs == 0 and w.num_sentences == 0
