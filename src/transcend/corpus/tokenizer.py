"""A word-level tokenizer (Hugging Face ``tokenizers``) in which every entity name is one token.

Keeping names intact makes an answer a single next-token choice, so a query's
completion is judged by one token and the model's answer distribution at any
temperature is read exactly from one softmax.

Token ids: 0 = [PAD], 1 = <|endoftext|> (paragraph separator), 2 = [UNK],
then one id per entity (``ENTITY_OFFSET + entity index``), then template words.
"""

from __future__ import annotations

import re
from pathlib import Path

from tokenizers import AddedToken, Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Punctuation, Sequence, WhitespaceSplit

from transcend.errors import TranscendError

PAD, EOS, UNK = "[PAD]", "<|endoftext|>", "[UNK]"
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
ENTITY_OFFSET = 3


def pre_tokenizer() -> Sequence:
    """How text splits into words before the vocabulary looks them up: at whitespace and around every
    punctuation character (Unicode's, so ``_``, ``/`` and ``-`` too: ``part_of`` is three words)."""
    return Sequence([WhitespaceSplit(), Punctuation()])


def cut_slots(text: str) -> str:
    """A template's own words with each ``{slot}`` cut out by a line break, which no name holds, so that
    nothing read from it spans a slot."""
    return re.sub(r"\{\w+\}", "\n", text)


def template_words(texts: list[str]) -> list[str]:
    """The words of template texts (slots removed), split exactly as the tokenizer splits them, so that
    every word of every sentence is in the vocabulary whatever characters a relation's name holds."""
    split = pre_tokenizer()
    words: set[str] = set()
    for text in texts:
        words.update(w for w, _ in split.pre_tokenize_str(cut_slots(text)))
    return sorted(words)


def build_tokenizer(entity_names: list[str], texts: list[str]) -> Tokenizer:
    """The tokenizer of these entity names and of the words of these template texts (``{slot}``s are
    where names go). A name that would be read inside a template's own words is refused: the sentence
    would then carry the entity's token where the template means its words."""
    vocab = {PAD: PAD_ID, EOS: EOS_ID, UNK: UNK_ID}
    for i, name in enumerate(entity_names):
        vocab[name] = ENTITY_OFFSET + i
    for w in template_words(texts):
        if w in vocab:  # it would be read as the entity, in every sentence that holds the word
            raise TranscendError(f"entity name {w!r} is also a word of the sentences' templates; "
                                 "rename the entity (for example with a prefix).")
        vocab[w] = len(vocab)
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizer()
    tok.add_special_tokens([PAD, EOS, UNK])
    # Multi-word names are matched whole, before pre-tokenization splits on spaces.
    tok.add_tokens([AddedToken(n, single_word=True, normalized=False) for n in entity_names])
    # A multi-word name can still match across a template's words ("New York" in a relation named
    # "New York"): tokenize each template with its slots cut out.
    last = ENTITY_OFFSET + len(entity_names)
    for text, enc in zip(texts, tok.encode_batch([cut_slots(t) for t in texts], add_special_tokens=False)):
        names = [tok.id_to_token(i) for i in enc.ids if ENTITY_OFFSET <= i < last]
        if names:
            raise TranscendError(f"entity name {names[0]!r} would be read inside the template {text!r} "
                                 "(its relation's name or fixed words); rename the entity or the relation.")
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))
