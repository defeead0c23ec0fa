"""Benchmark: areas of expertise on the paper-preset graph, and the selection experts' LPs.

Times ``cluster_edges`` on the ``paper`` preset (25,000 entities, ~54,500 edges)
into 5,000 clusters (goal: <= 60 s on 2 cores) and ``coverage_vectors`` for 100
experts over those clusters, and prints each as seconds and as a ratio against
a reference measured in the same run: generating the graph itself. Also prints
peak resident memory and the clusters' size and coherence figures.

    python bench/bench_clustering.py [--preset paper] [--clusters 5000] [--experts 100] [--coverage 0.1] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

from transcend.experts.areas import cluster_edges, cluster_quality
from transcend.experts.coverage_lp import coverage_vectors
from transcend.world.kg import PRESETS, generate_graph


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    ap.add_argument("--clusters", type=int, default=5000)
    ap.add_argument("--experts", type=int, default=100)
    ap.add_argument("--coverage", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args(argv)
    preset = PRESETS[args.preset]

    t0 = time.perf_counter()
    kg = generate_graph(int(preset["entities"]), args.seed, preset["edges_per_entity"])
    t_ref = time.perf_counter() - t0
    rss_graph = peak_rss_mib()

    t0 = time.perf_counter()
    labels = cluster_edges(kg, args.clusters, args.seed)
    t_cluster = time.perf_counter() - t0
    rss_cluster = peak_rss_mib()

    sizes = np.bincount(labels)
    t0 = time.perf_counter()
    s = coverage_vectors(sizes, args.coverage, args.experts, args.seed)
    t_lp = time.perf_counter() - t0
    fractional = ((s > 0) & (s < 1)).sum(axis=1)

    out = {
        "preset": args.preset, "entities": kg.num_entities, "edges": kg.num_edges, "clusters": args.clusters,
        "reference_generate_graph_s": round(t_ref, 3),
        "cluster_s": round(t_cluster, 3), "cluster_ratio": round(t_cluster / t_ref, 2),
        "lp_s": round(t_lp, 3), "lp_ratio": round(t_lp / t_ref, 2),
        "lp_s_per_expert": round(t_lp / args.experts, 4),
        "lp_max_fractional_per_expert": int(fractional.max()),
        "lp_max_coverage_error": float(np.abs(s @ sizes - args.coverage * kg.num_edges).max()),
        "peak_rss_mib_after_graph": round(rss_graph, 1), "peak_rss_mib_after_clustering": round(rss_cluster, 1),
        "quality": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in cluster_quality(kg, labels).items()},
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return out
    q = out["quality"]
    print(f"graph: {args.preset} preset, {kg.num_entities} entities, {kg.num_edges} edges")
    print(f"reference (generate the graph):  {t_ref:7.2f} s")
    print(f"cluster_edges into {args.clusters}:    {t_cluster:7.2f} s   = {out['cluster_ratio']:.1f} x reference"
          f"   (goal <= 60 s)")
    print(f"coverage_vectors, {args.experts} experts:  {t_lp:7.2f} s   = {out['lp_ratio']:.1f} x reference"
          f"   ({out['lp_s_per_expert'] * 1000:.1f} ms per LP; at most {out['lp_max_fractional_per_expert']}"
          f" fractional entry per expert; coverage error {out['lp_max_coverage_error']:.1e})")
    print(f"peak RSS: {rss_graph:.0f} MiB after the graph, {rss_cluster:.0f} MiB after clustering")
    print(f"cluster sizes: min {q['size_min']}  p10 {q['size_p10']}  median {q['size_median']}  mean {q['size_mean']}"
          f"  p90 {q['size_p90']}  max {q['size_max']}  singletons {q['singletons']}")
    print(f"coherence: {q['share_entity']:.3f} of same-cluster edge pairs share an entity vs {q['share_entity_random']:.4f}"
          f" at random (lift {q['lift']:.0f}); {q['connected']:.1%} of clusters connected;"
          f" two-hop chains within one cluster {q['two_hop_within']:.3f} vs {q['two_hop_within_random']:.5f} at random")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
