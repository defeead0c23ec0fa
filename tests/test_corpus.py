import hashlib

import numpy as np
import pytest

from transcend.corpus.render import prompt_tokens, render_text, render_tokens, template_texts
from transcend.corpus.store import load_corpus, write_corpus
from transcend.corpus.tokenizer import ENTITY_OFFSET, EOS_ID, build_tokenizer
from transcend.errors import TranscendError
from transcend.world.triples import load_triples


def _tok(kg):
    return build_tokenizer(kg.entity_names, template_texts(kg))


def test_entity_names_are_single_tokens(small_kg):
    tok = _tok(small_kg)
    for i in range(0, small_kg.num_entities, 7):
        name = small_kg.entity_names[i]
        assert tok.encode(f"The father of {name} is {name}.").ids[3] == ENTITY_OFFSET + i


def _user_kg(tmp_path, rows):
    f = tmp_path / "g.tsv"
    f.write_text("".join("\t".join(r) + "\n" for r in rows))
    return load_triples(f)


def test_a_name_inside_a_template_is_refused(tmp_path):
    """A multi-word entity name that a relation's name holds would be read as the entity in every
    sentence of that relation: refused, naming the entity and the template, as a name equal to one
    template word is."""
    kg = _user_kg(tmp_path, [("Paris", "New York", "Rome"), ("New York", "twin", "Paris")])
    with pytest.raises(TranscendError, match="entity name 'New York' would be read inside the template"):
        _tok(kg)
    kg = _user_kg(tmp_path, [("Paris", "capital", "Rome"), ("capital", "twin", "Paris")])
    with pytest.raises(TranscendError, match="entity name 'capital' is also a word"):
        _tok(kg)


def test_names_sharing_words_with_templates_and_each_other_stay_whole(tmp_path):
    """Names made of template words, or of another name's words, are one token each in any sentence."""
    rows = [("New York", "twin city", "New York City"), ("New York City", "twin city", "city of York"),
            ("dog.n.01", "_hypernym", "/m/0abc"), ("Zürich", "/film/film/genre", "北京")]
    kg = _user_kg(tmp_path, rows)
    tok = _tok(kg)
    for r in range(len(kg.relations)):
        for h, t in ((0, 1), (1, 2), (2, 0), (3, 4), (5, 6)):
            text = kg.relations[r].templates[0].replace("{relation}", kg.relations[r].name)
            ids = tok.encode(text.replace("{head}", kg.entity_names[h]).replace("{tail}", kg.entity_names[t])).ids
            assert [i - ENTITY_OFFSET for i in ids if ENTITY_OFFSET <= i < ENTITY_OFFSET + kg.num_entities] \
                == [h, t], (text, kg.entity_names[h], kg.entity_names[t])


def test_composed_tokens_equal_tokenizer_on_rendered_text(small_kg, small_writing):
    tok = _tok(small_kg)
    stream = render_tokens(small_writing, small_kg, tok)
    texts = render_text(small_writing, small_kg, range(40))
    expected = []
    for t in texts:
        expected += [EOS_ID] + tok.encode(t).ids
    assert stream[: len(expected)].tolist() == expected
    assert (stream == EOS_ID).sum() == small_writing.num_paragraphs


def test_prompt_tokens_match_prompt_text(small_kg):
    tok = _tok(small_kg)
    qh, qr = small_kg.queries
    prompts = prompt_tokens(small_kg, tok, qh[:20], qr[:20])
    for p, h, r in zip(prompts, qh[:20], qr[:20]):
        text = small_kg.relations[r].prompt(small_kg.entity_names[h])
        assert p.tolist() == [EOS_ID] + tok.encode(text).ids


def _digest(path):
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_same_seed_same_corpus_bytes(tmp_path, small_kg, small_writing):
    tok = _tok(small_kg)
    stream = render_tokens(small_writing, small_kg, tok)
    a = write_corpus(tmp_path / "a", stream, tok, small_writing, small_kg, "h")
    write_corpus(tmp_path / "b", stream, _tok(small_kg), small_writing, small_kg, "h")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    loaded = load_corpus(tmp_path / "a")
    assert np.array_equal(loaded.tokens(), stream)
    assert loaded.manifest["num_queries"] == len(small_kg.queries[0])
    assert np.array_equal(loaded.writing.sent_tail, small_writing.sent_tail)
    assert a.manifest == loaded.manifest
    assert not (tmp_path / "a.partial").exists()


@pytest.mark.parametrize("world, experts", [({"preset": "tiny"}, {"experts": 10, "coverage": 0.4}),
                                            ({"preset": "tiny", "dense": True}, {"experts": 10, "coverage": 0.4}),
                                            ({"preset": "tiny"}, {"experts": 30, "coverage": 0.2})])
def test_derived_corpus_writes_the_asked_writes_per_query_on_graphs_of_any_paragraph_length(world, experts):
    from transcend.config import RunConfig
    from transcend import pipeline as P
    from transcend.experts.writing import write_paragraphs

    cfg = RunConfig.from_dict({"mode": "denoising", "world": world, "experts": experts,
                               "corpus": {"writes_per_query": 12.0}})
    kg = P.build_world(cfg)
    panel = P.build_panel(cfg, kg)
    n = P.corpus_paragraphs(cfg, panel)
    writing = write_paragraphs(panel, n, cfg.seed)
    assert writing.num_sentences / len(kg.queries[0]) == pytest.approx(12.0, rel=0.05)
    fixed = RunConfig.from_dict({**cfg.to_dict(), "corpus": {"paragraphs": 123}})
    assert P.corpus_paragraphs(fixed, panel) == 123


@pytest.mark.parametrize("relations", [("part_of", "has_part"), ("/film/film/genre", "/film/film/language"),
                                       ("is-a", "located in"), ("affects", "interacts_with.v2")])
def test_relation_names_of_any_characters_tokenize_without_unknown_words(tmp_path, relations):
    """A user's relation names hold ``_``, ``/``, ``-``, ``.`` and spaces: every word of every sentence and
    prompt must be known, and two relations of one head must give two prompts (with unknown words they
    read alike and the model cannot tell the relations apart)."""
    from transcend.corpus.tokenizer import UNK_ID
    from transcend.world.triples import load_triples

    a, b = relations
    rows = [f"h{i}\t{a}\tt{i % 3}\nh{i}\t{b}\tt{(i + 1) % 3}\n" for i in range(6)]
    (tmp_path / "g.tsv").write_text("".join(rows))
    kg = load_triples(tmp_path / "g.tsv")
    tok = _tok(kg)
    qh, qr = kg.queries
    prompts = prompt_tokens(kg, tok, qh, qr)
    assert all(UNK_ID not in p for p in prompts)
    by_head = {}
    for p, h in zip(prompts, qh):
        by_head.setdefault(int(h), set()).add(tuple(p))
    assert all(len(v) == 2 for v in by_head.values())
    for p, h, r in zip(prompts, qh, qr):  # composed prompts are what the tokenizer gives for the text
        assert p.tolist() == [EOS_ID] + tok.encode(kg.relations[r].prompt(kg.entity_names[h])).ids


def test_a_template_word_the_tokenizer_lacks_raises(small_kg):
    from transcend.corpus.render import Patterns
    from transcend.errors import TranscendError

    tok = build_tokenizer(small_kg.entity_names, ["The", "is", "."])  # no relation words, no "of"
    with pytest.raises(TranscendError, match="does not know a word"):
        Patterns(small_kg, tok)


def test_an_entity_named_like_a_template_word_is_one_sentence(tmp_path):
    """An entity called "is" would be read as that entity in every sentence: refused, not trained on."""
    from transcend.errors import TranscendError
    from transcend.world.triples import load_triples

    (tmp_path / "g.tsv").write_text("a\tpart_of\tis\nb\tpart_of\ta\n")
    kg = load_triples(tmp_path / "g.tsv")
    with pytest.raises(TranscendError, match="entity name 'is' is also a word"):
        _tok(kg)
