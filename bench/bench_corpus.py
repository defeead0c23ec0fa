"""Benchmark: the paper-preset graph plus a 1M-paragraph denoising corpus (goal: <= 60 s, <= 2 GiB).

Times world generation, experts, writing, tokenization and the shard writes,
and prints the total as seconds and as a ratio against a reference measured in
the same run: drawing and saving the same number of random token ids with
NumPy (the bare cost of producing that many tokens). Peak memory is the
process's maximum resident set size.

    python bench/bench_corpus.py [--preset paper] [--paragraphs 1000000] [--experts 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from transcend.corpus.render import render_tokens, template_texts
from transcend.corpus.store import write_corpus
from transcend.corpus.tokenizer import build_tokenizer
from transcend.experts.denoising import denoising_panel
from transcend.experts.writing import write_paragraphs
from transcend.world.kg import PRESETS, generate_graph


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    ap.add_argument("--paragraphs", type=int, default=1_000_000)
    ap.add_argument("--experts", type=int, default=10)
    ap.add_argument("--coverage", type=float, default=0.4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = t = time.perf_counter()
        kg = generate_graph(int(PRESETS[args.preset]["entities"]), 0)
        stages["world_s"] = time.perf_counter() - t
        t = time.perf_counter()
        panel = denoising_panel(kg, args.experts, args.coverage, 0)
        stages["experts_s"] = time.perf_counter() - t
        t = time.perf_counter()
        writing = write_paragraphs(panel, args.paragraphs, 0)
        stages["writing_s"] = time.perf_counter() - t
        t = time.perf_counter()
        tok = build_tokenizer(kg.entity_names, template_texts(kg))
        stream = render_tokens(writing, kg, tok)
        stages["tokenize_s"] = time.perf_counter() - t
        t = time.perf_counter()
        write_corpus(Path(tmp) / "corpus", stream, tok, writing, kg, "bench")
        stages["store_s"] = time.perf_counter() - t
        total = time.perf_counter() - t0
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

        t = time.perf_counter()
        rng = np.random.default_rng(0)
        ref = rng.integers(0, tok.get_vocab_size(), size=len(stream), dtype=np.int64).astype(np.uint16)
        np.save(Path(tmp) / "ref.npy", ref)
        reference = time.perf_counter() - t
    out = {"entities": kg.num_entities, "edges": kg.num_edges, "paragraphs": writing.num_paragraphs,
           "tokens": int(len(stream)), "seconds": total, "stages": stages, "peak_gib": peak_gib,
           "reference_s": reference, "ratio_to_reference": total / reference}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.preset} graph ({kg.num_entities} entities, {kg.num_edges} edges) + "
              f"{writing.num_paragraphs} paragraphs ({len(stream)} tokens): {total:.1f} s, peak {peak_gib:.2f} GiB")
        print("  " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
        print(f"  reference (draw + save {len(stream)} random token ids): {reference:.2f} s; "
              f"ratio {total / reference:.1f}x")
    return out


if __name__ == "__main__":
    main()
