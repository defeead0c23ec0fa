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

PAD, EOS, UNK = "[PAD]", "<|endoftext|>", "[UNK]"
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
ENTITY_OFFSET = 3

_WORD = re.compile(r"\w+|[^\w\s]")


def template_words(texts: list[str]) -> list[str]:
    """The word and punctuation tokens of template texts (slots removed)."""
    words: set[str] = set()
    for text in texts:
        words.update(_WORD.findall(re.sub(r"\{\w+\}", " ", text)))
    return sorted(words)


def build_tokenizer(entity_names: list[str], words: list[str]) -> Tokenizer:
    vocab = {PAD: PAD_ID, EOS: EOS_ID, UNK: UNK_ID}
    for i, name in enumerate(entity_names):
        vocab[name] = ENTITY_OFFSET + i
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = Sequence([WhitespaceSplit(), Punctuation()])
    tok.add_special_tokens([PAD, EOS, UNK])
    # Multi-word names are matched whole, before pre-tokenization splits on spaces.
    tok.add_tokens([AddedToken(n, single_word=True, normalized=False) for n in entity_names])
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    return Tokenizer.from_file(str(path))
