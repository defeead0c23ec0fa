"""The corpus on disk: token shards, tokenizer, what was written, queries, and a manifest.

Layout of a corpus folder::

    manifest.json      counts, shard list with SHA-256 of each, the config hash that made it
    tokenizer.json     the Hugging Face tokenizer
    tokens_000.npy ... the token stream (<|endoftext|> before each paragraph), uint16/uint32
    writing.npz        who wrote which fact in which paragraph (for the ideal learner)
    queries.jsonl      every (head, relation) prompt with its correct tails
    sample.txt         the first paragraphs as text, for reading

Files are deterministic (no timestamps), so the same config gives the same bytes.
The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from transcend.corpus.render import render_text
from transcend.corpus.tokenizer import load_tokenizer
from transcend.errors import TranscendError
from transcend.experts.writing import Writing
from transcend.world.kg import KnowledgeGraph

SHARD_TOKENS = 16 * 2**20
SAMPLE_PARAGRAPHS = 50


@dataclass
class Corpus:
    path: Path
    manifest: dict
    tokenizer: Tokenizer
    writing: Writing

    def tokens(self) -> np.ndarray:
        parts = [np.load(self.path / s["file"]) for s in self.manifest["shards"]]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_corpus(path: Path, stream: np.ndarray, tok: Tokenizer, writing: Writing, kg: KnowledgeGraph,
                 config_hash: str, *, sample_texts: list[str] | None = None,
                 arrays: dict[str, dict[str, np.ndarray]] | None = None, info: dict | None = None) -> Corpus:
    """Write the corpus folder. ``sample_texts`` replaces the default sample (the paragraphs in
    canonical phrasing); ``arrays`` adds ``<name>.npz`` files; ``info`` adds manifest entries."""
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    dtype = np.uint16 if tok.get_vocab_size() < 2**16 else np.uint32
    shards = []
    for i, lo in enumerate(range(0, max(len(stream), 1), SHARD_TOKENS)):
        name = f"tokens_{i:03d}.npy"
        np.save(tmp / name, stream[lo:lo + SHARD_TOKENS].astype(dtype))
        shards.append({"file": name, "tokens": int(min(SHARD_TOKENS, len(stream) - lo)),
                       "sha256": _sha256(tmp / name)})
    tok.save(str(tmp / "tokenizer.json"))
    np.savez(tmp / "writing.npz", **{k: getattr(writing, k) for k in writing.__dataclass_fields__})
    qh, qr = kg.queries
    with open(tmp / "queries.jsonl", "w", encoding="utf-8") as f:
        eq = kg.edge_query
        bounds = np.searchsorted(eq, np.arange(len(qh) + 1))
        for q in range(len(qh)):
            tails = [kg.entity_names[t] for t in kg.tails[bounds[q]:bounds[q + 1]]]
            f.write(json.dumps({"prompt": kg.relations[qr[q]].prompt(kg.entity_names[qh[q]]),
                                "answers": tails}, ensure_ascii=False) + "\n")
    if sample_texts is None:
        sample_texts = render_text(writing, kg, range(min(SAMPLE_PARAGRAPHS, writing.num_paragraphs)))
    (tmp / "sample.txt").write_text("\n\n".join(sample_texts[:SAMPLE_PARAGRAPHS]) + "\n", encoding="utf-8")
    for name, content in (arrays or {}).items():
        np.savez(tmp / f"{name}.npz", **content)
    manifest = {
        "config_hash": config_hash,
        "world_fingerprint": kg.fingerprint(),
        "vocab_size": tok.get_vocab_size(),
        "dtype": np.dtype(dtype).name,
        "num_tokens": int(len(stream)),
        "num_paragraphs": writing.num_paragraphs,
        "num_sentences": writing.num_sentences,
        "num_queries": int(len(qh)),
        "shards": shards,
        "tokenizer_sha256": _sha256(tmp / "tokenizer.json"),
        **(info or {}),
    }
    manifest["files"] = {f.name: _sha256(f) for f in sorted(tmp.iterdir()) if f.suffix in (".npz", ".jsonl")}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return Corpus(path=path, manifest=manifest, tokenizer=tok, writing=writing)


def _check_file(path: Path, sha256: str | None) -> None:
    if not path.is_file():
        raise TranscendError(f"corpus file {path} is missing.")
    if sha256 is not None and _sha256(path) != sha256:
        raise TranscendError(f"corpus file {path} does not match its manifest hash.")


def load_corpus(path: Path) -> Corpus:
    """Open a finished corpus folder, checking every file against the hash its manifest recorded
    (a TranscendError names the first missing or damaged one; the corpus is deterministic, so the
    caller may rebuild it)."""
    mpath = path / "manifest.json"
    try:
        manifest = json.loads(mpath.read_text())
        shards = [(s["file"], s["sha256"]) for s in manifest["shards"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TranscendError(f"corpus manifest {mpath} cannot be read ({type(e).__name__}).") from None
    for name, sha in [*shards, ("tokenizer.json", manifest.get("tokenizer_sha256")),
                      *manifest.get("files", {"writing.npz": None}).items()]:
        _check_file(path / name, sha)
    try:
        with np.load(path / "writing.npz") as z:
            writing = Writing(**{k: z[k] for k in z.files})
        tokenizer = load_tokenizer(path / "tokenizer.json")
    except Exception as e:  # numpy, zipfile and tokenizers raise many kinds for a damaged file
        raise TranscendError(f"corpus {path} cannot be read ({type(e).__name__}).") from None
    return Corpus(path=path, manifest=manifest, tokenizer=tokenizer, writing=writing)
