"""Load a user's own graph from tab-separated triples (head, relation, tail) and optional types.

Real graphs may give several tails for one (head, relation): all are kept, and
any of them counts as correct. Without a type file a corruption draws from the
entities seen in the same relation slot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transcend.errors import TranscendError
from transcend.world.kg import KnowledgeGraph, Relation


#: Column names a header line may use (compared case-insensitively); such a first row is skipped, not loaded.
HEADER_NAMES = {3: ({"head", "relation", "tail"}, {"subject", "predicate", "object"}, {"h", "r", "t"},
                    {"source", "relation", "target"}, {"head", "rel", "tail"}),
                2: ({"entity", "type"}, {"name", "type"})}


def _read_tsv(path: Path, columns: int, what: str) -> list[tuple[int, list[str]]]:
    if path.is_dir():
        raise TranscendError(f"{what} file {path} is a directory; give a tab-separated text file.")
    if not path.is_file():
        raise TranscendError(f"{what} file {path} does not exist.")
    rows = []
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first name
    except UnicodeDecodeError as e:
        raise TranscendError(f"{what} file {path} is not UTF-8 text ({e.reason} at byte {e.start}).") from None
    except OSError as e:
        raise TranscendError(f"{what} file {path} cannot be read: {e.strerror}.") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip(" \r") or line.startswith("#"):  # blank or comment; tab-only lines are malformed
            continue
        fields = line.split("\t")
        if not rows and {f.strip().lower() for f in fields} in HEADER_NAMES[columns]:
            continue  # a header line names the columns; it is not a row
        if len(fields) != columns or any(not f.strip() for f in fields):
            raise TranscendError(
                f"{what} file {path}, line {lineno}: expected {columns} non-empty tab-separated fields, "
                f"got {len(fields)}: {line[:80]!r}."
            )
        rows.append((lineno, [f.strip() for f in fields]))
    if not rows:
        raise TranscendError(f"{what} file {path} holds no rows.")
    return rows


def load_triples(triples: str | Path, types: str | Path | None = None) -> KnowledgeGraph:
    """Read ``head<TAB>relation<TAB>tail`` lines (and ``entity<TAB>type`` lines if ``types``)."""
    rows = _read_tsv(Path(triples), 3, "triples")
    names: dict[str, int] = {}
    rel_ids: dict[str, int] = {}
    h, r, t = [], [], []
    for _, (head, rel, tail) in rows:
        for name in (head, tail):
            if "{" in name or "}" in name:
                raise TranscendError(f"entity name {name!r} may not contain braces.")
        if "{" in rel or "}" in rel:
            raise TranscendError(f"relation name {rel!r} may not contain braces.")
        h.append(names.setdefault(head, len(names)))
        r.append(rel_ids.setdefault(rel, len(rel_ids)))
        t.append(names.setdefault(tail, len(names)))
    entity_names = list(names)

    type_names: list[str] = []
    entity_types = None
    rel_schema: dict[int, tuple[str | None, str | None]] = {}
    if types is not None:
        type_rows = _read_tsv(Path(types), 2, "types")
        type_of: dict[str, str] = {}
        for lineno, (ent, typ) in type_rows:
            if type_of.setdefault(ent, typ) != typ:
                raise TranscendError(f"types file {types}, line {lineno}: entity {ent!r} is given two types.")
        missing = [e for e in entity_names if e not in type_of]
        if missing:
            raise TranscendError(f"types file {types} gives no type for entity {missing[0]!r} "
                                 f"({len(missing)} entities untyped); every entity needs one.")
        type_names = sorted(set(type_of[e] for e in entity_names))
        entity_types = np.asarray([type_names.index(type_of[e]) for e in entity_names], dtype=np.int32)
        ha, ra, ta = np.asarray(h), np.asarray(r), np.asarray(t)
        for rid in range(len(rel_ids)):
            sel = ra == rid
            # A relation's schema is the type of its heads (tails); mixed types get no schema,
            # and corruptions of that slot then draw from the entities seen there.
            ht = {type_names[i] for i in entity_types[ha[sel]]}
            tt = {type_names[i] for i in entity_types[ta[sel]]}
            rel_schema[rid] = (ht.pop() if len(ht) == 1 else None, tt.pop() if len(tt) == 1 else None)
    relations = [Relation(name=name, head_type=rel_schema.get(i, (None, None))[0],
                          tail_type=rel_schema.get(i, (None, None))[1])
                 for name, i in rel_ids.items()]
    return KnowledgeGraph(entity_names=entity_names, relations=relations, heads=np.asarray(h),
                          rels=np.asarray(r), tails=np.asarray(t), type_names=type_names,
                          entity_types=entity_types)
