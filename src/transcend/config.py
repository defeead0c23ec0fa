"""One typed, validated config: the single source of truth for a run.

Every field has a one-line doc (the comment above it). Construction validates;
a bad value raises ``TranscendError`` naming the field and what is allowed.
The config is saved as TOML beside every run, and its hash names the run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import numbers
import os
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import tomli_w

from transcend.errors import TranscendError
from transcend.world.kg import PRESETS

MODES = ("denoising", "selection", "generalization")
DEFAULT_TEMPERATURES = (0.0, 0.1, 0.5, 1.0, 1.5)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise TranscendError(message)


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the annotated type, strictly: a bool is not a number, a float is not a whole
    number, a number is finite, a string is not a number."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin in (list, tuple):  # list[X] or tuple[X, ...]: a sequence of X
        item = typing.get_args(hint)[0]
        return isinstance(value, (list, tuple)) and all(_fits(v, item) for v in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if is_dataclass(hint):
        return isinstance(value, hint)
    return True  # an annotation this check does not know: the section's own checks decide


def _kind(hint: Any) -> str:
    """The annotated type in words, for messages."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(_kind(a) for a in arms) + (" (or left out)" if len(arms) < len(typing.get_args(hint))
                                                      else "")
    if origin in (list, tuple):
        item = typing.get_args(hint)[0]
        return "a list of " + {float: "finite numbers", int: "whole numbers", str: "strings"}.get(item, _kind(item))
    return {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def check_field_types(obj: Any, section: str = "", skip: tuple[str, ...] = ()) -> None:
    """Check every field of dataclass ``obj`` against its annotation (``section``: the prefix in messages,
    e.g. "training."; ``skip``: fields whose own check says more); raises TranscendError naming the first
    field of the wrong kind."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        if f.name in skip:
            continue
        value = getattr(obj, f.name)
        _check(_fits(value, hints[f.name]),
               f"{section}{f.name} must be {_kind(hints[f.name])}, got {value!r} ({type(value).__name__}).")


@dataclass
class WorldConfig:
    # Graph size preset: "tiny", "small" (default), "paper" (~25,000 entities, 39 relations, ~54,500 edges) or "dense".
    preset: str = "small"
    # Number of entities, overriding the preset's.
    entities: int | None = None
    # Mean tails per (head, relation) of the multi-valued relations (>= 1; 1 = functional), overriding the preset's.
    multiplicity: float | None = None
    # Every head holds every relation of its type (long paragraphs), overriding the preset's.
    dense: bool | None = None
    # A user's graph: tab-separated (head, relation, tail) lines; replaces the generator.
    triples: str | None = None
    # Optional entity types for ``triples``: tab-separated (entity, type) lines.
    types: str | None = None

    def __post_init__(self) -> None:
        check_field_types(self, "world.")
        _check(self.preset in PRESETS, f"world.preset must be one of {', '.join(PRESETS)}, got {self.preset!r}.")
        _check(self.entities is None or self.entities >= 50,
               f"world.entities must be at least 50, got {self.entities}.")
        _check(self.types is None or self.triples is not None, "world.types needs world.triples (--triples FILE).")
        _check(self.multiplicity is None or self.multiplicity >= 1,
               f"world.multiplicity must be at least 1 (1 = one tail per head and relation), got {self.multiplicity}.")

    @property
    def num_entities(self) -> int:
        return int(self.entities if self.entities is not None else PRESETS[self.preset]["entities"])

    @property
    def tails_per_query(self) -> float:
        """The multiplicity the generator uses (this field, else the preset's)."""
        return float(self.multiplicity if self.multiplicity is not None else PRESETS[self.preset]["multiplicity"])

    @property
    def is_dense(self) -> bool:
        """Whether the generator gives every head every relation of its type (this field, else the preset's)."""
        return bool(self.dense if self.dense is not None else PRESETS[self.preset]["dense"])


@dataclass
class ExpertsConfig:
    # Number of experts (k in the papers).
    experts: int = 10
    # Coverage c: the probability that an expert knows a fact correctly (default 0.4; generalization: 1).
    coverage: float | None = None
    # Selection only: alpha in [0, 1]; a fact of cluster j is written with probability alpha*s(j) + 1 - alpha (default 1).
    alpha: float | None = None
    # Selection only: number of areas of expertise (edge clusters); default one per ~10.9 edges, as in the paper.
    clusters: int | None = None
    # Denoising only: error correlation rho in [0, 1]; a corrupted fact takes a misconception shared by all experts
    # with probability rho, else an independent one (default 0: independent errors).
    rho: float | None = None

    def __post_init__(self) -> None:
        check_field_types(self, "experts.")
        _check(isinstance(self.experts, int) and self.experts >= 1,
               f"experts must be a whole number of at least 1, got {self.experts}.")
        _check(self.coverage is None or (isinstance(self.coverage, (int, float)) and 0.0 <= self.coverage <= 1.0),
               f"coverage must be in [0, 1], got {self.coverage}.")
        _check(self.alpha is None or (isinstance(self.alpha, (int, float)) and 0.0 <= self.alpha <= 1.0),
               f"alpha must be a number in [0, 1], got {self.alpha}.")
        _check(self.clusters is None or (isinstance(self.clusters, int) and not isinstance(self.clusters, bool)
                                         and self.clusters >= 1),
               f"clusters must be a whole number of at least 1, got {self.clusters}.")
        _check(self.rho is None or (isinstance(self.rho, (int, float)) and not isinstance(self.rho, bool)
                                    and 0.0 <= self.rho <= 1.0),
               f"experts.rho must be a number in [0, 1], got {self.rho!r}.")
        if self.rho is not None:
            self.rho = float(self.rho)
            if self.rho == 0.0:
                self.rho = None  # independent errors: the same config (and hash) as leaving it out


@dataclass
class TwoHopConfig:
    # Generalization only: within-expertise two-hop facts in the training data.
    train: int = 500
    # Times each training two-hop fact is written (each copy phrased anew).
    repeat: int = 1
    # Within-expertise two-hop facts held out for validation.
    validation: int = 200
    # Phrasing diversity of the one-hop paragraphs: 1 one template, 2 several, 3 rewrites of 1, 4 rewrites of 2.
    phrasing: int = 1
    # Phrasing diversity of the two-hop sentences (same levels).
    two_hop_phrasing: int = 1
    # Chain of thought: two-hop facts written and asked as "What is the r2 of the r1 of a? b ; c".
    cot: bool = False

    def __post_init__(self) -> None:
        check_field_types(self, "two_hop.", skip=("phrasing", "two_hop_phrasing"))  # check_level below
        from transcend.corpus.phrasing import check_level

        for name in ("train", "validation"):
            v = getattr(self, name)
            _check(isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                   f"two_hop.{name} must be a whole number >= 0, got {v!r}.")
        _check(isinstance(self.repeat, int) and not isinstance(self.repeat, bool) and self.repeat >= 1,
               f"two_hop.repeat must be a whole number >= 1, got {self.repeat!r}.")
        self.phrasing = check_level(self.phrasing, "two_hop.phrasing (--phrasing)")
        self.two_hop_phrasing = check_level(self.two_hop_phrasing, "two_hop.two_hop_phrasing (--two-hop-phrasing)")
        _check(isinstance(self.cot, bool), f"two_hop.cot must be true or false, got {self.cot!r}.")


@dataclass
class CorpusConfig:
    # Paragraphs written in total, split evenly across experts (0 = derived: corpus.writes_per_query writes
    # per query on average, whatever the graph's paragraph length).
    paragraphs: int = 0
    # Sentences per query of the graph, on average, when corpus.paragraphs is 0.
    writes_per_query: float = 25.0

    def __post_init__(self) -> None:
        check_field_types(self, "corpus.")
        _check(self.paragraphs >= 0, f"corpus.paragraphs must be 0 (derived from the graph) or positive, "
                                     f"got {self.paragraphs}.")
        _check(self.writes_per_query > 0, f"corpus.writes_per_query must be positive, got {self.writes_per_query}.")


@dataclass
class ModelConfig:
    # Transformer layers.
    n_layer: int = 2
    # Attention heads per layer (16 of 8 channels: a prompt's answer needs its relation and its head,
    # and with 4 heads training let every head settle on the relation; docs/learner.md).
    n_head: int = 16
    # Width of the residual stream.
    n_embd: int = 128
    # The model's context length in tokens (its positions); training windows are training.window long.
    block_size: int = 64
    # Learner: gpt (the lab's, default), hf:DIR (a local transformers causal LM, fine-tuned) or hf-config:ARCH.
    model: str | None = None
    # hf-config only: a local tokenizer folder to re-tokenize the corpus with (default: the lab's tokenizer).
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        check_field_types(self, "model.")
        from transcend.learner.hf import GPT, HF_CONFIG, check_model_name

        _check(self.model is None or isinstance(self.model, str), f"model.model must be a string, got {self.model!r}.")
        if self.model is not None:
            self.model = None if check_model_name(self.model) == GPT else self.model  # gpt: the default's hash
        _check(self.tokenizer is None or (isinstance(self.tokenizer, str) and (self.model or "").startswith(HF_CONFIG)),
               f"model.tokenizer applies only to an hf-config:ARCH model, got tokenizer {self.tokenizer!r} "
               f"with model {self.model or 'gpt'!r}.")
        for name in ("n_layer", "n_head", "n_embd", "block_size"):
            _check(getattr(self, name) >= 1, f"model.{name} must be at least 1, got {getattr(self, name)}.")
        _check(self.n_embd % self.n_head == 0 and (self.n_embd // self.n_head) % 2 == 0,
               f"model.n_embd ({self.n_embd}) must split into model.n_head ({self.n_head}) heads of even size.")
        _check(self.block_size >= 16, f"model.block_size must be at least 16, got {self.block_size}.")


@dataclass
class TrainingConfig:
    # Optimizer steps (0 = derived from the corpus: training.passes passes over its training windows).
    steps: int = 0
    # Passes over the corpus's training windows when training.steps is 0, at least (each pass starts one
    # window at every sentence, so every write is seen this many times in a query prompt's context).
    passes: float = 3.5
    # When training.steps is 0, also passes enough that each distinct (query, answer) the corpus writes is
    # seen this many times on average (0 = passes only): spread data, many answers a few writes each, trains longer.
    exposures: float = 16.0
    # When training.steps is 0, at least this many optimizer steps: a model learns from updates, not passes,
    # and a graph of few queries writes few windows (its corpus then gets more passes).
    min_steps: int = 1500
    # When training.steps is 0, train on, one more cycle of the derived steps at a time (a warm restart of the
    # schedule), while the model's fit gap on its corpus (evaluate/fit.py: the share of what the heads tell
    # about the answers it has not learnt) is above this (0 = one cycle; the lab's GPT, one-hop modes).
    fit_gap: float = 0.25
    # When training.steps is 0, at most this many cycles of the derived steps.
    max_cycles: int = 4
    # Windows per step.
    batch_size: int = 64
    # Tokens per training window (0 = derived from the corpus: the smallest power of two that holds its
    # longest sentence after the separator, at most model.block_size).
    window: int = 0
    # Torch threads on CPU (0 = derived: one for models under 10 M parameters, else the process's cores).
    threads: int = 0
    # Optimizer: "muon" (Muon on the model's hidden matrices, AdamW on the rest) or "adamw" (AdamW on all).
    optimizer: str = "muon"
    # Peak learning rate of AdamW, reached after the warm-up, then cosine decay.
    lr: float = 5e-3
    # Peak learning rate of Muon (on AdamW's scale: updates are matched to AdamW's RMS), same schedule.
    muon_lr: float = 5e-3
    # Final learning rate as a fraction of the peak.
    min_lr_ratio: float = 0.01
    # Linear warm-up steps.
    warmup_steps: int = 100
    # AdamW weight decay on matrices.
    weight_decay: float = 0.0
    # Clip the gradient's global norm to this (0 = no clipping); clipping at 1 learned twice as fast here.
    grad_clip: float = 1.0
    # Steps between checkpoints.
    checkpoint_every: int = 200
    # Batches whose gradients are summed per optimizer step (1 = none; the effective batch is batch_size times this).
    gradient_accumulation: int = 1
    # Parts a step's batch is split into, their gradients summed in a fixed order: on CPU up to this many
    # processes compute them at once (a small model's), and the weights are the same bits however many do.
    batch_parts: int = 2

    def __post_init__(self) -> None:
        check_field_types(self, "training.")
        for name in ("batch_size", "checkpoint_every", "gradient_accumulation", "batch_parts"):
            _check(getattr(self, name) >= 1, f"training.{name} must be at least 1, got {getattr(self, name)}.")
        _check(self.batch_parts <= self.batch_size, f"training.batch_parts ({self.batch_parts}) must be at most "
               f"training.batch_size ({self.batch_size}): each part holds at least one window.")
        _check(self.steps >= 0, f"training.steps must be 0 (derived from the corpus) or positive, got {self.steps}.")
        _check(self.passes > 0, f"training.passes must be positive, got {self.passes}.")
        _check(self.exposures >= 0, f"training.exposures must be 0 (passes only) or positive, got {self.exposures}.")
        _check(self.min_steps >= 0, f"training.min_steps must be 0 (passes only) or positive, got {self.min_steps}.")
        _check(0 <= self.fit_gap < 1, f"training.fit_gap must be in [0, 1) (0 = one cycle), got {self.fit_gap}.")
        _check(self.max_cycles >= 1, f"training.max_cycles must be at least 1, got {self.max_cycles}.")
        _check(self.threads >= 0, f"training.threads must be 0 (derived) or a positive count, got {self.threads}.")
        _check(self.optimizer in ("muon", "adamw"),
               f"training.optimizer must be 'muon' or 'adamw', got {self.optimizer!r}.")
        _check(self.lr > 0, f"training.lr must be positive, got {self.lr}.")
        _check(self.muon_lr > 0, f"training.muon_lr must be positive, got {self.muon_lr}.")
        _check(0 <= self.min_lr_ratio <= 1, f"training.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}.")
        _check(self.warmup_steps >= 0, f"training.warmup_steps must be >= 0, got {self.warmup_steps}.")
        _check(self.window == 0 or self.window >= 2,
               f"training.window must be 0 (derived from the corpus) or at least 2 tokens, got {self.window}.")
        _check(self.grad_clip >= 0, f"training.grad_clip must be >= 0, got {self.grad_clip}.")


@dataclass
class EvalConfig:
    # Sampling temperatures at which the model is scored (0 = greedy).
    temperatures: list[float] = field(default_factory=lambda: list(DEFAULT_TEMPERATURES))
    # Bootstrap resamples for the gap's interval.
    bootstrap: int = 1000
    # Monte Carlo trials per (writes, candidates) group in the majority-vote theory.
    theory_trials: int = 2000

    def __post_init__(self) -> None:
        check_field_types(self, "eval.")
        _check(len(self.temperatures) > 0 and all(t >= 0 for t in self.temperatures),
               f"eval.temperatures must be a non-empty list of numbers >= 0, got {self.temperatures}.")
        _check(0.0 in self.temperatures, "eval.temperatures must include 0 (greedy), which the gap is measured at.")
        self.temperatures = sorted(float(t) for t in self.temperatures)
        _check(self.bootstrap >= 10, f"eval.bootstrap must be at least 10, got {self.bootstrap}.")
        _check(self.theory_trials >= 10, f"eval.theory_trials must be at least 10, got {self.theory_trials}.")


@dataclass
class RunConfig:
    # Mode of transcendence: denoising, selection or generalization.
    mode: str = "denoising"
    # Seed of every random draw (world, experts, writing, model init, batches).
    seed: int = 0
    # Device: auto (CUDA if present), cpu or cuda. Not part of the run's identity.
    device: str = "auto"
    world: WorldConfig = field(default_factory=WorldConfig)
    experts: ExpertsConfig = field(default_factory=ExpertsConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    # Generalization only (absent otherwise).
    two_hop: TwoHopConfig | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        check_field_types(self, "")
        _check(self.mode in MODES, f"mode must be one of {', '.join(MODES)}, got {self.mode!r}.")
        _check(self.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {self.device!r}.")
        _check(0 <= self.seed < 2**64, f"seed must be a whole number in [0, 2^64), got {self.seed}.")
        _check(self.mode == "denoising" or self.experts.rho is None,
               f"experts.rho applies only to mode denoising, not {self.mode}; remove it.")
        if self.mode == "generalization":
            _check(self.experts.coverage in (None, 1, 1.0),
                   f"generalization experts know their area without errors: coverage must be 1 (or left out), "
                   f"got {self.experts.coverage}.")
            _check(self.experts.alpha is None, "experts.alpha applies only to mode selection; remove it.")
            _check(self.experts.clusters in (None, self.experts.experts),
                   f"in generalization each expert is one area of expertise: experts.clusters must equal "
                   f"experts.experts ({self.experts.experts}) or be left out, got {self.experts.clusters}.")
            self.experts.coverage = 1.0
            if self.two_hop is None:
                self.two_hop = TwoHopConfig()
            return
        _check(self.two_hop is None, f"the [two_hop] section applies only to mode generalization, not {self.mode}.")
        if self.experts.coverage is None:
            self.experts.coverage = 0.4
        if self.mode == "selection":
            if self.experts.alpha is None:
                self.experts.alpha = 1.0
            self.experts.alpha = float(self.experts.alpha)
        else:
            _check(self.experts.alpha is None and self.experts.clusters is None,
                   f"experts.alpha and experts.clusters apply only to mode selection, not {self.mode}; remove them.")

    def to_dict(self) -> dict[str, Any]:
        return _drop_none(asdict(self))

    def identity(self, code: bool = True) -> dict[str, Any]:
        """Everything that determines results: the fields (the device does not, on CPU), the content hash of
        every user file a field names (``world.triples_sha256``...: an edited graph is another run) and, with
        ``code``, the code that makes each stage (``code.corpus``, ``code.learner``, ``code.evaluate``:
        ``code_identity``)."""
        d = self.to_dict()
        d.pop("device", None)
        for section, name in FILE_FIELDS:
            if d.get(section, {}).get(name) is not None:
                d[section][name + "_sha256"] = file_digest(d[section][name])
        if code:
            d["code"] = code_identity()
        return d

    def hash(self) -> str:
        return identity_hash(self.identity())

    def stage_hash(self, *sections: str) -> str:
        """Hash of the config sections a stage depends on (plus mode and seed) and of the code that makes them."""
        return stage_hash(self.identity(), *sections)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(tomli_w.dumps(self.to_dict()).encode())
        tmp.replace(path)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        _check(not unknown, f"unknown config field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(known))}.")
        kwargs: dict[str, Any] = {}
        sub_classes = {"world": WorldConfig, "experts": ExpertsConfig, "corpus": CorpusConfig,
                       "model": ModelConfig, "training": TrainingConfig, "eval": EvalConfig,
                       "two_hop": TwoHopConfig}
        for k, v in d.items():
            if k in sub_classes:
                _check(isinstance(v, dict), f"config section [{k}] must be a table.")
                allowed = {f.name for f in fields(sub_classes[k])}
                bad = set(v) - allowed
                _check(not bad, f"unknown field(s) {', '.join(sorted(bad))} in [{k}]; allowed: "
                                f"{', '.join(sorted(allowed))}.")
                kwargs[k] = sub_classes[k](**v)
            else:
                kwargs[k] = v
        return cls(**kwargs)

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        try:
            return cls.from_dict(tomllib.loads(path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            raise TranscendError(f"config {path} is not UTF-8 text (a TOML file is expected).") from None
        except (tomllib.TOMLDecodeError, OSError) as e:
            raise TranscendError(f"config {path} cannot be read: {e}.") from None
        except TypeError as e:
            raise TranscendError(f"config {path} has a field of the wrong kind: {e}.") from None

    @classmethod
    def for_scale(cls, scale: str, mode: str = "denoising") -> "RunConfig":
        """The config ``reproduce --scale`` starts from: tiny (seconds), small (a 2-core CPU) or paper (a GPU)."""
        from transcend.experiments.registry import scale_base

        return cls.from_dict(scale_base(scale, mode))

    def warnings(self) -> list[str]:
        """Settings that are valid one by one but make no sense together (each a sentence)."""
        out = []
        t = self.training
        if t.steps and t.warmup_steps >= t.steps:
            out.append(f"training.warmup_steps ({t.warmup_steps}) >= training.steps ({t.steps}): the learning rate "
                       "never reaches its peak; lower the warm-up.")
        if 0 < self.corpus.paragraphs < self.experts.experts:
            out.append(f"corpus.paragraphs ({self.corpus.paragraphs}) < experts.experts ({self.experts.experts}): "
                       "some experts write nothing.")
        if self.world.triples is not None and self.world.entities is not None:
            out.append("world.entities is ignored when world.triples gives the graph.")
        th = self.two_hop
        if th is not None and th.train == 0 and (th.cot or th.repeat > 1 or th.two_hop_phrasing > 1):
            out.append("two_hop.train = 0: no two-hop fact is trained on, so two_hop.repeat and "
                       "two_hop.two_hop_phrasing have no effect and a chain of thought (two_hop.cot) is never shown.")
        return out


def identity_hash(identity: dict[str, Any]) -> str:
    """The 12-hex-digit name of an identity (``RunConfig.identity``)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def stage_hash(identity: dict[str, Any], *sections: str) -> str:
    """The hash of an identity's ``sections`` (plus mode and seed) and of the code that makes them: of this
    config (``RunConfig.stage_hash``), or of what a run folder recorded (its ``identity.json``)."""
    sub = {k: identity[k] for k in ("mode", "seed", *sections) if k in identity}
    code = identity.get("code") or {}
    sub["code"] = {g: code.get(g) for g in sorted({CODE_OF_SECTION[s] for s in sections if s in CODE_OF_SECTION})}
    return identity_hash(sub)


def default_run_dir(cfg: RunConfig) -> Path:
    """A single run's folder when none is given: runs/<mode>-<config hash>."""
    return Path("runs") / f"{cfg.mode}-{cfg.hash()}"


#: Config fields that name a user's file: a run's identity holds the file's content hash, not only its path.
FILE_FIELDS = (("world", "triples"), ("world", "types"))
_digests: dict[tuple, str | None] = {}


def file_digest(path: str | Path) -> str | None:
    """SHA-256 (16 hex digits) of a file's bytes, or None if it cannot be read (its loader says why)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    if key not in _digests:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError:
            return None
        _digests[key] = h.hexdigest()[:16]
    return _digests[key]


#: The code each cached stage's result comes from, as paths inside the package: a run's identity holds a
#: digest of each group (``code.corpus``, ``code.learner``, ``code.evaluate``), so a corpus, a checkpoint
#: or metrics made by other code are never taken for this code's (they are made again, or a run folder that
#: holds them is refused, naming the group). Comments, docstrings and layout are not code: they are left out.
CODE_SOURCES: dict[str, tuple[str, ...]] = {
    "corpus": ("world", "experts", "corpus"),
    "learner": ("learner/model.py", "learner/train.py", "learner/hf.py"),
    "evaluate": ("evaluate", "theory.py", "pipeline.py"),
    "chess": ("chess", "learner/model.py", "learner/train.py"),
}
#: The code groups of a knowledge-graph run (``RunConfig.identity``); a chess run's is ``("chess",)``.
RUN_CODE = ("corpus", "learner", "evaluate")
#: The config sections whose stage each code group makes (a stage hash covers the code of its sections).
CODE_OF_SECTION = {"world": "corpus", "experts": "corpus", "corpus": "corpus", "two_hop": "corpus",
                   "model": "learner", "training": "learner"}


@functools.lru_cache(maxsize=None)
def code_digest(group: str) -> str:
    """The digest of ``CODE_SOURCES[group]`` (``source_digest``)."""
    root = Path(__file__).resolve().parent
    files = []
    for part in CODE_SOURCES[group]:
        path = root / part
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return source_digest({f.relative_to(root).as_posix(): f for f in files})


def source_digest(files: dict[str, Path]) -> str:
    """SHA-256 (12 hex digits) of the syntax trees of ``files`` (name -> path), docstrings removed (``ast``
    drops comments and layout): an edit that changes what the code does changes the digest, a reworded
    comment does not."""
    import ast

    h = hashlib.sha256()
    for name, path in files.items():
        tree = ast.parse(Path(path).read_bytes(), filename=str(path))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                    and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        h.update(name.encode() + b"\0" + ast.dump(tree).encode() + b"\0")
    return h.hexdigest()[:12]


def code_identity(groups: tuple[str, ...] = RUN_CODE) -> dict[str, str]:
    """The version of the package and the digest of each group's code (``CODE_SOURCES``)."""
    from transcend import __version__

    return {"transcend": __version__, **{group: code_digest(group) for group in groups}}


def _drop_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d
