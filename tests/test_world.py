import numpy as np
import pytest

from transcend.errors import TranscendError
from transcend.world.kg import PRESETS, generate_graph
from transcend.world.triples import load_triples


def test_generator_is_deterministic_and_seed_sensitive():
    a, b, c = generate_graph(400, 1), generate_graph(400, 1), generate_graph(400, 2)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()


def test_generated_graph_is_typed_functional_and_skewed(small_kg):
    kg = small_kg
    assert len(set(kg.entity_names)) == kg.num_entities  # unique names
    qh, qr = kg.queries
    assert len(qh) == kg.num_edges  # one tail per (head, relation)
    for r, rel in enumerate(kg.relations):
        sel = kg.rels == r
        assert np.all(kg.entity_types[kg.heads[sel]] == kg.type_names.index(rel.head_type))
        assert np.all(kg.entity_types[kg.tails[sel]] == kg.type_names.index(rel.tail_type))
    assert not np.any((kg.heads == kg.tails))
    deg = np.bincount(kg.tails, minlength=kg.num_entities)
    assert deg.max() > 10 * max(deg.mean(), 1)  # hubs
    people = [n for n, t in zip(kg.entity_names, kg.entity_types) if kg.type_names[t] == "person"]
    assert all(len(n.split()) >= 2 for n in people)


def test_paper_preset_has_published_shape():
    kg = generate_graph(int(PRESETS["paper"]["entities"]), 0)
    s = kg.summary()
    assert s["entities"] == 25_000
    assert s["relations"] == 39
    assert abs(s["edges"] - 54_500) / 54_500 < 0.03


def test_prompt_is_template_cut_before_tail(small_kg):
    rel = small_kg.relations[0]
    assert rel.prompt("Ana Bel") == f"The {rel.name} of Ana Bel is"


def test_load_triples_with_multiple_tails(tmp_path):
    f = tmp_path / "g.tsv"
    f.write_text("Ada\tfriend\tBob\nAda\tfriend\tCyd\nBob\tfriend\tCyd\nCyd\tlives in\tTown\n")
    kg = load_triples(f)
    assert kg.num_entities == 4 and kg.num_edges == 4
    assert len(kg.queries[0]) == 3  # (Ada, friend) has two correct tails
    ada, bob, cyd = (kg.entity_names.index(n) for n in ("Ada", "Bob", "Cyd"))
    friend = [r.name for r in kg.relations].index("friend")
    assert kg.is_fact(np.array([ada, ada]), np.array([friend, friend]), np.array([bob, cyd])).all()
    # Without types, corruptions draw from the entities seen in the same relation slot.
    assert sorted(kg.slot_pool(friend, "tail")) == sorted([bob, cyd])


def test_load_triples_with_types(tmp_path):
    f = tmp_path / "g.tsv"
    f.write_text("Ada\tfriend\tBob\nBob\tlives in\tTown\n")
    t = tmp_path / "t.tsv"
    t.write_text("Ada\tperson\nBob\tperson\nTown\tcity\nCity2\tcity\n")
    with pytest.raises(TranscendError, match="no type for entity"):
        load_triples(f, _write(tmp_path / "t2.tsv", "Ada\tperson\n"))
    kg = load_triples(f, t)
    assert kg.relations[0].head_type == "person"


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, line", [("a\tb\tc\nx\ty\n", 2), ("a\tb\tc\n\t\t\n", 2), ("a\tb\n", 1)])
def test_malformed_triples_name_the_line(tmp_path, text, line):
    f = _write(tmp_path / "bad.tsv", text)
    with pytest.raises(TranscendError, match=f"line {line}:"):
        load_triples(f)


def test_missing_triples_file(tmp_path):
    with pytest.raises(TranscendError, match="does not exist"):
        load_triples(tmp_path / "nope.tsv")


@pytest.mark.parametrize("text, what", [("a\tb\t{tail}\n", "entity name '{tail}'"),
                                        ("a\t{head}_of\tc\n", "relation name '{head}_of'")])
def test_names_with_braces_are_refused(tmp_path, text, what):
    """Braces mark a template's slots; a name holding them would be read as a slot."""
    with pytest.raises(TranscendError, match=f"{what} may not contain braces"):
        load_triples(_write(tmp_path / "g.tsv", text))
