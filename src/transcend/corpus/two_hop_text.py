"""The generalization corpus: one-hop paragraphs and two-hop sentences, phrased and tokenized.

Unlike the denoising and selection corpora (token ids composed from one
pattern per template, for million-paragraph speed), these are written as text
by the phrasing grammars and tokenized with the same word-level tokenizer:
rewrites (pronouns, merged sentences) change a paragraph's shape, and the
corpora are small. Every unit (a paragraph, or one two-hop sentence) follows
an ``<|endoftext|>`` token; units are shuffled with a seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from transcend.corpus.phrasing import cot_example, grammar_texts, one_hop_paragraph, two_hop_sentence
from transcend.corpus.render import template_texts
from transcend.corpus.tokenizer import EOS_ID, UNK_ID, build_tokenizer
from transcend.errors import TranscendError
from transcend.experts.writing import Writing
from transcend.world.kg import KnowledgeGraph
from transcend.world.two_hop import TwoHopFacts


def generalization_tokenizer(kg: KnowledgeGraph) -> Tokenizer:
    return build_tokenizer(kg.entity_names, template_texts(kg) + grammar_texts())


@dataclass
class UnitTexts:
    texts: list[str]     # in corpus order
    is_two_hop: np.ndarray  # bool, per unit


def unit_texts(writing: Writing, kg: KnowledgeGraph, train: TwoHopFacts, *, repeat: int, phrasing: int,
               two_hop_phrasing: int, cot: bool, seed: int) -> UnitTexts:
    """The corpus as text: every paragraph of ``writing`` and ``repeat`` copies of each training
    two-hop fact (each copy phrased anew), shuffled."""
    rng = np.random.default_rng([seed, 0x7E47])  # stream reserved for phrasing and unit order
    names = kg.entity_names
    rel = [r.name for r in kg.relations]
    person = (np.asarray(kg.entity_types) == kg.type_names.index("person")) if (
        kg.entity_types is not None and "person" in kg.type_names) else np.zeros(kg.num_entities, dtype=bool)
    texts: list[str] = []
    bounds = np.searchsorted(writing.sent_para, np.arange(writing.num_paragraphs + 1))
    for p in range(writing.num_paragraphs):
        lo, hi = bounds[p], bounds[p + 1]
        facts = [(rel[writing.sent_rel[s]], names[writing.sent_head[s]], names[writing.sent_tail[s]])
                 for s in range(lo, hi)]
        texts.append(one_hop_paragraph(facts, phrasing, rng, person=bool(person[writing.para_head[p]])))
    for _ in range(repeat):
        for i in range(len(train)):
            r1, r2, a, b, c = rel[train.r1[i]], rel[train.r2[i]], names[train.a[i]], names[train.b[i]], names[train.c[i]]
            texts.append(cot_example(r1, r2, a, b, c, two_hop_phrasing, rng) if cot
                         else two_hop_sentence(r1, r2, a, c, two_hop_phrasing, rng))
    is_two_hop = np.r_[np.zeros(writing.num_paragraphs, dtype=bool), np.ones(repeat * len(train), dtype=bool)]
    order = rng.permutation(len(texts))
    return UnitTexts(texts=[texts[i] for i in order], is_two_hop=is_two_hop[order])


def tokenize_units(texts: list[str], tok: Tokenizer) -> np.ndarray:
    """``<|endoftext|>`` + the tokens of each unit, concatenated; an unknown word is a bug, so it raises."""
    encoded = tok.encode_batch(texts, add_special_tokens=False)
    parts = []
    for text, enc in zip(texts, encoded):
        ids = enc.ids
        if UNK_ID in ids:
            raise TranscendError(f"the tokenizer does not know a word of this generated text: {text!r}.")
        parts.append(np.r_[EOS_ID, np.asarray(ids, dtype=np.int64)])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
