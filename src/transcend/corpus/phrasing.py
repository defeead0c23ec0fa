"""Phrasing diversity: four levels of how a fact is put into words, generated offline.

Levels, for one-hop paragraphs and (separately) for two-hop sentences:

1. one template per relation (the canonical "The {relation} of {head} is {tail}.");
2. several templates per relation, one drawn per sentence;
3. paragraph rewrites of level 1: sentences merged with "and", the head replaced
   by a pronoun after its first mention, word order and voice changed;
4. the rewrites of level 3 applied to level 2, with freer word choice
   (openers, verbs).

The published testbed asked an LLM for levels 3-4. Here they come from small
hand-written grammars (no library generates controlled paraphrases of a
synthetic fact offline), deterministic given a seeded generator. Every
grammar keeps the canonical form among its choices, so the evaluation prompt
"The {relation} of {head} is" stays in the training distribution.
:func:`sentence_forms` measures the variety: distinct sentence shapes per relation.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from transcend.errors import TranscendError

LEVELS = (1, 2, 3, 4)

# Level 2: relation-agnostic templates ({relation} is the relation's name).
ONE_HOP_TEMPLATES = (
    "The {relation} of {head} is {tail}.",
    "{head}'s {relation} is {tail}.",
    "{tail} is the {relation} of {head}.",
    "For {head}, the {relation} is {tail}.",
    "{head} has {tail} as its {relation}.",
    "As for {head}, the {relation} is {tail}.",
)
# Level 3 rewrites of level 1 (word order and voice); "{pron}" forms follow a first mention.
REORDERED = ("{tail} is the {relation} of {head}.", "{head}'s {relation} is {tail}.")
PRONOUN_FORMS = ("Its {relation} is {tail}.", "{tail} is its {relation}.", "The {relation} of it is {tail}.")
# Level 4: freer word choice.
OPENERS = ("", "", "Notably, ", "In fact, ", "As recorded, ", "It is known that ")
VERBS = ("is", "is", "was", "remains", "is listed as")

TWO_HOP_TEMPLATES = (
    "The {r2} of the {r1} of {a} is {c}.",
    "{a}'s {r1}'s {r2} is {c}.",
    "{c} is the {r2} of the {r1} of {a}.",
    "The {r2} of {a}'s {r1} is {c}.",
    "For {a}, the {r2} of the {r1} is {c}.",
)
TWO_HOP_REWRITES = (  # level 3: pronoun and voice rewrites of level 1
    "Consider {a}. The {r2} of its {r1} is {c}.",
    "{c} is the {r2} of the {r1} of {a}.",
    "Take {a}: the {r2} of the {r1} of it is {c}.",
)
# Chain of thought: the question, then the bridge, then the answer.
COT_QUESTION = "What is the {r2} of the {r1} of {a}?"
COT_QUESTIONS = (COT_QUESTION, "Name the {r2} of the {r1} of {a}?", "What is the {r2} of {a}'s {r1}?",
                 "Tell me the {r2} of the {r1} of {a}?")
COT_ANSWER = " {b} ; {c}"


def check_level(level: object, what: str) -> int:
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or int(level) not in LEVELS:
        raise TranscendError(f"{what} must be one of 1, 2, 3, 4 (1 one template, 2 several templates, "
                             f"3 rewrites of 1, 4 rewrites of 2), got {level!r}.")
    return int(level)


def grammar_texts() -> list[str]:
    """Every fixed string the grammars can emit (for the tokenizer's vocabulary), in the
    capitalisations they can take (a merged sentence continues in lower case)."""
    texts = [*ONE_HOP_TEMPLATES, *REORDERED, *PRONOUN_FORMS, *TWO_HOP_TEMPLATES, *TWO_HOP_REWRITES,
             *COT_QUESTIONS, COT_ANSWER, ", and ", "Their their them", *OPENERS, *VERBS]
    return texts + [t.lower() for t in texts] + [t.title() for t in texts]


def _lower_first(template: str) -> str:
    """Continue a template mid-sentence: lower-case its first word unless it is a slot (a name)."""
    return template if template.startswith("{") else template[0].lower() + template[1:]


def _free_words(template: str, rng: np.random.Generator) -> str:
    """Level 4's freer word choice on a template: another verb for "is", an optional opener."""
    verb = VERBS[rng.integers(len(VERBS))]
    if verb != "is":
        template = template.replace(" is ", f" {verb} ", 1)
    opener = OPENERS[rng.integers(len(OPENERS))]
    return opener + _lower_first(template) if opener else template


def one_hop_paragraph(facts: list[tuple[str, str, str]], level: int, rng: np.random.Generator,
                      person: bool = False) -> str:
    """One paragraph about one head: ``facts`` are (relation name, head name, tail name)."""
    if level == 1:
        return " ".join(ONE_HOP_TEMPLATES[0].format(relation=r, head=h, tail=t) for r, h, t in facts)
    base = ONE_HOP_TEMPLATES if level in (2, 4) else ONE_HOP_TEMPLATES[:1]
    sentences: list[str] = []
    for i, (r, h, t) in enumerate(facts):
        if level == 2:
            sentences.append(base[rng.integers(len(base))].format(relation=r, head=h, tail=t))
            continue
        u = rng.random()
        if i > 0 and u < 0.35:  # a pronoun for the head after its first mention
            form = PRONOUN_FORMS[rng.integers(len(PRONOUN_FORMS))]
            if person:
                form = form.replace("Its", "Their").replace("its", "their").replace("of it", "of them")
        elif u < 0.55:  # word order and voice
            form = REORDERED[rng.integers(len(REORDERED))]
        else:
            form = base[rng.integers(len(base))]
        if level == 4:
            form = _free_words(form, rng)
        if sentences and rng.random() < 0.3:  # merged with the previous sentence
            sentences[-1] = sentences[-1][:-1] + ", and " + _lower_first(form).format(relation=r, head=h, tail=t)
        else:
            sentences.append(form.format(relation=r, head=h, tail=t))
    return " ".join(sentences)


def two_hop_sentence(r1: str, r2: str, a: str, c: str, level: int, rng: np.random.Generator) -> str:
    if level == 1:
        return TWO_HOP_TEMPLATES[0].format(r1=r1, r2=r2, a=a, c=c)
    pool = {2: TWO_HOP_TEMPLATES, 3: TWO_HOP_TEMPLATES[:1] + TWO_HOP_REWRITES,
            4: TWO_HOP_TEMPLATES + TWO_HOP_REWRITES}[level]
    form = pool[rng.integers(len(pool))]
    return (_free_words(form, rng) if level == 4 else form).format(r1=r1, r2=r2, a=a, c=c)


def cot_example(r1: str, r2: str, a: str, b: str, c: str, level: int, rng: np.random.Generator) -> str:
    """A chain-of-thought example: question, bridge, answer. Levels > 1 vary the question."""
    pool = COT_QUESTIONS[:1] if level == 1 else COT_QUESTIONS
    return pool[rng.integers(len(pool))].format(r1=r1, r2=r2, a=a) + COT_ANSWER.format(b=b, c=c)


_SPLIT = re.compile(r"(?<=[.?])\s+")


def sentence_forms(texts: list[str], entity_names: list[str], relation_names: list[str]) -> dict[str, int]:
    """Distinct sentence shapes per relation: sentences split at '.'/'?', entity names masked.

    A sentence counts for every relation it names; relation names are matched as
    whole words, longest first ("country of citizenship" before "country").
    """
    ents = sorted(set(entity_names), key=len, reverse=True)
    ent_re = re.compile("|".join(re.escape(e) for e in ents)) if ents else None
    order = sorted(range(len(relation_names)), key=lambda i: -len(relation_names[i]))
    rel_re = [(i, re.compile(rf"(?<!\w){re.escape(relation_names[i])}(?!\w)")) for i in order]
    forms: dict[int, set[str]] = defaultdict(set)
    for text in texts:
        for sent in _SPLIT.split(text.strip()):
            masked = ent_re.sub("<E>", sent) if ent_re else sent
            found = []
            for i, pat in rel_re:
                masked, n = pat.subn("<R>", masked)
                if n:
                    found.append(i)
            for i in found:
                forms[i].add(masked)
    return {relation_names[i]: len(forms[i]) for i in range(len(relation_names))}
