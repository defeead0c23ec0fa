"""Skill generalization: two-hop facts, experts with one area each, phrasing levels, evaluation, CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from transcend.cli import main
from transcend.config import RunConfig
from transcend.corpus.phrasing import sentence_forms
from transcend.corpus.tokenizer import ENTITY_OFFSET, UNK_ID
from transcend.corpus.two_hop_text import generalization_tokenizer, tokenize_units, unit_texts
from transcend.errors import TranscendError
from transcend.evaluate import two_hop as th
from transcend.experts.generalization import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALIDATION, generalization_panel
from transcend.experts.writing import write_paragraphs
from transcend.world.kg import KnowledgeGraph, Relation, generate_graph
from transcend.world.two_hop import degree_products, two_hop_facts


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return generate_graph(300, seed=3)


def _chain_graph() -> KnowledgeGraph:
    """a -r0-> b -r1-> c, a -r0-> ... plus a hub: x, y, z all -r0-> h, h -r1-> k."""
    names = ["a", "b", "c", "x", "y", "z", "h", "k"]
    rels = [Relation("r0"), Relation("r1")]
    edges = [(0, 0, 1), (1, 1, 2), (3, 0, 6), (4, 0, 6), (5, 0, 6), (6, 1, 7), (2, 1, 0)]
    h, r, t = map(np.array, zip(*edges))
    return KnowledgeGraph(entity_names=names, relations=rels, heads=h, rels=r, tails=t)


def test_two_hop_facts_are_exactly_the_paths_of_two_edges(kg):
    f = two_hop_facts(kg)
    edges = list(zip(kg.heads.tolist(), kg.rels.tolist(), kg.tails.tolist()))
    by_head: dict[int, list[tuple[int, int]]] = {}
    for h, r, t in edges:
        by_head.setdefault(h, []).append((r, t))
    brute = sorted((a, r1, r2, c) for a, r1, b in edges for r2, c in by_head.get(b, []) if a != c)
    got = sorted(zip(f.a.tolist(), f.r1.tolist(), f.r2.tolist(), f.c.tolist()))
    assert got == brute and len(got) > 100
    assert np.array_equal(kg.tails[f.edge1], f.b) and np.array_equal(kg.heads[f.edge2], f.b)


def test_degree_products_count_paths_inside_clusters():
    g = _chain_graph()
    areas = np.array([0, 0, 1, 1, 1, 1, 0])  # edges sorted: (0,0,1) (1,1,2) (2,1,0) (3,0,6) (4,0,6) (5,0,6) (6,1,7)
    assert list(zip(g.heads, g.rels, g.tails))[2] == (2, 1, 0)
    one_hop, within = degree_products(g, areas)
    f = two_hop_facts(g)  # excludes a == c paths, degree_products does not
    # brute force over all edge pairs (including a == c)
    E = g.num_edges
    brute = sum(1 for i, j in itertools.product(range(E), range(E))
                if g.tails[i] == g.heads[j] and areas[i] == areas[j])
    assert one_hop == E and within == brute
    assert int(f.within(areas).sum()) <= within


def test_panel_experts_hold_their_area_and_split_is_disjoint(kg):
    p = generalization_panel(kg, 5, train=100, validation=30, seed=0)
    assert p.num_experts == 5 and p.correct.all()
    assert np.array_equal(np.bincount(p.expert, minlength=5), p.cluster_sizes)
    within = p.two_hop.within(p.areas)
    assert (p.split == SPLIT_TRAIN).sum() == 100 and (p.split == SPLIT_VALIDATION).sum() == 30
    assert within[p.split == SPLIT_TRAIN].all() and within[p.split == SPLIT_VALIDATION].all()
    assert np.array_equal(p.split == SPLIT_TEST, ~within)
    again = generalization_panel(kg, 5, train=100, validation=30, seed=0)
    assert np.array_equal(p.split, again.split)


def test_too_many_two_hop_facts_is_a_clear_error(kg):
    available = int(two_hop_facts(kg).within(generalization_panel(kg, 5, 0, 0, seed=0).areas).sum())
    with pytest.raises(TranscendError, match=f"exceed the {available} within-expertise"):
        generalization_panel(kg, 5, train=available, validation=1, seed=0)


@pytest.mark.parametrize("bad", [0, 5, "2", True])
def test_unknown_phrasing_level_is_a_clear_error(bad):
    d = RunConfig(mode="generalization").to_dict()
    d["two_hop"]["phrasing"] = bad
    with pytest.raises(TranscendError, match="must be one of 1, 2, 3, 4"):
        RunConfig.from_dict(d)


def test_config_rules_for_generalization():
    with pytest.raises(TranscendError, match="coverage must be 1"):
        RunConfig.from_dict({"mode": "generalization", "experts": {"coverage": 0.5}})
    with pytest.raises(TranscendError, match="applies only to mode generalization"):
        RunConfig.from_dict({"mode": "denoising", "two_hop": {"train": 5}})
    assert RunConfig().experts.coverage == 0.4  # other modes keep their default


def _texts(kg, level, two_hop_level=1, cot=False, seed=0, paragraphs=600):
    p = generalization_panel(kg, 5, train=60, validation=20, seed=0)
    w = write_paragraphs(p, paragraphs, seed, expert_weights=p.cluster_sizes)
    train = p.two_hop.subset(np.flatnonzero(p.split == SPLIT_TRAIN))
    return unit_texts(w, kg, train, repeat=2, phrasing=level, two_hop_phrasing=two_hop_level, cot=cot, seed=seed)


def test_phrasing_levels_raise_the_variety_of_sentence_forms(kg):
    rel_names = [r.name for r in kg.relations]
    mean_forms = {}
    for level in (1, 2, 3, 4):
        u = _texts(kg, level)
        one_hop = [t for t, two in zip(u.texts, u.is_two_hop) if not two]
        forms = {r: n for r, n in sentence_forms(one_hop, kg.entity_names, rel_names).items() if n}
        mean_forms[level] = np.mean(list(forms.values()))
        if level == 1:
            assert set(forms.values()) == {1}
    assert mean_forms[2] >= 4 and mean_forms[3] > 2
    assert mean_forms[4] > mean_forms[2] and mean_forms[4] > mean_forms[3]


def test_generated_text_tokenizes_without_unknown_words_and_is_deterministic(kg):
    tok = generalization_tokenizer(kg)
    for level, two_level, cot in ((4, 4, False), (3, 2, True), (1, 1, True)):
        u = _texts(kg, level, two_level, cot)
        stream = tokenize_units(u.texts, tok)
        assert UNK_ID not in stream
        assert u.is_two_hop.sum() == 120
        assert u.texts == _texts(kg, level, two_level, cot).texts
    assert _texts(kg, 4).texts != _texts(kg, 4, seed=1).texts
    # every entity name is one token, also next to punctuation and "'s"
    name = kg.entity_names[0]
    ids = tok.encode(f"{name}'s capital is {name}.", add_special_tokens=False).ids
    assert ids.count(ENTITY_OFFSET) == 2


def test_cot_examples_name_the_bridge_before_the_answer(kg):
    u = _texts(kg, 1, 1, cot=True)
    ex = [t for t, two in zip(u.texts, u.is_two_hop) if two][0]
    assert ex.startswith("What is the ") and "? " in ex and " ; " in ex


def test_baselines_and_experts_on_a_constructed_graph():
    g = _chain_graph()
    f = two_hop_facts(g)
    q = th.questions_of(f, len(g.relations))
    # questions: (a,r0,r1)->c, (x,r0,r1)->k, (y..)->k, (z..)->k, (b,r1,?)... b-r1->c-r1->a
    answers = {(int(a), int(r1), int(r2)): int(c) for a, r1, r2, c in zip(f.a, f.r1, f.r2, f.c)}
    assert answers[(0, 0, 1)] == 2 and answers[(3, 0, 1)] == 7
    maj = th.majority_relation_baseline(q, g)
    # r1's tails: c (from b), k (from h), a (from c): a tie of 1 each -> lowest index a (0); right only for b's question
    expected = np.array([float(answers[(int(a), int(r1), int(r2))] == 0) for a, r1, r2 in zip(q.a, q.r1, q.r2)])
    assert np.array_equal(maj, expected)
    direct, linked = th.direct_connection_baseline(q, g)
    # b's question (b -r1-> c -r1-> a): a is linked to b (a -r0-> b) and c is also linked: 2 neighbours -> 1/2
    i = int(np.flatnonzero((q.a == 1) & (q.r1 == 1))[0])
    assert direct[i] == pytest.approx(0.5) and linked[i] == 1.0
    areas = np.zeros(g.num_edges, dtype=np.int64)
    areas[3:6] = 1  # x, y, z -> h in expert 1; h -> k in expert 0
    by_tau = th.expert_two_hop_accuracy(q, g, areas, [0.0, 1.0])
    acc = by_tau[0.0]
    j = int(np.flatnonzero(q.a == 0)[0])  # a -r0-> b -r1-> c: both edges with expert 0
    assert acc[0, j] == 1.0 and acc[1, j] == 0.0
    k = int(np.flatnonzero(q.a == 3)[0])  # x -> h (expert 1), h -> k (expert 0): expert 0 guesses r1 tails
    assert acc[0, k] == pytest.approx(1 / 3) and acc[1, k] == 0.0  # its r1 tails 2, 7, 0: a three-way tie
    assert by_tau[1.0][0, k] == pytest.approx(1 / 3) and by_tau[1.0][0, j] == 1.0


class _Scripted(torch.nn.Module):
    """A stand-in model that always continues with a fixed script of tokens (to test decoding)."""

    def __init__(self, script, vocab, prompt_len):
        super().__init__()
        self.script, self.vocab, self.prompt_len = script, vocab, prompt_len
        self.cfg = type("C", (), {"block_size": 64, "vocab_size": vocab})()

    def forward(self, x):
        step = x.shape[1] - self.prompt_len
        logits = torch.zeros(x.shape[0], x.shape[1], self.vocab)
        logits[:, -1, self.script[min(step, len(self.script) - 1)]] = 1.0
        return logits


def test_relation_pair_prior_answers_the_most_common_trained_answer_of_the_pair(kg):
    from collections import Counter
    p = generalization_panel(kg, 5, train=60, validation=20, seed=0)
    train = p.two_hop.subset(np.flatnonzero(p.split == SPLIT_TRAIN))
    q = th.questions_of(p.two_hop.subset(np.flatnonzero(p.split == SPLIT_TEST)), len(kg.relations))
    got = th.relation_pair_baseline(q, kg, train)
    majority = th.majority_relation_baseline(q, kg)
    by_pair: dict = {}
    for r1, r2, c in zip(train.r1, train.r2, train.c):
        by_pair.setdefault((int(r1), int(r2)), Counter())[int(c)] += 1
    seen = 0
    for i in range(len(q)):
        counter = by_pair.get((int(q.r1[i]), int(q.r2[i])))
        if counter is None:
            assert got[i] == majority[i]
            continue
        seen += 1
        top = max(counter.values())
        answer = min(c for c, n in counter.items() if n == top)
        correct = set(q.paths.c[q.path_question == i].tolist())
        assert got[i] == float(answer in correct)
    assert seen > 0
    # with no training facts it is exactly the majority-relation baseline
    empty = train.subset(np.array([], dtype=np.int64))
    assert np.array_equal(th.relation_pair_baseline(q, kg, empty), majority)


def test_cot_decoding_scores_the_answer_after_the_separator(kg):
    tok = generalization_tokenizer(kg)
    f = two_hop_facts(kg)
    q = th.questions_of(f.subset(np.arange(1)), len(kg.relations))
    prompt_len = len(th._prompts(q, kg, tok, cot=True)[0])
    sep = tok.token_to_id(";")
    b, c = int(f.b[0]) + ENTITY_OFFSET, int(f.c[0]) + ENTITY_OFFSET
    V = tok.get_vocab_size()
    for script, want_answer, want_bridge in (([b, sep, c], 1.0, 1.0), ([c, sep, b], 0.0, 0.0),
                                             ([b, c, c], 0.0, 1.0), ([c, c, c, sep, c], 1.0, 0.0)):
        ans, bridge = th.cot_accuracy(_Scripted(script, V, prompt_len), q, kg, tok, torch.device("cpu"))
        assert (ans[0], bridge[0]) == (want_answer, want_bridge), script


def test_cli_run_generalization_end_to_end(tmp_path, capsys):
    out = tmp_path / "g"
    args = ["run", "generalization", "--entities", "120", "--experts", "4", "--two-hop", "40", "--validation",
            "10", "--repeat", "2", "--cot", "--phrasing", "3", "--paragraphs", "600", "--steps", "30",
            "--quiet", "--json", "--out", str(out)]
    assert main(args) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["mode"] == "generalization" and m["two_hop_config"]["cot"] is True
    assert m["two_hop"]["train"]["questions"] == 40 and m["two_hop"]["within"]["questions"] == 10
    across = m["two_hop"]["across"]
    assert across["questions"] > 0 and 0 <= across["model_accuracy"] <= 1 and "bridge_accuracy" in across
    assert m["corpus"]["two_hop_units"] == 80
    assert m["appendix_a2"]["one_hop_facts"] == m["world"]["edges"]
    assert (out / "two_hop_accuracy.png").stat().st_size > 1000
    assert (out / "corpus" / "two_hop.npz").is_file()
    first = (out / "corpus" / "tokens_000.npy").read_bytes()
    # same config, same corpus bytes
    out2 = tmp_path / "g2"
    assert main(args[:-1] + [str(out2)]) == 0
    assert (out2 / "corpus" / "tokens_000.npy").read_bytes() == first


@pytest.mark.parametrize("flags, message", [
    (["--two-hop", "100000"], "exceed the"),
    (["--phrasing", "7"], "must be one of 1, 2, 3, 4"),
    (["--two-hop-phrasing", "0"], "must be one of 1, 2, 3, 4"),
])
def test_cli_bad_generalization_input_exits_2_and_writes_nothing(tmp_path, capsys, flags, message):
    out = tmp_path / "bad"
    code = main(["run", "generalization", "--entities", "120", "--experts", "4", "--quiet", "--out", str(out),
                 *flags])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_answers_are_read_among_entity_tokens_in_this_mode():
    from transcend.evaluate.model_eval import entity_logits_only
    logits = torch.zeros(2, ENTITY_OFFSET + 8)  # special tokens, 5 entities, then words
    logits[:, ENTITY_OFFSET + 6] = 9.0  # a word ("listed") would win over the whole vocabulary
    logits[0, ENTITY_OFFSET + 2] = 1.0
    logits[1, ENTITY_OFFSET + 4] = 2.0
    masked = entity_logits_only(logits, num_entities=5)
    assert masked.argmax(dim=1).tolist() == [ENTITY_OFFSET + 2, ENTITY_OFFSET + 4]
    assert torch.isinf(masked[:, :ENTITY_OFFSET]).all() and torch.isinf(masked[:, ENTITY_OFFSET + 5:]).all()
