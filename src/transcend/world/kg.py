"""The knowledge-graph world: typed entities, relations with a schema, one-hop facts.

A graph is a set of edges (head, relation, tail) over entities with fictional
names. Queries are the distinct (head, relation) pairs; a query's correct
answers are all tails of that pair (one in a generated graph, possibly several
in a user's graph).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from transcend.world.names import fictional_names

CANONICAL_TEMPLATE = "The {relation} of {head} is {tail}."


@dataclass(frozen=True)
class Relation:
    """A relation with its schema (head type -> tail type) and sentence templates.

    ``templates[0]`` is the canonical one, used for queries.
    """

    name: str
    head_type: str | None = None
    tail_type: str | None = None
    templates: tuple[str, ...] = (CANONICAL_TEMPLATE,)

    def prompt(self, head: str) -> str:
        """The query prompt: the canonical template cut before the tail."""
        tmpl = self.templates[0]
        cut = tmpl.index("{tail}")
        return tmpl[:cut].rstrip().format(relation=self.name, head=head)


@dataclass
class KnowledgeGraph:
    """Entities, relations and edges (sorted by head, relation, tail; no duplicates).

    ``entity_types[e]`` indexes ``type_names``; a graph loaded without types has
    ``entity_types = None`` and corruptions draw from the entities seen in the
    same relation slot instead.
    """

    entity_names: list[str]
    relations: list[Relation]
    heads: np.ndarray
    rels: np.ndarray
    tails: np.ndarray
    type_names: list[str] = field(default_factory=list)
    entity_types: np.ndarray | None = None

    def __post_init__(self) -> None:
        h, r, t = (np.asarray(a, dtype=np.int32) for a in (self.heads, self.rels, self.tails))
        key = np.unique(np.stack([h, r, t], axis=1), axis=0)  # sorts lexicographically, drops duplicates
        self.heads, self.rels, self.tails = (np.ascontiguousarray(key[:, i]) for i in range(3))

    @property
    def num_entities(self) -> int:
        return len(self.entity_names)

    @property
    def num_edges(self) -> int:
        return len(self.heads)

    @cached_property
    def queries(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (head, relation) pairs, sorted."""
        pairs = np.unique(np.stack([self.heads, self.rels], axis=1), axis=0)
        return pairs[:, 0].astype(np.int32), pairs[:, 1].astype(np.int32)

    @cached_property
    def edge_query(self) -> np.ndarray:
        """For each edge, the index of its (head, relation) query."""
        qh, qr = self.queries
        key_q = qh.astype(np.int64) * len(self.relations) + qr
        key_e = self.heads.astype(np.int64) * len(self.relations) + self.rels
        return np.searchsorted(key_q, key_e).astype(np.int64)

    def query_key(self, heads: np.ndarray, rels: np.ndarray) -> np.ndarray:
        """Index of each (head, relation) among ``queries``, or -1 if it is not a query."""
        qh, qr = self.queries
        key_q = qh.astype(np.int64) * len(self.relations) + qr
        key = np.asarray(heads, dtype=np.int64) * len(self.relations) + np.asarray(rels)
        pos = np.searchsorted(key_q, key)
        pos_c = np.minimum(pos, len(key_q) - 1)
        return np.where((pos < len(key_q)) & (key_q[pos_c] == key), pos_c, -1)

    @cached_property
    def _fact_keys(self) -> np.ndarray:
        return self.fact_key(self.heads, self.rels, self.tails)  # sorted, since edges are

    def fact_key(self, heads: np.ndarray, rels: np.ndarray, tails: np.ndarray) -> np.ndarray:
        """One int64 per (head, relation, tail), ordered like the edges."""
        R, E = len(self.relations), self.num_entities
        return (np.asarray(heads, dtype=np.int64) * R + np.asarray(rels)) * E + np.asarray(tails)

    def is_fact(self, heads: np.ndarray, rels: np.ndarray, tails: np.ndarray) -> np.ndarray:
        """Whether each (head, relation, tail) is an edge of the graph (a correct answer)."""
        keys = self.fact_key(heads, rels, tails)
        pos = np.minimum(np.searchsorted(self._fact_keys, keys), max(self.num_edges - 1, 0))
        return self._fact_keys[pos] == keys

    def slot_pool(self, relation: int, slot: str) -> np.ndarray:
        """Entities a corruption may put in ``slot`` ('head' or 'tail') of ``relation``."""
        return self._slot_pools[slot][relation]

    @cached_property
    def _slot_pools(self) -> dict[str, list[np.ndarray]]:
        pools: dict[str, list[np.ndarray]] = {"head": [], "tail": []}
        for r, rel in enumerate(self.relations):
            for slot, ends, typ in (("head", self.heads, rel.head_type), ("tail", self.tails, rel.tail_type)):
                if self.entity_types is not None and typ is not None:
                    pool = np.flatnonzero(self.entity_types == self.type_names.index(typ))
                else:
                    pool = np.unique(ends[self.rels == r])
                pools[slot].append(pool.astype(np.int32))
        return pools

    def fingerprint(self) -> str:
        """Hash of the graph's content, for caching and run records."""
        h = hashlib.sha256()
        h.update(json.dumps([self.entity_names, [r.__dict__ for r in self.relations], self.type_names],
                            default=list).encode())
        for a in (self.heads, self.rels, self.tails):
            h.update(np.ascontiguousarray(a).tobytes())
        if self.entity_types is not None:
            h.update(self.entity_types.astype(np.int32).tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        deg_in = np.bincount(self.tails, minlength=self.num_entities)
        return {
            "entities": self.num_entities,
            "relations": len(self.relations),
            "edges": self.num_edges,
            "queries": len(self.queries[0]),
            "max_in_degree": int(deg_in.max()) if len(deg_in) else 0,
        }


# --- the generator --------------------------------------------------------------------------

# Entity types and their share of all entities (Wikidata-shaped: mostly people).
TYPE_SHARES: dict[str, float] = {
    "person": 0.50, "city": 0.12, "organisation": 0.07, "film": 0.06, "book": 0.05,
    "university": 0.04, "occupation": 0.03, "award": 0.03, "party": 0.02, "industry": 0.015,
    "language": 0.015, "genre": 0.01, "country": 0.01, "sport": 0.008, "instrument": 0.006,
    "religion": 0.005, "currency": 0.005, "continent": 0.001,
}

# (name, head type, tail type, share of head-type entities that have it, tail skew exponent).
# Skew > 0 makes popular entities (hubs) collect many in-edges.
RELATION_TABLE: list[tuple[str, str, str, float, float]] = [
    ("country of citizenship", "person", "country", 0.80, 1.1),
    ("place of birth", "person", "city", 0.55, 1.0),
    ("place of death", "person", "city", 0.20, 1.0),
    ("occupation", "person", "occupation", 0.60, 0.9),
    ("employer", "person", "organisation", 0.20, 0.9),
    ("alma mater", "person", "university", 0.25, 0.9),
    ("award received", "person", "award", 0.10, 0.8),
    ("native language", "person", "language", 0.25, 1.1),
    ("father", "person", "person", 0.05, 0.3),
    ("mother", "person", "person", 0.04, 0.3),
    ("spouse", "person", "person", 0.06, 0.2),
    ("religion", "person", "religion", 0.06, 1.0),
    ("political party", "person", "party", 0.06, 0.9),
    ("sport played", "person", "sport", 0.06, 1.0),
    ("instrument played", "person", "instrument", 0.04, 1.0),
    ("musical genre", "person", "genre", 0.05, 0.9),
    ("country", "city", "country", 0.90, 1.0),
    ("head of government", "city", "person", 0.15, 0.2),
    ("twin city", "city", "city", 0.08, 0.5),
    ("capital", "country", "city", 0.95, 0.5),
    ("official language", "country", "language", 0.85, 0.7),
    ("head of state", "country", "person", 0.80, 0.2),
    ("continent", "country", "continent", 0.95, 0.6),
    ("currency", "country", "currency", 0.85, 0.6),
    ("headquarters location", "organisation", "city", 0.60, 1.0),
    ("country of origin", "organisation", "country", 0.60, 1.0),
    ("founder", "organisation", "person", 0.30, 0.3),
    ("chief executive", "organisation", "person", 0.20, 0.2),
    ("industry", "organisation", "industry", 0.50, 0.9),
    ("campus city", "university", "city", 0.85, 0.9),
    ("host country", "university", "country", 0.80, 1.0),
    ("director", "film", "person", 0.85, 0.7),
    ("original language", "film", "language", 0.70, 1.1),
    ("film genre", "film", "genre", 0.70, 0.8),
    ("country of production", "film", "country", 0.60, 1.1),
    ("author", "book", "person", 0.85, 0.7),
    ("language of work", "book", "language", 0.70, 1.1),
    ("conferred by", "award", "organisation", 0.75, 0.6),
    ("leader", "party", "person", 0.60, 0.2),
]

# Relations that hold several tails per head in Wikidata (a person has several occupations and
# awards, a film several genres); with ``multiplicity`` > 1 the generator gives them several tails.
MULTI_VALUED: frozenset[str] = frozenset({
    "occupation", "employer", "alma mater", "award received", "sport played", "instrument played",
    "musical genre", "twin city", "official language", "founder", "industry", "film genre", "author",
    "country of production",
})

# The published testbed: ~25,000 entities, 39 relations, ~54,500 edges. "dense": few entities, each
# holding every relation of its type with several tails where the relation allows (paragraphs of
# hundreds of tokens, as in a user's non-functional graph).
PRESETS: dict[str, dict[str, float]] = {
    "tiny": {"entities": 300, "edges_per_entity": 2.18, "multiplicity": 1.0, "dense": 0},
    "small": {"entities": 1000, "edges_per_entity": 2.18, "multiplicity": 1.0, "dense": 0},
    "paper": {"entities": 25_000, "edges_per_entity": 2.18, "multiplicity": 1.0, "dense": 0},
    "dense": {"entities": 200, "edges_per_entity": 2.18, "multiplicity": 3.0, "dense": 1},
}


def generate_graph(num_entities: int, seed: int, edges_per_entity: float = 2.18, multiplicity: float = 1.0,
                   dense: bool = False) -> KnowledgeGraph:
    """A Wikidata-shaped typed graph, drawn from ``seed``.

    Tails are drawn with Zipf-like weights over a per-entity popularity, so
    some entities (countries, big cities) become hubs with many in-edges. The
    share of heads holding each relation is scaled so the graph has about
    ``edges_per_entity`` edges per entity (``dense``: every head holds every
    relation of its type instead). With ``multiplicity`` 1 every (head,
    relation) has exactly one tail; above 1 a head of a relation in
    ``MULTI_VALUED`` has 1 + Poisson(multiplicity - 1) distinct tails (at most
    the relation's pool), drawn from a separate stream so that the first tail
    of every fact is the one of the functional graph of the same seed.
    """
    if num_entities < 50:
        raise ValueError(f"a generated graph needs at least 50 entities, got {num_entities}")
    if multiplicity < 1:
        raise ValueError(f"multiplicity must be at least 1, got {multiplicity}")
    rng = np.random.default_rng([seed, 0x6B67])  # stream reserved for the world
    extra_rng = np.random.default_rng([seed, 0x6B68])  # the extra tails of multi-valued relations
    type_names = list(TYPE_SHARES)
    counts = {t: max(3, int(round(s * num_entities))) for t, s in TYPE_SHARES.items()}
    counts["person"] += num_entities - sum(counts.values())  # exact total

    names: list[str] = []
    types: list[int] = []
    taken: set[str] = set()
    for ti, t in enumerate(type_names):
        names.extend(fictional_names(t, counts[t], rng, taken))
        types.extend([ti] * counts[t])
    entity_types = np.asarray(types, dtype=np.int32)
    members = {t: np.flatnonzero(entity_types == i) for i, t in enumerate(type_names)}
    # Popularity: a heavy-tailed draw per entity, shared by all relations so hubs are consistent.
    popularity = rng.pareto(1.5, size=num_entities) + 1.0

    expected = sum(counts[h] * p for _, h, _, p, _ in RELATION_TABLE)
    scale = edges_per_entity * num_entities / expected
    heads, rels, tails = [], [], []
    relations = []
    for r, (name, ht, tt, share, skew) in enumerate(RELATION_TABLE):
        relations.append(Relation(name=name, head_type=ht, tail_type=tt))
        hpool, tpool = members[ht], members[tt]
        has = rng.random(len(hpool)) < min(1.0, share * scale)
        if dense:
            has[:] = True
        h = hpool[has]
        w = popularity[tpool] ** skew
        t = rng.choice(tpool, size=len(h), p=w / w.sum())
        if multiplicity > 1 and name in MULTI_VALUED:
            h, t = _extra_tails(h, t, tpool, w / w.sum(), multiplicity, extra_rng)
        if ht == tt:  # no entity is its own father: move self-loops to the next member
            pos = np.searchsorted(tpool, t)
            self_loop = t == h
            t[self_loop] = tpool[(pos[self_loop] + 1) % len(tpool)]
        heads.append(h)
        rels.append(np.full(len(h), r))
        tails.append(t)
    return KnowledgeGraph(
        entity_names=names, relations=relations,
        heads=np.concatenate(heads), rels=np.concatenate(rels), tails=np.concatenate(tails),
        type_names=type_names, entity_types=entity_types,
    )


def _extra_tails(h: np.ndarray, t: np.ndarray, tpool: np.ndarray, p: np.ndarray, multiplicity: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each head keeps its tail ``t`` and gains Poisson(multiplicity - 1) more distinct ones, drawn by ``p``
    (capped at the pool's size); returns the heads and tails of all the facts."""
    extra = np.minimum(rng.poisson(multiplicity - 1, size=len(h)), len(tpool) - 1)
    out_h, out_t = [h], [t]
    for i in np.flatnonzero(extra):
        q = p.copy()
        q[np.searchsorted(tpool, t[i])] = 0.0  # not the tail it already has
        more = rng.choice(tpool, size=int(extra[i]), replace=False, p=q / q.sum())
        out_h.append(np.full(len(more), h[i]))
        out_t.append(more)
    return np.concatenate(out_h), np.concatenate(out_t)
