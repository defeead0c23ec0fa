"""A default run on a graph shaped like the small public ones, timed against the demo's step.

The lab must hold on users' own graphs, whose shapes are unlike its generator's: few entities, many
relations, several tails per (head, relation), and so paragraphs of hundreds of tokens. No public graph
can be downloaded here, so this writes a seeded synthetic one of a public graph's shape (`--shape`:
entity, relation and edge counts as in UMLS, Kinship or Nations; entities in typed groups, relations
between two groups, each (head, relation) with one or more tails drawn from a skewed distribution over
the tail group) as `triples.tsv` and `types.tsv`, then runs the default
`transcend run denoising --triples ... --types ... --json` on it, its processes and threads the training
policy's (two processes of one thread on two cores or more; `OMP_NUM_THREADS=1` makes it one).

It prints the run's wall time as a ratio against the demo's own training step timed in the same run
(`demo_shape.demo_step_seconds`, before and after, averaged), the model's fraction of the ideal learner
and the transcendence gap with its interval, and the steps it trained in how many cycles with the fit
gap after each (the fit-gap rule, docs/learner.md). The goal is a default run of a graph of ~100-150
entities in 5 minutes.

    python bench/user_graph.py --shape umls [--seed 0] [--zipf 1.1] [--experts 10 --coverage 0.4] [--out DIR]
    python bench/user_graph.py --shape umls --write-only --out DIR   # only the two files
    python bench/user_graph.py --shape nations --zipf 0 --model.n_head 16   # any other flag goes to the run
    python bench/user_graph.py --analyse RUN_DIR   # what a finished run's model learnt (below)

With ``--analyse`` (also printed after a run) it reads a finished run's model and corpus and compares
the model's answer distribution on each query with the corpus's own (the ideal learner at tau = 1) and
with its relation's tails alone (every write of the relation pooled, whatever the head): the accuracy of
that relation-only answerer, and the mean total-variation distance between two heads' answer
distributions for one relation, the model's against the corpus's. A model that has learnt only which
tails a relation takes answers every head alike.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# (entities, relations, edges, entity groups) of public graphs: UMLS (135 biomedical concepts, 46
# relations, 6,529 edges in all its splits), Kinship (104 people, 25 kinship terms, 10,686 edges),
# Nations (14 countries, 55 relations, 2,158 edges). The group counts are this script's choice.
SHAPES = {"umls": (135, 46, 6529, 5), "kinship": (104, 25, 10686, 2), "nations": (14, 55, 2158, 1)}


def synthetic_graph(shape: str, seed: int, zipf: float = 1.1, edges: int | None = None
                    ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(triples, types) of a seeded graph with the shape's counts. Each relation links a head group to a
    tail group; every entity of the head group holds it with one probability for the relation, and each
    such (head, relation) gets 1 + Poisson tails drawn without replacement by Zipf weights over the tail
    group, the rate set so the edge count comes out near the shape's. ``zipf`` is the weights' exponent:
    at 1.1 a relation's few popular tails are right for most heads (its tails alone answer well), at 0
    every tail is as likely and only the head tells them apart."""
    n_ent, n_rel, n_edges, n_groups = SHAPES[shape]
    n_edges = edges or n_edges
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, n_ent)
    group[:n_groups] = np.arange(n_groups)  # every group holds an entity
    members = [np.flatnonzero(group == g) for g in range(n_groups)]
    names = [f"concept_{i:03d}_{['alpha', 'beta', 'gamma', 'delta', 'epsilon'][i % 5]}" for i in range(n_ent)]
    rel_groups = [(int(rng.integers(0, n_groups)), int(rng.integers(0, n_groups))) for _ in range(n_rel)]
    hold = rng.uniform(0.3, 1.0, n_rel)  # share of the head group holding each relation
    queries = sum(hold[r] * len(members[hg]) for r, (hg, _) in enumerate(rel_groups))
    extra = max(n_edges / max(queries, 1.0) - 1.0, 0.0)  # mean tails beyond the first
    triples = []
    for r, (hg, tg) in enumerate(rel_groups):
        tails = members[tg]
        weights = 1.0 / np.arange(1, len(tails) + 1) ** zipf
        order = rng.permutation(len(tails))
        for h in members[hg]:
            if rng.random() >= hold[r]:
                continue
            k = min(1 + int(rng.poisson(extra)), len(tails))
            chosen = rng.choice(len(tails), size=k, replace=False, p=weights / weights.sum())
            triples += [(names[h], f"relation_{r:02d}", names[tails[order[c]]]) for c in chosen]
    types = [(names[i], f"group_{group[i]:02d}") for i in range(n_ent)]
    return triples, types


def write_graph(shape: str, seed: int, out: Path, zipf: float = 1.1, edges: int | None = None
                ) -> tuple[Path, Path]:
    triples, types = synthetic_graph(shape, seed, zipf, edges)
    out.mkdir(parents=True, exist_ok=True)
    t, y = out / "triples.tsv", out / "types.tsv"
    t.write_text("".join(f"{h}\t{r}\t{x}\n" for h, r, x in triples))
    y.write_text("".join(f"{e}\t{g}\n" for e, g in types))
    return t, y


def analyse(run_dir: Path) -> dict:
    """The model of a finished run against the corpus's per-query answers and its relation-only answers."""
    import itertools

    import torch

    from transcend import pipeline as P
    from transcend.config import RunConfig
    from transcend.corpus.render import prompt_tokens
    from transcend.corpus.tokenizer import ENTITY_OFFSET
    from transcend.evaluate.ideal import answer_counts, relation_prior_accuracy
    from transcend.evaluate.model_eval import answer_logits

    cfg = RunConfig.load(run_dir / "config.toml")
    kg = P.build_world(cfg)
    panel = P.build_panel(cfg, kg, P.areas_cache_dir(run_dir))
    corpus = P.build_corpus(cfg, kg, panel, run_dir / "corpus", log=lambda m: None)
    model = P.build_learner(cfg, kg, panel, corpus)[0]
    model.load_state_dict(torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=False)["model"])
    qh, qr = kg.queries
    nq, ne = len(qh), kg.num_entities
    logits = answer_logits(model, prompt_tokens(kg, corpus.tokenizer, qh, qr), torch.device("cpu"))
    p = torch.softmax(logits.double(), 1)[:, ENTITY_OFFSET:ENTITY_OFFSET + ne].numpy()
    q, t, c = answer_counts(corpus.writing, kg)
    emp = np.zeros((nq, ne))
    np.add.at(emp, (q, t), c)
    # The relation's tails: every sentence of the relation pooled, whatever its head (the observations
    # the lab's relation-only answerer, relation_prior_accuracy, counts and scores by its own rule).
    w = corpus.writing
    rel = np.zeros((len(kg.relations), ne))
    np.add.at(rel, (w.sent_rel, w.sent_tail), 1)
    rel = (rel / rel.sum(1, keepdims=True).clip(1))[qr]
    prior = relation_prior_accuracy(np.zeros(w.num_sentences, np.int64), w.sent_rel, w.sent_tail, kg,
                                    np.zeros(nq, np.int64), np.arange(nq), [0.0, 1.0])
    written = emp.sum(1) > 0
    emp = emp / emp.sum(1, keepdims=True).clip(1)
    model_tv, corpus_tv = [], []
    for r in np.unique(qr):
        for a, b in itertools.combinations(np.flatnonzero((qr == r) & written)[:8], 2):
            model_tv.append(0.5 * np.abs(p[a] - p[b]).sum())
            corpus_tv.append(0.5 * np.abs(emp[a] - emp[b]).sum())
    return {"relation_only_greedy": float(prior[0.0].mean()), "relation_only_tau1": float(prior[1.0].mean()),
            "heads_tv_model": float(np.mean(model_tv)), "heads_tv_corpus": float(np.mean(corpus_tv)),
            "tv_model_corpus": float((0.5 * np.abs(p - emp).sum(1))[written].mean()),
            "tv_model_relation_only": float((0.5 * np.abs(p - rel).sum(1))[written].mean())}


def print_analysis(a: dict) -> None:
    print(f"relation's tails alone: greedy {a['relation_only_greedy']:.3f}, tau=1 {a['relation_only_tau1']:.3f}; "
          f"two heads of one relation differ by TV {a['heads_tv_model']:.3f} in the model, "
          f"{a['heads_tv_corpus']:.3f} in the corpus; model to corpus TV {a['tv_model_corpus']:.3f}, "
          f"to the relation's tails {a['tv_model_relation_only']:.3f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="umls")
    p.add_argument("--seed", type=int, default=0, help="seed of the graph and of the run")
    p.add_argument("--zipf", type=float, default=1.1, help="skew of each relation's tails (0: uniform)")
    p.add_argument("--edges", type=int, default=None,
                   help="edges to aim at instead of the shape's (as few as its queries: one tail each)")
    p.add_argument("--experts", type=int, default=10)
    p.add_argument("--coverage", type=float, default=0.4)
    p.add_argument("--out", type=Path, default=None, help="folder for the graph and the run (a temporary one)")
    p.add_argument("--write-only", action="store_true", help="write the graph's two files and stop")
    p.add_argument("--analyse", type=Path, default=None, metavar="RUN_DIR", help="analyse a finished run and stop")
    a, run_flags = p.parse_known_args()  # anything else is a flag of `transcend run denoising`
    if a.analyse is not None:
        an = analyse(a.analyse)
        print_analysis(an)
        print(json.dumps(an))
        return 0
    out = a.out or Path(tempfile.mkdtemp(prefix=f"user_graph_{a.shape}_"))
    triples, types = write_graph(a.shape, a.seed, out, a.zipf, a.edges)
    n = sum(1 for _ in triples.open())
    print(f"{a.shape}-shaped graph, seed {a.seed}, zipf {a.zipf:g}: {n} edges in {triples}", flush=True)
    if a.write_only:
        return 0
    sys.path.insert(0, str(Path(__file__).parent))
    from demo_shape import demo_step_seconds

    ref0 = demo_step_seconds()
    cmd = [sys.executable, "-m", "transcend.cli", "run", "denoising", "--triples", str(triples), "--types", str(types),
           "--experts", str(a.experts), "--coverage", str(a.coverage), "--seed", str(a.seed),
           "--out", str(out / "run"), "--json", *run_flags]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)  # the training policy's processes and threads
    wall = time.perf_counter() - t
    if done.returncode:
        sys.stderr.write(done.stderr)
        return done.returncode
    ref = (ref0 + demo_step_seconds()) / 2
    m = json.loads(done.stdout)
    lo, hi = m["gap_ci95"]
    print(f"run: {wall:.1f} s wall ({wall / ref:,.0f} demo steps of {ref * 1e3:.1f} ms; goal 300 s); "
          f"model/ideal {m['model_fraction_of_ideal']:.3f}, gap {m['transcendence_gap']:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    tr = m["training"]
    gaps = ", ".join(f"{g:.3f}" for g in tr["fit_gap_by_cycle"].values()) or "not measured"
    print(f"training: {tr['steps']:,} steps in {tr['cycles']} cycle(s); fit gap after each: {gaps}")
    keys = ("model_accuracy", "ideal_learner_by_temperature", "best_expert_accuracy", "model_fraction_of_ideal",
            "transcendence_gap", "gap_ci95", "world", "mean_writes_per_query", "model_fit_gap")
    an = analyse(out / "run")
    print_analysis(an)
    print(json.dumps({"wall_s": round(wall, 1), "ref_step_s": ref, **{k: m[k] for k in keys if k in m},
                      "steps": tr["steps"], "cycles": tr["cycles"], "fit_gap_by_cycle": tr["fit_gap_by_cycle"], **an}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
