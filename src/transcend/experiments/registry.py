"""The named reproductions: the Taxonomy paper's figures and two studies beyond it.

Each name maps to a function ``(scale, seeds) -> Experiment``. Scales:

- ``small``: exactly the config's defaults (sized for a 2-core CPU: the default model, 1,000-entity
  world), so ``--scale small`` and no ``--scale`` are one config;
- ``paper``: the published sizes (~25,000-entity world, a million paragraphs,
  a larger model trained longer: for a GPU);
- ``tiny``: seconds per run, for tests and smoke checks (the shapes are noisy).
"""

from __future__ import annotations

from typing import Any, Callable

from transcend.errors import TranscendError
from transcend.experiments.spec import Experiment

SCALES = ("small", "paper", "tiny")
# Temperatures of the accuracy-vs-temperature figure.
FIGURE_TEMPERATURES = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5]
# Samples per query of the inference-time vote.
VOTE_K = [1, 3, 5, 9, 17, 33, 65]


def scale_base(scale: str, mode: str = "denoising") -> dict[str, Any]:
    """The world, corpus, model and training sections of a scale."""
    if scale == "tiny":
        return {"mode": mode, "device": "cpu", "world": {"preset": "tiny"}, "corpus": {"paragraphs": 3000},
                "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32},
                "training": {"steps": 40, "batch_size": 8, "warmup_steps": 5, "checkpoint_every": 10},
                "eval": {"bootstrap": 50, "theory_trials": 100}}
    if scale == "small":  # the defaults themselves: one word, one config (`run --scale small` == `run`)
        return {"mode": mode}
    if scale == "paper":
        return {"mode": mode, "world": {"preset": "paper"}, "corpus": {"paragraphs": 1_000_000},
                "model": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 128},
                "training": {"steps": 30_000, "batch_size": 64, "lr": 1e-3, "warmup_steps": 500,
                             "checkpoint_every": 1000}}
    raise TranscendError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}.")


def _pick(scale: str, small: Any, paper: Any, tiny: Any | None = None) -> Any:
    return {"small": small, "paper": paper, "tiny": small if tiny is None else tiny}[scale]


def _with(base: dict[str, Any], **sections: dict[str, Any]) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in sections.items():
        out.setdefault(k, {}).update(v)
    return out


def temperature(scale: str, seeds: list[int]) -> Experiment:
    base = _with(scale_base(scale), experts={"coverage": 0.4}, eval={"temperatures": FIGURE_TEMPERATURES})
    return Experiment("temperature", "Accuracy vs sampling temperature for 1, 10 and 100 experts (coverage 0.4): "
                      "denoising needs low temperature.", base, {"experts.experts": [1, 10, 100]}, seeds)


def coverage(scale: str, seeds: list[int]) -> Experiment:
    base = _with(scale_base(scale), eval={"temperatures": [0.0, 1.0]})
    return Experiment("coverage", "Accuracy vs coverage for 1, 10 and 100 experts, greedy and at τ = 1: one expert "
                      "follows the diagonal, many experts lift greedy accuracy far above coverage.", base,
                      {"experts.coverage": _pick(scale, [0.2, 0.4, 0.6, 0.8], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
                                                                                 0.8, 0.9]),
                       "experts.experts": [1, 10, 100]}, seeds)


def selection(scale: str, seeds: list[int]) -> Experiment:
    base = _with(scale_base(scale, "selection"), eval={"temperatures": [0.0, 1.0]})
    return Experiment("selection", "Skill selection: accuracy vs alpha (how much experts write about what they know) "
                      "for several coverages and numbers of experts; transcendence even at τ = 1.", base,
                      {"experts.alpha": _pick(scale, [0.0, 0.5, 1.0], [0.0, 0.25, 0.5, 0.75, 1.0]),
                       "experts.coverage": _pick(scale, [0.1, 0.3], [0.05, 0.1, 0.2, 0.3]),
                       "experts.experts": _pick(scale, [1, 10, 100], [1, 10, 100], [1, 10])}, seeds)


def generalization(scale: str, seeds: list[int]) -> Experiment:
    base = scale_base(scale, "generalization")
    base["experts"] = {"experts": 10}
    sizes = _pick(scale, [0, 500, 1000, 1500], [0, 2000, 5000, 10000], [0, 100, 200])
    mid = sizes[-2]
    grid = [{"two_hop.train": sizes},                                      # size of the two-hop training set
            {"two_hop.train": [mid], "two_hop.phrasing": [1, 2, 3, 4],      # phrasing diversity
             "two_hop.two_hop_phrasing": [2]},
            {"two_hop.train": sizes[1:], "two_hop.cot": [True]}]            # chain of thought
    return Experiment("generalization", "Skill generalization: across-expertise two-hop accuracy vs the size of the "
                      "two-hop training set, phrasing diversity and chain of thought, beside the baselines.",
                      base, grid, seeds)


def correlation(scale: str, seeds: list[int]) -> Experiment:
    base = _with(scale_base(scale), experts={"coverage": 0.4}, eval={"temperatures": [0.0, 1.0]})
    rhos = _pick(scale, [0.0, 0.25, 0.5, 0.75, 1.0], [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0], [0.0, 0.5, 1.0])
    grid = [{"experts.experts": _pick(scale, [10], [10, 100]), "experts.rho": rhos},
            {"experts.experts": [1]}]  # the single-expert level
    return Experiment("correlation", "Correlated expert errors: with probability ρ a corrupted fact takes a "
                      "misconception shared by all experts. Transcendence fades toward one expert's level as ρ → 1.",
                      base, grid, seeds)


def vote(scale: str, seeds: list[int]) -> Experiment:
    base = _with(scale_base(scale), experts={"coverage": 0.4}, eval={"temperatures": [0.0, 1.0]})
    return Experiment("vote", "Inference-time voting (k samples at τ = 1, then a vote) vs training-time voting "
                      "(greedy decoding of the same model) vs the explicit vote of the experts' own answers.",
                      base, {"experts.experts": [1, 10, 100],
                             "experts.coverage": _pick(scale, [0.4], [0.2, 0.4, 0.6], [0.4])},
                      seeds, study="vote", study_options={"k": VOTE_K, "trials": _pick(scale, 16, 32, 8)})


EXPERIMENTS: dict[str, Callable[[str, list[int]], Experiment]] = {
    "temperature": temperature, "coverage": coverage, "selection": selection,
    "generalization": generalization, "correlation": correlation, "vote": vote,
}


#: Seeds of every grid point unless told otherwise (all scales): a seed changes the world, the experts, the
#: corpus and the model's initialisation, and three give an interval over seeds (evaluate.stats.seed_interval).
DEFAULT_SEEDS = (0, 1, 2)


def resolve_seeds(seeds: int | list[int] | None = None) -> list[int]:
    """The seeds of a reproduction: None gives DEFAULT_SEEDS, a count N gives 0..N-1, a list is taken as is."""
    if seeds is None:
        return list(DEFAULT_SEEDS)
    if isinstance(seeds, bool):
        raise TranscendError(f"seeds must be a count (at least 1) or a list of seeds, got {seeds!r}.")
    if isinstance(seeds, int):
        if seeds < 1:
            raise TranscendError(f"seeds must be at least 1, got {seeds}.")
        return list(range(seeds))
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise TranscendError(f"seeds must be whole numbers >= 0, got {seeds}.")
    if len(set(seeds)) != len(seeds):
        raise TranscendError(f"seeds must be distinct, got {seeds}.")
    return seeds


def get_experiment(name: str, scale: str = "small", seeds: int | list[int] | None = None) -> Experiment:
    """The named reproduction at ``scale`` with seeds 0, 1, 2 (DEFAULT_SEEDS), or 0..seeds-1 for a count, or
    the given list."""
    if name not in EXPERIMENTS:
        raise TranscendError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}.")
    if scale not in SCALES:
        raise TranscendError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}.")
    exp = EXPERIMENTS[name](scale, resolve_seeds(seeds))
    exp.scale = scale
    return exp
