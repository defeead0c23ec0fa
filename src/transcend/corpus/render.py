"""Render what experts wrote as text and as token ids.

Token ids are composed, not parsed: each template is tokenized once, with its
head/tail slots left open, and every sentence is that pattern with the two
entity tokens filled in. This is exactly what the tokenizer gives for the
rendered text (a test checks it) and is fast enough for million-paragraph corpora.
"""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from transcend.corpus.tokenizer import ENTITY_OFFSET, EOS_ID, UNK_ID
from transcend.errors import TranscendError
from transcend.experts.writing import Writing, _expand
from transcend.world.kg import KnowledgeGraph

HEAD_SLOT, TAIL_SLOT = -1, -2


def template_texts(kg: KnowledgeGraph) -> list[str]:
    """Every template with its relation name filled in (the words a tokenizer must know)."""
    return [t.replace("{relation}", r.name) for r in kg.relations for t in r.templates]


def _pattern(text: str, tok: Tokenizer) -> list[int]:
    """A template's tokens with its slots open; a word the tokenizer does not know is a bug (every
    query of a relation would read alike), so it raises rather than train on unknown tokens."""
    out: list[int] = []
    rest = text
    while rest:
        cut = min((rest.find(s), s) for s in ("{head}", "{tail}") if s in rest) if (
            "{head}" in rest or "{tail}" in rest) else (len(rest), "")
        lit, slot = rest[: cut[0]], cut[1]
        if lit.strip():
            out.extend(tok.encode(lit, add_special_tokens=False).ids)
        if slot:
            out.append(HEAD_SLOT if slot == "{head}" else TAIL_SLOT)
        rest = rest[cut[0] + len(slot):]
    if UNK_ID in out:
        raise TranscendError(f"the tokenizer does not know a word of the template {text!r}.")
    return out


class Patterns:
    """Token patterns of every (relation, template), flattened for vectorised rendering."""

    def __init__(self, kg: KnowledgeGraph, tok: Tokenizer, prompt: bool = False):
        self.num_templates = max(len(r.templates) for r in kg.relations)
        pats: list[list[int]] = []
        for r in kg.relations:
            for k in range(self.num_templates):
                t = r.templates[k % len(r.templates)].replace("{relation}", r.name)
                if prompt:
                    t = t[: t.index("{tail}")].rstrip()
                pats.append(_pattern(t, tok))
        self.length = np.array([len(p) for p in pats], dtype=np.int64)
        self.start = np.cumsum(self.length) - self.length
        self.flat = np.array([x for p in pats for x in p], dtype=np.int64)

    def compose(self, heads: np.ndarray, rels: np.ndarray, tails: np.ndarray | None,
                template: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Tokens of many sentences, concatenated, and each sentence's length."""
        pid = np.asarray(rels, dtype=np.int64) * self.num_templates
        if template is not None:
            pid = pid + template
        lengths = self.length[pid]
        idx, owner = _expand(self.start[pid], lengths)
        tokens = self.flat[idx]
        is_head = tokens == HEAD_SLOT
        tokens[is_head] = ENTITY_OFFSET + np.asarray(heads)[owner[is_head]]
        if tails is not None:
            is_tail = tokens == TAIL_SLOT
            tokens[is_tail] = ENTITY_OFFSET + np.asarray(tails)[owner[is_tail]]
        return tokens, lengths


def render_tokens(writing: Writing, kg: KnowledgeGraph, tok: Tokenizer,
                  template: np.ndarray | None = None) -> np.ndarray:
    """The token stream: each paragraph is <|endoftext|> followed by its sentences."""
    sent_tokens, sent_len = Patterns(kg, tok).compose(writing.sent_head, writing.sent_rel,
                                                      writing.sent_tail, template)
    para_len = np.bincount(writing.sent_para, weights=sent_len,
                           minlength=writing.num_paragraphs).astype(np.int64)
    total = int(para_len.sum()) + writing.num_paragraphs
    stream = np.empty(total, dtype=np.int64)
    para_start = np.cumsum(para_len + 1) - (para_len + 1)
    stream[para_start] = EOS_ID
    # Position of each sentence token: its paragraph start + 1 + offset within the paragraph.
    sent_off_in_para = np.cumsum(sent_len) - sent_len
    first_sent = np.searchsorted(writing.sent_para, np.arange(writing.num_paragraphs))
    sent_off_in_para = sent_off_in_para - sent_off_in_para[first_sent][writing.sent_para]
    tok_sent = np.repeat(np.arange(len(sent_len)), sent_len)
    tok_off = np.arange(len(sent_tokens)) - np.repeat(np.cumsum(sent_len) - sent_len, sent_len)
    pos = para_start[writing.sent_para][tok_sent] + 1 + sent_off_in_para[tok_sent] + tok_off
    stream[pos] = sent_tokens
    return stream


def render_text(writing: Writing, kg: KnowledgeGraph, paragraphs: range,
                template: np.ndarray | None = None) -> list[str]:
    """Human-readable text of some paragraphs (what ``render_tokens`` encodes)."""
    names = kg.entity_names
    out = []
    for p in paragraphs:
        lo, hi = np.searchsorted(writing.sent_para, [p, p + 1])
        sents = []
        for s in range(lo, hi):
            rel = kg.relations[writing.sent_rel[s]]
            k = 0 if template is None else int(template[s]) % len(rel.templates)
            sents.append(rel.templates[k].format(relation=rel.name, head=names[writing.sent_head[s]],
                                                 tail=names[writing.sent_tail[s]]))
        out.append(" ".join(sents))
    return out


def prompt_tokens(kg: KnowledgeGraph, tok: Tokenizer, heads: np.ndarray, rels: np.ndarray
                  ) -> list[np.ndarray]:
    """Token ids of each query prompt ``<|endoftext|> The {relation} of {head} is``."""
    tokens, lengths = Patterns(kg, tok, prompt=True).compose(heads, rels, None)
    parts = np.split(tokens, np.cumsum(lengths)[:-1])
    return [np.r_[EOS_ID, p] for p in parts]
