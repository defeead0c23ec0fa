"""One run, stage by stage: world -> experts -> corpus -> learner -> evaluate -> results -> report.

A run folder holds ``config.toml``, ``corpus/``, ``checkpoints/``, ``metrics.json``
and ``accuracy_vs_temperature.png``. Stages that finished are reused (the
corpus by the hash of the config sections that made it; a finished run by its
metrics), an interrupted training resumes from its last checkpoint with
``resume=True``, and a run that fails on bad input leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from transcend import __version__
from transcend.config import RunConfig, TrainingConfig, identity_hash
from transcend.corpus.render import render_text, render_tokens, template_texts
from transcend.corpus.store import Corpus, load_corpus, write_corpus
from transcend.corpus.tokenizer import EOS_ID, build_tokenizer
from transcend.errors import TranscendError, strict_json
from transcend.runlock import locked
from transcend.evaluate.experts_eval import best_expert, expert_accuracy, stacked
from transcend.evaluate.fit import FitGap
from transcend.evaluate.ideal import ideal_accuracy, writes_per_answer, writes_per_query
from transcend.evaluate.exact import ExactScorer, LabScorer
from transcend.evaluate.selection import selection_metrics
from transcend.evaluate.stats import gap_bootstrap_ci
from transcend.experts.denoising import denoising_panel
from transcend.experts.panel import ExpertPanel
from transcend.corpus.phrasing import sentence_forms
from transcend.corpus.two_hop_text import generalization_tokenizer, tokenize_units, unit_texts
from transcend.evaluate import two_hop as two_hop_eval
from transcend.experts.generalization import (SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALIDATION, GeneralizationPanel,
                                              generalization_panel)
from transcend.experts.selection import SelectionPanel, save_areas, selection_panel
from transcend.experts.writing import sentences_per_paragraph, write_paragraphs
from transcend.learner.log import LOG as TRAIN_LOG, TrainLog
from transcend.learner import hf
from transcend.learner.model import GPT, GPTConfig
from transcend.learner.train import (CHECKPOINT, passes_for, pick_device, resolved, train, training_processes,
                                     training_threads)
from transcend.theory import (denoising_wrong_rate, majority_vote_accuracy, plurality_accuracy,
                              selection_vote_accuracy)
from transcend.world.kg import KnowledgeGraph, generate_graph
from transcend.world.triples import load_triples

METRICS = "metrics.json"
CONFIG = "config.toml"
IDENTITY = "identity.json"  # what the run was made from (config and content hash of the user's files)
LOCK = ".lock"  # held by the process writing the run folder
PLOT = "accuracy_vs_temperature.png"
PLOT_TWO_HOP = "two_hop_accuracy.png"
AREAS = "areas.npy"
FORMS_SAMPLE = 2000  # one-hop paragraphs over which phrasing variety is measured


def tau_key(tau: float) -> str:
    """JSON key of a temperature: "0" for greedy, else the float as Python writes it ("1.0")."""
    return "0" if tau == 0 else repr(float(tau))


def build_world(cfg: RunConfig) -> KnowledgeGraph:
    if cfg.world.triples is not None:
        return load_triples(cfg.world.triples, cfg.world.types)
    return generate_graph(cfg.world.num_entities, cfg.seed, edges_per_entity=2.18,
                          multiplicity=cfg.world.tails_per_query, dense=cfg.world.is_dense)


#: Rough bytes held per expert belief (panel arrays and their sort) and per written sentence (writing arrays,
#: rendering and the token stream); used only to refuse a size that cannot fit in memory before building it.
BYTES_PER_BELIEF = 100
BYTES_PER_SENTENCE = 300


def check_fits_in_memory(cfg: RunConfig, kg: KnowledgeGraph) -> None:
    """Refuse, in one sentence, experts or paragraphs so many that the panel or corpus cannot fit in this
    machine's memory (instead of a MemoryError after minutes of work)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return  # the platform does not say: nothing to check against
    heads = max(len(np.unique(kg.heads)), 1)
    sentences = (cfg.corpus.paragraphs * max(kg.num_edges / heads, 1.0) if cfg.corpus.paragraphs
                 else cfg.corpus.writes_per_query * len(kg.queries[0]))
    need = {"experts.experts (--experts)": cfg.experts.experts * kg.num_edges * BYTES_PER_BELIEF,
            "corpus.paragraphs (--paragraphs)": sentences * BYTES_PER_SENTENCE}
    for name, size in need.items():
        if size > total:
            raise TranscendError(f"{name} is too large for this machine: it needs about {size / 2**30:,.0f} GiB "
                                 f"of memory and there are {total / 2**30:,.0f} GiB; lower it.")


def sentence_end_ids(tok) -> tuple[int, ...]:
    """Token ids that end a sentence in the lab's corpora: "." (when the tokenizer knows it)."""
    return tuple(i for i in (tok.token_to_id(p) for p in (".",)) if i is not None)


def areas_cache_dir(out: Path) -> Path:
    """Where selection runs beside ``out`` share their clusterings (a sweep clusters once)."""
    return Path(out).parent / ".cache" / "areas"


def build_panel(cfg: RunConfig, kg: KnowledgeGraph, cache_dir: Path | None = None) -> ExpertPanel:
    """The experts of ``cfg.mode``; ``cache_dir`` caches the clustering of the world (selection, generalization)."""
    if cfg.mode == "generalization":
        return generalization_panel(kg, cfg.experts.experts, cfg.two_hop.train, cfg.two_hop.validation, cfg.seed,
                                    cache_dir=cache_dir)
    if cfg.mode == "selection":
        return selection_panel(kg, cfg.experts.experts, cfg.experts.coverage, cfg.experts.alpha,
                               cfg.experts.clusters, cfg.seed, cache_dir=cache_dir)
    return denoising_panel(kg, cfg.experts.experts, cfg.experts.coverage, cfg.seed, rho=cfg.experts.rho)


#: The config sections a corpus depends on (the two-hop section too, in generalization mode).
CORPUS_SECTIONS = ("world", "experts", "corpus", "two_hop")


def corpus_key(cfg: RunConfig) -> str:
    """The hash of everything a corpus depends on."""
    return cfg.stage_hash(*CORPUS_SECTIONS)


def build_corpus(cfg: RunConfig, kg: KnowledgeGraph, panel: ExpertPanel, path: Path,
                 log=lambda msg: print(msg, file=sys.stderr)) -> Corpus:
    """Reuse the corpus in ``path`` if the same config and world made it and every file matches its
    manifest hash; else (re)build it, saying why. ``path`` may be a link to a shared corpus."""
    path = Path(path).resolve() if Path(path).is_symlink() else Path(path)
    with locked(path.with_name(f".{path.name}.lock"), f"corpus {path}", log=log):
        corpus_hash = corpus_key(cfg)
        if (path / "manifest.json").is_file():
            try:
                existing = load_corpus(path)
            except TranscendError as e:
                log(f"rebuilding corpus {path}: {e}")
            else:
                if existing.manifest.get("config_hash") != corpus_hash:
                    pass  # another config's corpus: replaced by this one's
                elif existing.manifest.get("world_fingerprint") != kg.fingerprint():
                    log(f"rebuilding corpus {path}: it was written from another world than this run's")
                else:
                    return existing
        return _write_corpus_of(cfg, kg, panel, path, corpus_hash)


def corpus_paragraphs(cfg: RunConfig, panel: ExpertPanel) -> int:
    """Paragraphs the corpus holds: ``corpus.paragraphs``, or (0) as many as give each query of the graph
    ``corpus.writes_per_query`` sentences on average.

    The corpus's sentences per paragraph are the writing model's own expectation
    (``sentences_per_paragraph``), experts weighted as ``write_paragraphs`` weighs them."""
    if cfg.corpus.paragraphs:
        return cfg.corpus.paragraphs
    weights = panel.cluster_sizes if isinstance(panel, GeneralizationPanel) else None
    per_paragraph = sentences_per_paragraph(panel, weights)
    if per_paragraph == 0:
        raise TranscendError("the experts can write nothing: the corpus would be empty.")
    return max(1, math.ceil(cfg.corpus.writes_per_query * len(panel.kg.queries[0]) / per_paragraph))


def _write_corpus_of(cfg: RunConfig, kg: KnowledgeGraph, panel: ExpertPanel, path: Path,
                     corpus_hash: str) -> Corpus:
    if isinstance(panel, GeneralizationPanel):
        return _build_generalization_corpus(cfg, kg, panel, path, corpus_hash)
    writing = write_paragraphs(panel, corpus_paragraphs(cfg, panel), cfg.seed)
    if writing.num_sentences == 0:
        raise TranscendError("the experts wrote nothing: the corpus would be empty; raise --paragraphs.")
    tok = build_tokenizer(kg.entity_names, template_texts(kg))
    stream = render_tokens(writing, kg, tok)
    return write_corpus(path, stream, tok, writing, kg, corpus_hash)


def _build_generalization_corpus(cfg: RunConfig, kg: KnowledgeGraph, panel: GeneralizationPanel, path: Path,
                                 corpus_hash: str) -> Corpus:
    """One-hop paragraphs (experts weighted by their cluster's size) and the training two-hop facts, phrased."""
    writing = write_paragraphs(panel, corpus_paragraphs(cfg, panel), cfg.seed, expert_weights=panel.cluster_sizes)
    units = _generalization_units(cfg, kg, panel, writing)
    tok = generalization_tokenizer(kg)
    stream = tokenize_units(units.texts, tok)
    one_hop_texts = [t for t, two in zip(units.texts, units.is_two_hop) if not two][:FORMS_SAMPLE]
    forms = sentence_forms(one_hop_texts, kg.entity_names, [r.name for r in kg.relations])
    written = [v for v in forms.values() if v > 0]
    info = {"two_hop_units": int(units.is_two_hop.sum()),
            "one_hop_forms_per_relation": float(np.mean(written)) if written else 0.0}
    f = panel.two_hop
    arrays = {"two_hop": {"a": f.a, "r1": f.r1, "b": f.b, "r2": f.r2, "c": f.c, "split": panel.split}}
    return write_corpus(path, stream, tok, writing, kg, corpus_hash, sample_texts=units.texts,
                        arrays=arrays, info=info)


def _differences(recorded: dict, now: dict, prefix: str = "") -> list[str]:
    """``key = old (now new)`` for every leaf where two identities differ."""
    out = []
    for k in sorted(set(recorded) | set(now)):
        a, b = recorded.get(k), now.get(k)
        if isinstance(a, dict) or isinstance(b, dict):
            out += _differences(a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k} = {a!r} (now {b!r})")
    return out


def _generalization_units(cfg: RunConfig, kg: KnowledgeGraph, panel: GeneralizationPanel, writing):
    th = cfg.two_hop
    train = panel.two_hop.subset(np.flatnonzero(panel.split == SPLIT_TRAIN))
    return unit_texts(writing, kg, train, repeat=th.repeat, phrasing=th.phrasing,
                      two_hop_phrasing=th.two_hop_phrasing, cot=th.cot, seed=cfg.seed)


def corpus_texts(cfg: RunConfig, kg: KnowledgeGraph, panel: ExpertPanel, corpus: Corpus) -> list[str]:
    """The corpus as text, one unit (paragraph) per entry, in stream order: what another tokenizer reads."""
    if isinstance(panel, GeneralizationPanel):
        return _generalization_units(cfg, kg, panel, corpus.writing).texts
    return render_text(corpus.writing, kg, range(corpus.writing.num_paragraphs))


def build_learner(cfg: RunConfig, kg: KnowledgeGraph, panel: ExpertPanel, corpus: Corpus):
    """(model, token stream, its special ids for ``train``, the scorer) of ``[model] model``."""
    torch.manual_seed(cfg.seed)
    m = cfg.model
    if m.model is None:  # the lab's GPT on the lab's tokens
        gpt = GPTConfig(vocab_size=corpus.manifest["vocab_size"], block_size=m.block_size,
                        n_layer=m.n_layer, n_head=m.n_head, n_embd=m.n_embd)
        return GPT(gpt), corpus.tokens(), {"boundary_ids": sentence_end_ids(corpus.tokenizer)}, \
            LabScorer(corpus.tokenizer, kg)
    learner = hf.build_learner(m.model, m.tokenizer, m, corpus.tokenizer, cfg.seed)
    special = {"eos_id": learner.eos_id, "pad_id": learner.pad_id}
    if learner.lab_tokenizer:
        return learner.model, corpus.tokens(), {**special, "boundary_ids": sentence_end_ids(corpus.tokenizer)}, \
            LabScorer(corpus.tokenizer, kg)
    sentences = hf.sentence_texts(corpus_texts(cfg, kg, panel, corpus), corpus.tokenizer,
                                  sentence_end_ids(corpus.tokenizer))
    stream, starts = hf.tokenize_texts(sentences, learner.tokenizer, learner.eos_id)
    return learner.model, stream, {**special, "sentence_starts": starts}, \
        ExactScorer(learner.tokenizer, learner.eos_id, kg)


def resolved_training(cfg: RunConfig, kg: KnowledgeGraph, corpus: Corpus, model, stream: np.ndarray,
                      special: dict) -> tuple[TrainingConfig, float]:
    """The training config with window and steps derived from this corpus (``learner.train.resolved``),
    and the corpus's writes per distinct answer that the derived passes follow."""
    repeats = writes_per_answer(corpus.writing, kg)
    tc = resolved(cfg.training, stream, model.cfg.block_size, special.get("boundary_ids", ()),
                  eos_id=special.get("eos_id", EOS_ID), sentence_starts=special.get("sentence_starts"),
                  writes_per_answer=repeats)
    return tc, repeats


def fit_gap_of(cfg: RunConfig, kg: KnowledgeGraph, panel, corpus: Corpus, device: torch.device) -> FitGap | None:
    """The fit gap of the lab's GPT on this corpus (``evaluate.fit``), or None where it is not measured: a
    Hugging Face model (its entity names are several tokens) and the generalization mode (its corpus also
    teaches two-hop answers the one-hop gap does not count)."""
    if cfg.model.model is not None or isinstance(panel, GeneralizationPanel):
        return None
    return FitGap(kg, corpus.tokenizer, corpus.writing, device)


def _prepare_run_dir(cfg: RunConfig, out: Path, resume: bool) -> dict | None:
    """Check ``out`` against the config; returns cached metrics if this run already finished.

    The run's identity (config, content hash of the user's files) recorded when it started must equal
    this one's: an edited graph or an edited config.toml in the folder is refused, naming what differs."""
    if not out.exists():
        if resume:
            raise TranscendError(f"nothing to resume: run folder {out} does not exist.")
        return None
    if not (out / CONFIG).is_file():
        if out.is_dir() and not [p for p in out.iterdir() if p.name != LOCK]:
            if resume:
                raise TranscendError(f"nothing to resume: run folder {out} is empty.")
            return None
        raise TranscendError(f"{out} exists and is not a transcend run folder; choose another --out.")
    saved = RunConfig.load(out / CONFIG)
    recorded = _recorded_identity(out, saved)
    diff = _differences(recorded, cfg.identity())
    if diff:
        more = f" and {len(diff) - 3} more" if len(diff) > 3 else ""
        if all(d.startswith("code.") for d in diff):  # the same config, run by other code
            groups = ", ".join(d.split(" ")[0].removeprefix("code.") for d in diff)
            which = (f"other transcend code ({groups}: {'; '.join(diff[:3])}{more})" if recorded.get("code")
                     else "a transcend that did not record its code")
            raise TranscendError(f"run folder {out} holds a run made by {which}, so its corpus, checkpoint or "
                                 "metrics may not be this code's; choose another --out, or delete the folder to run "
                                 "it again.")
        raise TranscendError(f"run folder {out} holds a run made with {'; '.join(diff[:3])}{more}; "
                             "choose another --out, or delete the folder to run it again.")
    if (out / METRICS).is_file():
        try:
            return json.loads((out / METRICS).read_text())
        except (OSError, ValueError):
            if not resume:
                raise TranscendError(f"run folder {out} holds a damaged {METRICS}; pass --resume to "
                                     "evaluate the trained model again.") from None
            return None
    if not resume:
        raise TranscendError(f"run folder {out} holds an unfinished run of this config; "
                             "pass --resume to continue it, or choose another --out.")
    return None


def _recorded_identity(out: Path, saved: RunConfig) -> dict:
    """The identity written when the run in ``out`` started (folders from before it was written: the
    saved config, checked against the config hash its metrics recorded)."""
    try:
        return json.loads((out / IDENTITY).read_text())["identity"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    identity = saved.identity(code=False)  # the code that made it was not recorded: it differs from any code
    try:
        made_by = json.loads((out / METRICS).read_text()).get("config_hash")
    except (OSError, ValueError, AttributeError):
        made_by = None
    if made_by not in (None, identity_hash(identity)):
        identity["config.toml"] = f"edited after the run (it was made by config {made_by})"
    return identity


def write_identity(cfg: RunConfig, out: Path) -> None:
    _write_json(out / IDENTITY, {"config_hash": cfg.hash(), "transcend": __version__, "identity": cfg.identity()})


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(strict_json(obj, indent=2) + "\n")
    os.replace(tmp, path)


def run(cfg: RunConfig, out: Path, *, resume: bool = False, progress: bool = True,
        stop_after: int | None = None, log=lambda msg: print(msg, file=sys.stderr),
        progress_lines: bool = False, tensorboard: bool = False) -> dict:
    """Execute (or finish, or reuse) the run of ``cfg`` in folder ``out``; returns its metrics.

    Training appends to ``out/train_log.jsonl``; ``progress_lines`` prints a plain line to stderr every
    5% of the steps (for logs that are not a terminal); ``tensorboard`` also writes event files."""
    out = Path(out)
    if resume and not out.exists():
        raise TranscendError(f"nothing to resume: run folder {out} does not exist.")
    device = pick_device(cfg.device)
    existed = out.exists()
    try:
        with locked(out / LOCK, f"run folder {out}", log=log):
            return _run_locked(cfg, out, device, resume, progress, stop_after, log, progress_lines, tensorboard)
    except BaseException as e:
        if not existed and not (isinstance(e, KeyboardInterrupt) and (out / "checkpoints" / CHECKPOINT).is_file()):
            if out.is_dir() and not (out / CONFIG).is_file():
                shutil.rmtree(out, ignore_errors=True)  # only the lock was written: leave nothing behind
        raise


def _run_locked(cfg: RunConfig, out: Path, device: torch.device, resume: bool, progress: bool,
                stop_after: int | None, log, progress_lines: bool, tensorboard: bool) -> dict:
    cached = _prepare_run_dir(cfg, out, resume)
    if cached is not None:
        log(f"run {out} already finished; reusing its metrics")
        return cached
    if cfg.model.model is not None:
        hf.resolve(cfg.model.model, cfg.model.tokenizer)  # a missing folder fails before anything is written
    timings: dict[str, float] = {}
    t = time.perf_counter()
    kg = build_world(cfg)  # bad triples files fail here, before anything is written
    check_fits_in_memory(cfg, kg)
    panel = build_panel(cfg, kg, areas_cache_dir(out))
    timings["world_and_experts_s"] = time.perf_counter() - t
    # before the corpus and the training (the work), after the input checks that need the world and the
    # experts, so that a refused input stays a single sentence
    for w in cfg.warnings():
        log(f"warning: {w}")

    created = not (out / CONFIG).is_file()
    try:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / CONFIG)
        write_identity(cfg, out)
        if isinstance(panel, SelectionPanel):
            save_areas(panel.areas, out / AREAS)  # the areas of expertise this run used
        t = time.perf_counter()
        corpus = build_corpus(cfg, kg, panel, out / "corpus", log=log)
        timings["corpus_s"] = time.perf_counter() - t
        log(f"corpus: {corpus.manifest['num_paragraphs']} paragraphs, {corpus.manifest['num_tokens']} tokens, "
            f"{corpus.manifest['num_queries']} queries")

        model, stream, special, scorer = build_learner(cfg, kg, panel, corpus)
        tc, repeats = resolved_training(cfg, kg, corpus, model, stream, special)
        procs = training_processes(model, tc, device)
        on = ("" if device.type != "cpu" else f" in {procs} processes of one CPU thread (training.batch_parts "
              f"{tc.batch_parts} a step)" if procs > 1 else f" on {training_threads(model, tc)} CPU thread(s)")
        passes = "" if cfg.training.steps else (
            # "at least": true also where the passes give exactly training.min_steps
            f" (training.min_steps: at least {passes_for(cfg.training, repeats):.2f} passes)"
            if tc.steps == cfg.training.min_steps else
            f" ({passes_for(cfg.training, repeats):.2f} passes; {repeats:.2f} writes per distinct answer)")
        fit = fit_gap_of(cfg, kg, panel, corpus, device)
        fitting = fit is not None and not cfg.training.steps and cfg.training.fit_gap > 0  # as train() decides
        cycles = (f", then up to {cfg.training.max_cycles - 1} more such cycles while the fit gap is above "
                  f"{cfg.training.fit_gap:g}" if fitting and cfg.training.max_cycles > 1 else "")
        log(f"training: {tc.steps} steps of {tc.batch_size} windows of {tc.window} tokens{on}{passes}{cycles}")
        t = time.perf_counter()
        # the config as given: train() derives the same window and steps (tc) and knows they were derived
        result = train(model, stream, cfg.training, out / "checkpoints", seed=cfg.seed, writes_per_answer=repeats,
                       resume=(out / "checkpoints" / CHECKPOINT).is_file(), device=device, progress=progress,
                       stop_after=stop_after, log=TrainLog(out / TRAIN_LOG, tensorboard=tensorboard,
                                                           lines_every=max(1, tc.steps // 20) * progress_lines),
                       fit=fit, say=log, **special)
        timings["train_s"] = time.perf_counter() - t
        if result["steps"] < result["planned_steps"] or (fitting and len(result["fit_gaps"]) < result["cycles"]):
            raise KeyboardInterrupt  # stopped early on purpose (tests): leave the run resumable

        t = time.perf_counter()
        if isinstance(panel, GeneralizationPanel):
            metrics = evaluate_generalization(cfg, kg, panel, corpus, model, device, scorer)
        else:
            metrics = evaluate(cfg, kg, panel, corpus, model, device, scorer)
        if cfg.model.model is not None:
            metrics["learner"] = {"model": cfg.model.model, "tokenizer": cfg.model.tokenizer or "the model's",
                                  "scoring": type(scorer).__name__}
        timings["eval_s"] = time.perf_counter() - t
        metrics["training"] = {"final_loss": float(np.mean(result["losses"][-20:])),
                               "tokens_per_s_last_session": result["tokens_per_s"],
                               "parameters": model.num_params(), "steps": result["planned_steps"],
                               "cycles": result["cycles"],  # keyed by cycle: a list of two reads as an interval
                               "fit_gap_by_cycle": {str(i + 1): g for i, g in enumerate(result["fit_gaps"])},
                               "window": tc.window, "batch_size": tc.batch_size}
        if fit is not None:
            metrics["model_fit_gap"] = fit(model)
        metrics["timings"] = timings
        metrics["warnings"] = cfg.warnings()  # settings that make no sense together (also said before the run)
        metrics["run_dir"] = str(out)
        metrics["config_hash"] = cfg.hash()
        metrics["environment"] = {"transcend": __version__, "python": platform.python_version(),
                                  "torch": torch.__version__, "numpy": np.__version__, "device": str(device)}
        from transcend.report.plot import plot_accuracy_vs_temperature, plot_two_hop
        if cfg.mode == "generalization":
            plot_two_hop(metrics, out / PLOT_TWO_HOP)
        else:
            plot_accuracy_vs_temperature(metrics, out / PLOT)
        _write_json(out / METRICS, metrics)  # last: its presence marks the run finished
        return metrics
    except KeyboardInterrupt:
        if (out / "checkpoints" / CHECKPOINT).is_file():
            log(f"interrupted; continue with --resume --out {out}")
        elif created:
            _empty(out)
        raise
    except BaseException:
        if created:
            _empty(out)
        raise


def _empty(out: Path) -> None:
    """Remove what a failed run wrote into ``out`` (not the lock it still holds; the caller removes the
    folder once the lock is released)."""
    for p in out.iterdir():
        if p.name != LOCK:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)


def evaluate(cfg: RunConfig, kg: KnowledgeGraph, panel: ExpertPanel, corpus: Corpus, model: GPT,
             device: torch.device, scorer: LabScorer | ExactScorer | None = None) -> dict:
    """Model, experts, ideal learner and theory on every (head, relation) query."""
    taus = cfg.eval.temperatures
    model_q = (scorer or LabScorer(corpus.tokenizer, kg)).one_hop(model, taus, device)
    experts_all = expert_accuracy(panel, sorted(set(taus) | {1.0}))  # tau = 1: r_x(f_i) of the covariance
    experts_q = {t: experts_all[t] for t in taus}
    best_i, best_tau, best, _ = best_expert(experts_q)
    ideal_q = ideal_accuracy(corpus.writing, kg, taus)
    writes = writes_per_query(corpus.writing, kg)
    _, qr = kg.queries
    R = range(len(kg.relations))
    candidates = np.array([len(kg.slot_pool(r, "tail")) for r in R])[qr]
    holding = np.bincount(qr, minlength=len(R)) / np.array([max(len(kg.slot_pool(r, "head")), 1) for r in R])
    wrong = denoising_wrong_rate(cfg.experts.coverage, holding[qr])
    # The theory of the ideal learner: the plurality of what this panel writes, from the writing model.
    theory_by_tau = plurality_accuracy(panel, corpus_paragraphs(cfg, panel), sorted(set(taus) | {1.0}), seed=cfg.seed)
    if cfg.mode == "selection":  # the abstract vote model: writers weighted by what they know
        theory_q, theory_tau1_q = selection_vote_accuracy(
            cfg.experts.experts, cfg.experts.coverage, cfg.experts.alpha, writes, candidates, wrong,
            seed=cfg.seed, trials=cfg.eval.theory_trials)
    else:
        theory_q = majority_vote_accuracy(cfg.experts.experts, cfg.experts.coverage, writes, candidates, wrong,
                                          seed=cfg.seed, trials=cfg.eval.theory_trials, rho=cfg.experts.rho or 0.0)
    by_tau = {t: experts_q[t].mean(axis=1) for t in taus}
    expert_best = np.max(np.stack(list(by_tau.values())), axis=0)  # each expert at its own best temperature
    gap = float(model_q[0.0].mean()) - best
    # The best expert is re-picked among every (expert, temperature) in each resample.
    lo, hi = gap_bootstrap_ci(model_q[0.0], stacked(experts_q), seed=cfg.seed, resamples=cfg.eval.bootstrap)
    metrics = {
        "mode": cfg.mode,
        "experts": cfg.experts.experts,
        "coverage": cfg.experts.coverage,
        "world": kg.summary(),
        "expert_accuracies": [float(a) for a in expert_best],
        "expert_accuracies_by_temperature": {tau_key(t): [float(a) for a in v] for t, v in by_tau.items()},
        "best_expert_accuracy": best,
        "best_expert": best_i,
        "best_expert_temperature": best_tau,
        "expert_mean_accuracy": float(expert_best.mean()),
        "ideal_learner_accuracy": float(ideal_q[0.0].mean()),
        "ideal_learner_by_temperature": {tau_key(t): float(ideal_q[t].mean()) for t in taus},
        "theory_accuracy": float(theory_by_tau[0.0].mean()),
        "theory_by_temperature": {tau_key(t): float(theory_by_tau[t].mean()) for t in taus},
        "vote_model_accuracy": float(theory_q.mean()),
        "model_accuracy": {tau_key(t): float(model_q[t].mean()) for t in taus},
        "model_fraction_of_ideal": float(model_q[0.0].mean() / max(ideal_q[0.0].mean(), 1e-12)),
        "transcendence_gap": gap,
        "gap_ci95": [lo, hi],
        "mean_writes_per_query": float(writes.mean()),
        # Where the corpus answers a query the ideal learner counts its writes; where it never does, it
        # falls back to the relation's tails: the model's fit of the data, and its guess beyond it.
        "by_written": {name: {"share": float(m.mean()), "model": float(model_q[0.0][m].mean()) if m.any() else None,
                              "ideal_learner": float(ideal_q[0.0][m].mean()) if m.any() else None}
                       for name, m in (("written", writes > 0), ("unwritten", writes == 0))},
        "corpus": {k: corpus.manifest[k] for k in ("num_tokens", "num_paragraphs", "num_sentences", "num_queries")},
    }
    if cfg.mode == "selection":
        metrics["alpha"] = cfg.experts.alpha
        metrics["clusters"] = panel.num_clusters
        metrics["theory_tau1_accuracy"] = float(theory_by_tau[1.0].mean())
        metrics["vote_model_tau1_accuracy"] = float(theory_tau1_q.mean())
        ideal_tau1 = ideal_q[1.0] if 1.0 in ideal_q else ideal_accuracy(corpus.writing, kg, [1.0])[1.0]
        metrics.update(selection_metrics(corpus.writing, panel, experts_all, ideal_tau1, cfg.experts.coverage,
                                         model_q[0.0]))
        metrics["model_fraction_of_ceiling"] = float(model_q[0.0].mean() / max(metrics["ceiling"], 1e-12))
    return metrics


def evaluate_generalization(cfg: RunConfig, kg: KnowledgeGraph, panel: GeneralizationPanel, corpus: Corpus,
                            model: GPT, device: torch.device, scorer: LabScorer | ExactScorer | None = None) -> dict:
    """One-hop accuracy; within-expertise (train, validation) and across-expertise (test) two-hop accuracy
    of the model, the experts and both baselines; Appendix A.2's quantities."""
    taus = cfg.eval.temperatures
    scorer = scorer or LabScorer(corpus.tokenizer, kg)
    one_hop_q = scorer.one_hop(model, taus, device, entities_only=True)
    experts_one_hop = expert_accuracy(panel, taus)
    R = len(kg.relations)
    train = panel.two_hop.subset(np.flatnonzero(panel.split == SPLIT_TRAIN))
    sets = {}
    for name, code in (("train", SPLIT_TRAIN), ("within", SPLIT_VALIDATION), ("across", SPLIT_TEST)):
        q = two_hop_eval.questions_of(panel.two_hop.subset(np.flatnonzero(panel.split == code)), R)
        if cfg.two_hop.cot:
            model_q, bridge_q = scorer.cot(model, q, device)
        else:
            model_q, bridge_q = scorer.latent(model, q, device), None
        entry = {"questions": len(q), "model_accuracy": float(model_q.mean()) if len(q) else None}
        if bridge_q is not None:
            entry["bridge_accuracy"] = float(bridge_q.mean()) if len(q) else None
        if name != "train" and len(q):
            experts_q = two_hop_eval.expert_two_hop_accuracy(q, kg, panel.areas, taus)
            direct, linked = two_hop_eval.direct_connection_baseline(q, kg)
            best_i, best_tau, best, _ = best_expert(experts_q)
            lo, hi = gap_bootstrap_ci(model_q, stacked(experts_q), seed=cfg.seed, resamples=cfg.eval.bootstrap)
            majority = two_hop_eval.majority_relation_baseline(q, kg)
            pair = two_hop_eval.relation_pair_baseline(q, kg, train)
            beyond = (majority == 0) & (pair == 0)  # questions no prior answers: only composition does
            entry.update({
                "majority_relation_baseline": float(majority.mean()),
                "relation_pair_baseline": float(pair.mean()),
                "beyond_priors_questions": int(beyond.sum()),
                "model_accuracy_beyond_priors": float(model_q[beyond].mean()) if beyond.any() else None,
                "direct_connection_baseline": float(direct.mean()),
                "answer_linked_to_head": float(linked.mean()),
                "best_expert_accuracy": best, "best_expert": best_i, "best_expert_temperature": best_tau,
                "transcendence_gap": float(model_q.mean()) - best, "gap_ci95": [lo, hi]})
        sets[name] = entry
    return {
        "mode": cfg.mode,
        "experts": cfg.experts.experts,
        "coverage": 1.0,
        "world": kg.summary(),
        "two_hop_config": {k: getattr(cfg.two_hop, k) for k in ("train", "repeat", "validation", "phrasing",
                                                                 "two_hop_phrasing", "cot")},
        "one_hop_accuracy": float(one_hop_q[0.0].mean()),
        "model_accuracy": {tau_key(t): float(one_hop_q[t].mean()) for t in taus},
        "one_hop_best_expert_accuracy": best_expert(experts_one_hop)[2],
        "two_hop": sets,
        "within_expertise_accuracy": sets["within"]["model_accuracy"],
        "across_expertise_accuracy": sets["across"]["model_accuracy"],
        "appendix_a2": two_hop_eval.appendix_a2(kg, panel.areas, train),
        "cluster_sizes": [int(x) for x in panel.cluster_sizes],
        "corpus": {k: corpus.manifest[k] for k in ("num_tokens", "num_paragraphs", "num_sentences", "num_queries",
                                                   "two_hop_units", "one_hop_forms_per_relation")},
    }
