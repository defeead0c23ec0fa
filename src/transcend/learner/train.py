"""Training: Muon for hidden matrices and AdamW for the rest, linear warm-up and cosine decay,
periodic atomic checkpoints, resume.

Batches are a pure function of (seed, step): windows of the token stream that
start at sentence boundaries (and every half window inside anything longer), so
every token of every paragraph is trained on whatever the paragraph's length. A
resumed run therefore sees exactly the batches an uninterrupted run would, and
(on CPU) reaches the same weights.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from transcend.config import TrainingConfig
from transcend.corpus.tokenizer import EOS_ID, PAD_ID
from transcend.errors import TranscendError
from transcend.learner.log import TrainLog
from transcend.learner.model import GPT

CHECKPOINT = "latest.pt"


# Below this many parameters a training step is hundreds of small operations, and a second torch
# thread costs more (waking it for every operation) than it saves: measured on 2 cores at the lab's
# default shape (0.5 M parameters), two threads ran slower than one alone, and beside a busy process
# two threads fell far below one (bench/bench_threads.py, bench/RESULTS.md).
SMALL_MODEL_PARAMETERS = 10_000_000


def cpu_threads(workers: int = 1) -> int:
    """Torch threads for one of ``workers`` processes training side by side on this machine's CPUs: the
    cores this process may run on (its affinity, not the machine's count), divided among the workers.

    The count does not follow the machine's load: the thread count changes the order of floating-point
    sums, so a load-dependent count would make the same config give different weights on a busy and an
    idle machine. ``training_threads`` lowers it to one for small models; the OpenMP wait policy
    (``transcend/__init__.py`` sets ``OMP_WAIT_POLICY=passive`` before torch starts) makes a thread that
    finishes its share sleep rather than spin on the core another process needs.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def training_threads(model: torch.nn.Module, cfg: TrainingConfig) -> int:
    """Torch threads a CPU training run uses: ``cfg.threads`` if set; else one for a model under
    ``SMALL_MODEL_PARAMETERS`` parameters, and otherwise the threads this process was given (torch's
    count: all cores, ``OMP_NUM_THREADS``, or a sweep worker's share from ``cpu_threads``). A pure
    function of the config and the machine's cores, never of its load (see ``cpu_threads``)."""
    if cfg.threads:
        return cfg.threads
    if sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS:
        return 1
    return torch.get_num_threads()


def training_processes(model: torch.nn.Module, cfg: TrainingConfig, device: torch.device,
                       given: int | None = None) -> int:
    """Processes that compute a CPU step's ``cfg.batch_parts`` parts at once: where the threads are derived
    (``cfg.threads`` 0) and the model trains on one (``training_threads``), one per part, up to the threads
    this process was given (``given``, else torch's count: all cores, ``OMP_NUM_THREADS`` or a sweep
    worker's share); else one. Forking is Linux's (elsewhere one process computes the parts in turn).

    Unlike a second torch thread, a second process is woken once a step, not once an operation, and a
    busy neighbour slows it without stalling the other (``bench/bench_threads.py``). The parts' gradients
    are summed in part order whoever computed them, so the count changes the speed, never the weights."""
    if device.type != "cpu" or cfg.threads or cfg.batch_parts < 2 or not sys.platform.startswith("linux"):
        return 1
    if sum(p.numel() for p in model.parameters()) >= SMALL_MODEL_PARAMETERS:  # all threads, one process
        return 1
    return max(1, min(cfg.batch_parts, given or torch.get_num_threads()))


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TranscendError("device 'cuda' was asked for but no CUDA GPU is available; use 'cpu' or 'auto'.")
    if name not in ("cpu", "cuda"):
        raise TranscendError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}.")
    return torch.device(name)


def lr_factor(step: int, cfg: TrainingConfig) -> float:
    """The schedule as a fraction of the peak learning rate: linear warm-up, then cosine decay."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine


def lr_at(step: int, cfg: TrainingConfig) -> float:
    """AdamW's learning rate at ``step``."""
    return cfg.lr * lr_factor(step, cfg)


def window_starts(stream: np.ndarray, block_size: int, boundary_ids: tuple[int, ...] = (), *,
                  eos_id: int = EOS_ID, sentence_starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Where training windows start: (sentence starts, other starts).

    A sentence start is the first token of a paragraph (after ``eos_id``) or of a sentence (after a token
    in ``boundary_ids``, a sentence's end, or at a position in ``sentence_starts``, where another tokenizer's
    corpus records them: ``hf.tokenize_texts``); the other starts lie every ``block_size // 2`` tokens inside any
    stretch between sentence starts longer than a window, so each token is inside the window of its own
    sentence or inside one with at least half a window of context before it."""
    stream = np.asarray(stream)
    after = np.r_[True, stream[:-1] == eos_id]
    if boundary_ids:
        after[1:] |= np.isin(stream[:-1], boundary_ids)
    if sentence_starts is not None:
        after[np.asarray(sentence_starts, dtype=np.int64)] = True
    sentence = np.flatnonzero(after & (stream != eos_id))
    if len(sentence) == 0:
        return sentence, sentence
    half = max(1, block_size // 2)
    ends = np.r_[sentence[1:], len(stream)]
    extra = [np.arange(a + half, b, half) for a, b in zip(sentence, ends) if b - a > block_size]
    other = np.concatenate(extra) if extra else np.zeros(0, dtype=sentence.dtype)
    return sentence, other


def sentence_window(stream: np.ndarray, block_size: int, boundary_ids: tuple[int, ...] = (), *,
                    eos_id: int = EOS_ID, sentence_starts: np.ndarray | None = None) -> int:
    """The training window a corpus needs: the smallest power of two that holds its longest sentence (or
    paragraph, without sentence ends) after one leading separator, at most ``block_size``.

    Every sentence then fits whole in the window that starts at it, after the separator, as a query's
    prompt and answer do, and the rest of the window holds the start of the next sentence, trained on in
    its paragraph's context. Measured (docs/learner.md): the exact length (longest sentence + 1, 11 tokens
    on the default world instead of 16) trains a third faster and fits the default world slightly better,
    but at 100 experts and c = 0.2 it reached 0.59 of the ideal learner where 16 reached 0.78: there the
    second sight of each fact, in the previous sentence's window, is what the model needs most."""
    sentence, _ = window_starts(stream, 1 << 30, boundary_ids, eos_id=eos_id, sentence_starts=sentence_starts)
    if len(sentence) == 0:
        return block_size
    longest = int(np.diff(np.r_[sentence, len(stream)]).max())
    return int(min(block_size, 1 << math.ceil(math.log2(longest + 1))))


def passes_for(cfg: TrainingConfig, writes_per_answer: float | None) -> float:
    """Passes over the windows when ``cfg.steps`` is 0: ``cfg.passes``, or more where the corpus says each
    thing only a few times: enough that each distinct (query, answer) it writes, written
    ``writes_per_answer`` times on average, is seen ``cfg.exposures`` times.

    What a pass teaches a query is its writes; a query whose writes spread over many answers, a write or two
    each (a hundred experts' disagreeing errors), has its counts seen too few times to tell its plurality
    at the passes a corpus of repeated answers needs. The default 16 exposures is what the default world's
    3.5 passes give (4.8 writes per answer: 16.9), rounded down so that world keeps its 3.5 passes (measured
    there at 0.97 of the ideal learner); a hundred experts at c = 0.2 (1.95 writes per answer) get 8.2."""
    if not cfg.exposures or not writes_per_answer:
        return cfg.passes
    return max(cfg.passes, cfg.exposures / writes_per_answer)


def resolved(cfg: TrainingConfig, stream: np.ndarray, block_size: int, boundary_ids: tuple[int, ...] = (), *,
             eos_id: int = EOS_ID, sentence_starts: np.ndarray | None = None,
             writes_per_answer: float | None = None) -> TrainingConfig:
    """``cfg`` with what it leaves to the corpus filled in: the window (``sentence_window``) and the steps
    (``passes_for`` passes over the windows, at ``batch_size * gradient_accumulation`` windows a step, and
    at least ``min_steps``: a small graph's corpus is a few hundred steps a pass, too few updates for the
    model to learn which tails each head takes; see docs/learner.md)."""
    window = cfg.window or sentence_window(stream, block_size, boundary_ids, eos_id=eos_id,
                                           sentence_starts=sentence_starts)
    steps = cfg.steps
    if not steps:
        sentence, other = window_starts(stream, window, boundary_ids, eos_id=eos_id, sentence_starts=sentence_starts)
        steps = max(1, cfg.min_steps, math.ceil(passes_for(cfg, writes_per_answer) * (len(sentence) + len(other))
                                                / (cfg.batch_size * cfg.gradient_accumulation)))
    return replace(cfg, window=window, steps=steps)


class Batches:
    """Windows of ``block_size`` tokens at the starts of ``window_starts``, each led by one more token:
    ``eos_id`` before a sentence start, the stream's own token before any other start; padded at the end
    of the stream. A window runs on across sentence and paragraph ends (packing).

    Leading every sentence start with the paragraph separator makes each sentence, once per pass, the
    first sentence after ``eos_id`` with nothing else before it: exactly the context of a query prompt
    (``<|endoftext|> The {relation} of {head} is``). So the model's answer to a prompt is trained on every
    write of the query alike -- the mixture the ideal learner counts -- and not only on the writes that
    happen to open a paragraph (later sentences are also trained on in the context of their paragraph).

    ``eos_id``/``pad_id``: the paragraph separator and the padding of another tokenizer (a Hugging Face model's)."""

    def __init__(self, stream: np.ndarray, block_size: int, batch_size: int, seed: int, *,
                 eos_id: int = EOS_ID, pad_id: int = PAD_ID, boundary_ids: tuple[int, ...] = (),
                 sentence_starts: np.ndarray | None = None):
        # One separator before the stream, so that a start at position 0 has a token to lead with.
        self.stream = np.r_[eos_id, stream, np.full(block_size, pad_id)].astype(np.int64)
        self.num_tokens = len(stream)
        sentence, other = window_starts(np.asarray(stream), block_size, boundary_ids, eos_id=eos_id,
                                        sentence_starts=sentence_starts)
        if len(sentence) == 0:
            raise TranscendError("the corpus holds no paragraphs to train on.")
        self.starts = np.r_[sentence, other]
        self.leads_eos = np.r_[np.ones(len(sentence), bool), np.zeros(len(other), bool)]
        self.block_size, self.batch_size, self.seed, self.eos_id = block_size, batch_size, seed, eos_id
        self._order: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        """The order of the windows in one pass (epoch) over them: a permutation drawn from (seed, epoch)."""
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, 0x7472, epoch]).permutation(len(self.starts)))
        return self._order[1]

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Batch ``step`` holds windows step * batch_size ... of the sequence of passes, each pass a permutation
        # of all windows: every window (so every write's prompt-like context) is seen equally often.
        k = step * self.batch_size + np.arange(self.batch_size)
        n = len(self.starts)
        pick = np.concatenate([self.order(e)[k[k // n == e] % n] for e in np.unique(k // n)])
        starts = self.starts[pick]
        pos = starts[:, None] + np.arange(self.block_size + 1)  # positions in self.stream: start - 1 .. start + block - 1
        rows = self.stream[pos]
        rows[self.leads_eos[pick], 0] = self.eos_id
        x = torch.from_numpy(rows[:, :-1])
        y = torch.from_numpy(rows[:, 1:].copy())
        y[torch.from_numpy(pos[:, 1:] > self.num_tokens)] = -100  # padding is not a target
        return x, y


def save_checkpoint(path: Path, model: GPT, optims: list[torch.optim.Optimizer], step: int,
                    losses: list[float], cycles: int = 1, fit_gaps: list[float] | None = None) -> None:
    """Write atomically: a temp file in the same folder, then rename. ``cycles``: the cycles of the schedule
    planned so far; ``fit_gaps``: the fit gap measured at the end of each cycle done (``optimize``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optim": [o.state_dict() for o in optims], "step": step,
                "gpt": asdict(model.cfg), "losses": losses, "cycles": cycles, "fit_gaps": list(fit_gaps or [])},
               tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    if not path.is_file():
        raise TranscendError(f"checkpoint {path} does not exist; run without --resume to start fresh.")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for truncated/corrupt files
        raise TranscendError(f"checkpoint {path} is corrupt or not a transcend checkpoint "
                             f"({type(e).__name__}); delete it to start fresh.") from None
    if not isinstance(ckpt, dict) or not {"model", "optim", "step", "gpt"} <= set(ckpt):
        raise TranscendError(f"checkpoint {path} lacks model, optimizer or step; it is not a transcend checkpoint.")
    return ckpt


def hidden_matrices(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The matrices Muon trains: those a model names in ``hidden_matrices()`` (the GPT: every 2-D weight
    of its blocks); a model that names none is trained by AdamW alone."""
    named = getattr(model, "hidden_matrices", None)
    return list(named()) if callable(named) else []


class Muon(torch.optim.Muon):
    """``torch.optim.Muon`` with its Newton-Schulz iteration in float32 on CPU (torch's own step elsewhere).

    torch casts the momentum to bfloat16 for the iteration on every device. A CPU without bfloat16
    arithmetic (AVX2 only, as most laptops) emulates it: measured, five iterations on a 512 x 128 matrix
    took 63 ms in bfloat16 and 4.5 ms in float32, and Muon was 77% of the demo's training step. Written
    here because torch offers no dtype for the iteration; the rest of the update is torch's: the same
    state (``momentum_buffer``), momentum, Nesterov, coefficients and "match_rms_adamw" scaling. Float32
    on every CPU keeps one config's metrics the same whatever the CPU."""

    # Where set (``PartHelpers``): (params, updates, iteration's arguments) -> each update's iteration,
    # contiguous, some computed in helper processes at once; else each computed here in turn.
    orthogonalise: Callable | None = None

    def __init__(self, params, **kwargs) -> None:
        if kwargs.get("adjust_lr_fn") != "match_rms_adamw":
            raise ValueError("the lab's Muon scales its updates as AdamW's (adjust_lr_fn='match_rms_adamw') only")
        super().__init__(params, **kwargs)

    @torch.no_grad()
    def step(self, closure=None):
        if any(p.device.type != "cpu" for g in self.param_groups for p in g["params"]):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, bufs = [], [], []
            self._init_group(group, params, grads, bufs)
            mu, lr = group["momentum"], group["lr"]
            updates = []
            for g, buf in zip(grads, bufs):
                buf.lerp_(g, 1 - mu)
                updates.append(g.lerp(buf, mu) if group["nesterov"] else buf)
            args = (group["ns_coefficients"], group["ns_steps"], group["eps"])
            orthogonal = (self.orthogonalise(params, updates, args) if self.orthogonalise is not None else
                          [newton_schulz(u, *args).contiguous() for u in updates])
            for p, update in zip(params, orthogonal):
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(update, alpha=-lr * 0.2 * math.sqrt(max(p.shape[0], p.shape[1])))  # AdamW's RMS
        return loss


def newton_schulz(g: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float) -> torch.Tensor:
    """Muon's quintic Newton-Schulz orthogonalisation of ``g`` (torch's iteration), in float32."""
    a, b, c = coefficients
    x = g.float()
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)  # spectral norm at most 1
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def make_optimizers(model: torch.nn.Module, cfg: TrainingConfig, device: torch.device) -> list[torch.optim.Optimizer]:
    """``cfg.optimizer`` "muon": Muon (orthogonalised momentum, as in modded-nanogpt) on the hidden matrices
    at ``cfg.muon_lr``, AdamW on embeddings, head and vectors at ``cfg.lr``; "adamw": AdamW on everything
    (no decay on vectors). Each param group keeps its peak rate in ``peak_lr``; the schedule scales it."""
    muon = hidden_matrices(model) if cfg.optimizer == "muon" else []
    in_muon = {id(p) for p in muon}
    rest = [p for p in model.parameters() if id(p) not in in_muon]
    decay = [p for p in rest if p.dim() >= 2]
    no_decay = [p for p in rest if p.dim() < 2]
    groups = [{"params": g, "weight_decay": wd} for g, wd in ((decay, cfg.weight_decay), (no_decay, 0.0)) if g]
    optims: list[torch.optim.Optimizer] = [
        torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), fused=device.type == "cuda")]
    if muon:
        # "match_rms_adamw" scales each update to AdamW's RMS, so muon_lr is on AdamW's scale.
        optims.append(Muon(muon, lr=cfg.muon_lr, weight_decay=cfg.weight_decay, momentum=0.95,
                           adjust_lr_fn="match_rms_adamw"))
    for opt in optims:
        for g in opt.param_groups:
            g["peak_lr"] = g["lr"]
    return optims


PartGrads = Callable[[int, int], tuple[float, int, list[torch.Tensor]]]


class PartHelpers:
    """Processes forked from the training process that compute parts of each step's gradient.

    Helper ``r`` (1 .. processes - 1) computes parts ``r, r + processes, ...`` of batch ``index`` with
    ``part_grads`` and writes their gradients into buffers in shared memory; the training process computes
    the rest and sums every part in part order, as one process computing them in turn does; Muon's
    Newton-Schulz iterations are shared out the same way (``orthogonalise``), each matrix's computed as
    one process computes it. The model's parameters are moved to shared memory first, so a helper always
    reads the weights the last step made. A helper ignores Ctrl-C and ends when the training process
    closes its pipe, however that process ends.

    Written here because torch's ``DistributedDataParallel`` runs the whole optimizer step in every
    process and sums gradients in an all-reduce over a network backend (gloo on CPU); these helpers share
    the optimizer's one costly part, read and write shared memory, and sum in part order by construction."""

    def __init__(self, model: torch.nn.Module, params: list[torch.nn.Parameter], part_grads: PartGrads,
                 parts: int, processes: int, muon: Muon | None = None):
        for p in model.parameters():
            p.data.share_memory_()
        self.parts, self.processes = parts, processes
        self.shared = {part: [torch.zeros_like(p).share_memory_() for p in params]
                       for part in range(parts) if part % processes}
        # Muon's Newton-Schulz iterations (a sixth of the demo's step) are shared out too: each matrix to
        # the process with the least work so far, largest first (its cost ~ (2 * long side + short) * short^2).
        self.owner: dict[int, int] = {}
        self.ns_in: dict[int, torch.Tensor] = {}
        self.ns_out: dict[int, torch.Tensor] = {}
        self.muon = muon
        if muon is not None:
            load = [0] * processes
            cost = lambda p: min(p.shape) ** 2 * (2 * max(p.shape) + min(p.shape))  # noqa: E731
            for p in sorted((p for g in muon.param_groups for p in g["params"]), key=cost, reverse=True):
                rank = load.index(min(load))
                self.owner[id(p)], load[rank] = rank, load[rank] + cost(p)
                if rank:
                    self.ns_in[id(p)] = torch.zeros(p.shape).share_memory_()
                    self.ns_out[id(p)] = torch.zeros(p.shape).share_memory_()
        self.conns, self.pids = [], []
        import multiprocessing.connection as mpc
        for rank in range(1, processes):
            mine, theirs = mpc.Pipe()
            with warnings.catch_warnings():
                # Python 3.12 warns on forking a process with threads (tqdm's monitor, say): the helper
                # runs only its loop below, on torch operations of its own, and never those threads' code.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # the helper: never returns into the caller's stack
                code = 0
                try:
                    mine.close()
                    for c in self.conns:
                        c.close()
                    self._serve(theirs, rank, part_grads)
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            theirs.close()
            self.conns.append(mine)
            self.pids.append(pid)
        if muon is not None:
            muon.orthogonalise = self.orthogonalise

    def _serve(self, conn, rank: int, part_grads: PartGrads) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        torch.set_num_threads(1)
        while True:
            try:
                index = conn.recv()
            except EOFError:
                return
            if index is None:
                return
            if isinstance(index, tuple):  # ("ns", matrices, arguments): Muon's iterations
                try:
                    for key in index[1]:
                        self.ns_out[key].copy_(newton_schulz(self.ns_in[key], *index[2]))
                    conn.send(None)
                except Exception as e:
                    conn.send(f"{type(e).__name__}: {e}")
                    return
                continue
            try:
                done = []
                for part in range(rank, self.parts, self.processes):
                    loss, n, grads = part_grads(index, part)
                    for buf, g in zip(self.shared[part], grads):
                        buf.copy_(g)
                    done.append((part, loss, n))
                conn.send(done)
            except Exception as e:  # the training process raises it
                conn.send(f"{type(e).__name__}: {e}")
                return

    def start(self, index: int) -> None:
        for c in self.conns:
            c.send(index)

    def _answer(self, c):
        try:
            done = c.recv()
        except (EOFError, OSError):
            raise TranscendError("a training helper process ended unexpectedly; run again, or set "
                                 "training.threads to 1 to train in one process.") from None
        if isinstance(done, str):
            raise TranscendError(f"a training helper process failed: {done}")
        return done

    def collect(self) -> dict[int, tuple[float, int, list[torch.Tensor]]]:
        out = {}
        for c in self.conns:
            for part, loss, n in self._answer(c):
                out[part] = (loss, n, self.shared[part])
        return out

    def orthogonalise(self, params: list[torch.Tensor], updates: list[torch.Tensor], args: tuple) -> list[torch.Tensor]:
        """Muon's iterations of ``updates``: the helpers' matrices in the helpers, the rest here, at once."""
        for p, u in zip(params, updates):
            if self.owner[id(p)]:
                self.ns_in[id(p)].copy_(u)
        for rank, c in enumerate(self.conns, 1):
            c.send(("ns", [id(p) for p in params if self.owner[id(p)] == rank], args))
        out = [None if self.owner[id(p)] else newton_schulz(u, *args).contiguous() for p, u in zip(params, updates)]
        for c in self.conns:
            self._answer(c)
        return [o if o is not None else self.ns_out[id(p)] for p, o in zip(params, out)]

    def close(self) -> None:
        if self.muon is not None:
            self.muon.orthogonalise = None
        for c in self.conns:
            try:
                c.send(None)
            except OSError:
                pass
            c.close()
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.conns, self.pids = [], []


StepLoss = Callable[[int, int, int], tuple[torch.Tensor, int]]


def optimize(model: torch.nn.Module, cfg: TrainingConfig, ckpt_path: Path, step_loss: StepLoss, *,
             device: torch.device, resume: bool, progress: bool, stop_after: int | None,
             log: TrainLog | None = None, fit: Callable[[torch.nn.Module], float] | None = None,
             say: Callable[[str], None] = lambda msg: None, processes: int | None = None) -> dict:
    """The loop every learner shares: the optimizers of ``make_optimizers``, the lr schedule, clipping,
    atomic checkpoints every ``cfg.checkpoint_every`` steps, resume from ``ckpt_path``.

    ``step_loss(index, part, parts)`` computes the loss of part ``part`` of ``parts`` of batch ``index``
    and how many items (tokens, examples) it held, the parts' losses summing to the batch's. Returns
    {'losses', 'steps', 'items_per_s', 'planned_steps', 'cycles', 'fit_gaps'}; ``stop_after`` ends early
    after a checkpoint. With ``cfg.gradient_accumulation = a`` a step sums the gradients of batches
    ``step * a + i``, i < a (the batches stay a pure function of the index); with ``cfg.batch_parts = k``
    each batch's gradient is the sum of its k parts' in part order, computed by ``processes`` processes at
    once (``PartHelpers``; None: ``training_processes``'s count): the same bits for any count. On CPU the
    loop runs on ``training_threads`` torch threads, the caller's count restored after. ``log`` gets one
    row per step.

    ``fit(model)``, where given, is measured at the end of each cycle of ``cfg.steps`` steps (its fit gap,
    ``evaluate.fit``); while it is above ``cfg.fit_gap`` and fewer than ``cfg.max_cycles`` cycles ran, one
    more cycle follows: the same schedule again from its warm-up (a warm restart), the batches running on
    where they were. The first cycle is exactly the run without ``fit``. The cycles planned and the gaps
    measured are in the checkpoint, so a resumed run makes the decisions an uninterrupted one made.
    ``say`` gets one line per decision.
    """
    if cfg.steps < 1:
        raise TranscendError("training.steps is 0 (derived from the corpus) where nothing derives it; set "
                             "training.steps to at least 1.")
    threads = torch.get_num_threads()
    if processes is None:
        processes = training_processes(model, cfg, device, threads)
    if device.type == "cpu":
        torch.set_num_threads(training_threads(model, cfg))
    try:
        return _optimize(model, cfg, ckpt_path, step_loss, device=device, resume=resume, progress=progress,
                         stop_after=stop_after, log=log, fit=fit, say=say, processes=processes)
    finally:
        torch.set_num_threads(threads)


def _optimize(model: torch.nn.Module, cfg: TrainingConfig, ckpt_path: Path, step_loss: StepLoss, *,
              device: torch.device, resume: bool, progress: bool, stop_after: int | None, log: TrainLog | None,
              fit: Callable[[torch.nn.Module], float] | None, say: Callable[[str], None], processes: int) -> dict:
    """``optimize`` on the threads it set."""
    optims = make_optimizers(model, cfg, device)
    start, losses = 0, []
    if resume:
        ckpt = load_checkpoint(ckpt_path, device)
        if ckpt["gpt"] != asdict(model.cfg):
            raise TranscendError(f"checkpoint {ckpt_path} was made for another model shape; "
                                 "resume with the config that made it.")
        states = ckpt["optim"] if isinstance(ckpt["optim"], list) else [ckpt["optim"]]
        if len(states) != len(optims):
            raise TranscendError(f"checkpoint {ckpt_path} was made with another optimizer; "
                                 "resume with the config that made it.")
        model.load_state_dict(ckpt["model"])
        for opt, state in zip(optims, states):
            opt.load_state_dict(state)
            for g in opt.param_groups:  # load_state_dict restores the saved groups, peak_lr included
                g.setdefault("peak_lr", g["lr"])
        start, losses = int(ckpt["step"]), list(ckpt.get("losses", []))
        cycles, gaps = int(ckpt.get("cycles", 1)), [float(g) for g in ckpt.get("fit_gaps", [])]
    else:
        cycles, gaps = 1, []
    total = cfg.steps * cycles
    model.train()
    parts = cfg.batch_parts
    params = [p for p in model.parameters() if p.requires_grad]

    base = torch.initial_seed()  # the run's seed (as the pipeline set it), the same in every helper

    def part_grads(index: int, part: int) -> tuple[float, int, list[torch.Tensor]]:
        # A part's random draws (dropout) come from (seed, batch, part), not from the order the parts ran in.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([base, index, part]).generate_state(1, np.uint64)[0] >> 1))
            loss, n = step_loss(index, part, parts)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        return loss.item(), n, [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]

    muon = next((o for o in optims if isinstance(o, Muon)), None)
    helpers = (PartHelpers(model, params, part_grads, parts, processes, muon) if processes > 1 and parts > 1
               else None)
    try:
        return _loop(model, cfg, ckpt_path, step_loss, optims, start, losses, cycles, gaps, total, params,
                     part_grads, helpers, progress=progress, stop_after=stop_after, log=log, fit=fit, say=say)
    finally:
        if helpers is not None:
            helpers.close()


def _batch_grads(index: int, parts: int, params: list[torch.nn.Parameter], part_grads: PartGrads,
                 helpers: PartHelpers | None) -> tuple[float, int, list[torch.Tensor]]:
    """Batch ``index``'s loss, items and gradient: its parts' summed in part order, the parts that are not
    the helpers' computed here."""
    if helpers is not None:
        helpers.start(index)
    done = {part: part_grads(index, part) for part in range(parts) if helpers is None or part % helpers.processes == 0}
    if helpers is not None:
        done.update(helpers.collect())
    loss, n, grads = done[0]
    grads = list(grads)
    for part in range(1, parts):
        loss_p, n_p, grads_p = done[part]
        loss, n = loss + loss_p, n + n_p
        for i, g in enumerate(grads_p):
            grads[i] = grads[i] + g
    return loss, n, grads


def _loop(model, cfg, ckpt_path, step_loss, optims, start, losses, cycles, gaps, total, params, part_grads,
          helpers, *, progress, stop_after, log, fit, say) -> dict:
    """``optimize``'s loop, from step ``start``."""
    if log is not None:
        log.open(start, total)
    t0, items = time.perf_counter(), 0
    bar = tqdm(total=total, initial=start, desc="train", unit="step", disable=not progress, leave=False)
    step = start
    parts = cfg.batch_parts
    while True:
        if step >= total:  # the end of a cycle: fit, or one more cycle
            if fit is None or len(gaps) == cycles:
                break
            gaps.append(fit(model))
            model.train()
            more = gaps[-1] > cfg.fit_gap and cycles < cfg.max_cycles
            say(f"training: fit gap {gaps[-1]:.3f} after {total} steps (training.fit_gap {cfg.fit_gap:g}): "
                + (f"one more cycle of {cfg.steps} steps" if more else
                   "the model has fit its data" if gaps[-1] <= cfg.fit_gap else
                   f"not reached in training.max_cycles = {cfg.max_cycles} cycles; the model has not learnt "
                   "all its data can teach"))
            if more:
                cycles += 1
                total = cfg.steps * cycles
                bar.total = total
                bar.refresh()
                if log is not None:
                    log.total = total
            save_checkpoint(ckpt_path, model, optims, step, losses, cycles, gaps)
            if not more:
                break
        factor = lr_factor(step % cfg.steps, cfg)
        for opt in optims:
            for g in opt.param_groups:
                g["lr"] = g["peak_lr"] * factor
        t_step, accum = time.perf_counter(), cfg.gradient_accumulation
        for opt in optims:
            opt.zero_grad(set_to_none=True)
        step_losses, n = [], 0
        for micro in range(accum):
            if parts == 1:
                loss, k = step_loss(step * accum + micro, 0, 1)
                (loss / accum if accum > 1 else loss).backward()
                loss = loss.item()
            else:
                loss, k, grads = _batch_grads(step * accum + micro, parts, params, part_grads, helpers)
                for p, g in zip(params, grads):
                    g = g / accum if accum > 1 else g
                    p.grad = g if p.grad is None else p.grad + g
            step_losses.append(loss)
            n += k
        if cfg.grad_clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        elif log is not None:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
        for opt in optims:
            opt.step()
        items += n
        losses.append(sum(step_losses) / accum)
        if log is not None:
            log.step(step, losses[-1], optims[0].param_groups[0]["lr"], n / (time.perf_counter() - t_step),
                     float(grad_norm))
        if not math.isfinite(losses[-1]):
            raise TranscendError(f"training diverged: the loss is {losses[-1]} at step {step + 1}; "
                                 f"lower training.lr (now {cfg.lr:g}) or raise training.warmup_steps.")
        if step % 10 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        bar.update(1)
        step = done = step + 1
        if done % cfg.checkpoint_every == 0 or done == total or (stop_after and done >= stop_after):
            save_checkpoint(ckpt_path, model, optims, done, losses, cycles, gaps)
        if stop_after and done >= stop_after:
            break
    bar.close()
    if log is not None:
        log.close()
    elapsed = time.perf_counter() - t0
    return {"losses": losses, "steps": len(losses), "items_per_s": items / elapsed if elapsed > 0 else 0.0,
            "planned_steps": total, "cycles": cycles, "fit_gaps": gaps}


def train(model: GPT, stream: np.ndarray, cfg: TrainingConfig, ckpt_dir: Path, *, seed: int = 0, resume: bool = False,
          device: torch.device | None = None, progress: bool = True,
          stop_after: int | None = None, log: TrainLog | None = None, eos_id: int = EOS_ID,
          pad_id: int = PAD_ID, boundary_ids: tuple[int, ...] = (), sentence_starts: np.ndarray | None = None,
          writes_per_answer: float | None = None, fit: Callable[[torch.nn.Module], float] | None = None,
          say: Callable[[str], None] = lambda msg: None) -> dict:
    """Train ``model`` in place on ``stream``; returns {'losses', 'tokens_per_s', 'steps', 'planned_steps',
    'cycles', 'fit_gaps'}.

    ``boundary_ids``: tokens that end a sentence (windows also start after them); ``sentence_starts``:
    positions where a sentence starts, for a tokenizer whose sentence ends are not tokens of their own.
    ``stop_after`` ends the loop early (after checkpointing), to test resumption. ``model`` is the lab's
    GPT or any module with a ``cfg`` dataclass (``vocab_size``, ``block_size``) that maps ids to logits.
    ``writes_per_answer``: the corpus's writes per distinct written (query, answer)
    (``evaluate.ideal.writes_per_answer``); where ``cfg.steps`` is 0 the derived steps follow it
    (``passes_for``), and without it they are ``cfg.passes`` passes (``pipeline.resolved_training``
    derives both from a corpus). ``fit``: the model's fit gap on this corpus (``evaluate.fit.FitGap``); where
    the steps are derived and ``cfg.fit_gap`` is not 0, training runs on in cycles while it is above
    ``cfg.fit_gap`` (``optimize``); given steps are taken as they are. ``say`` gets its decisions.
    """
    device = device or torch.device("cpu")
    model.to(device)
    if cfg.steps or not cfg.fit_gap:
        fit = None
    cfg = resolved(cfg, stream, model.cfg.block_size, boundary_ids, eos_id=eos_id, sentence_starts=sentence_starts,
                   writes_per_answer=writes_per_answer)
    if cfg.window > model.cfg.block_size:
        raise TranscendError(f"training.window ({cfg.window}) exceeds model.block_size ({model.cfg.block_size}); "
                             "lower the window or raise the block size.")
    batches = Batches(stream, cfg.window, cfg.batch_size, seed, eos_id=eos_id, pad_id=pad_id,
                      boundary_ids=boundary_ids, sentence_starts=sentence_starts)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext())

    def step_loss(index: int, part: int, parts: int) -> tuple[torch.Tensor, int]:
        # Each part's summed loss over the whole batch's targets: the parts' losses sum to the batch's mean.
        x, y = batches(index)
        targets = max(1, int((y != -100).sum()))
        rows = slice(part * len(x) // parts, (part + 1) * len(x) // parts)
        x, y = x[rows].to(device, non_blocking=True), y[rows].to(device, non_blocking=True)
        with autocast:
            logits = model(x)
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100,
                                   reduction="sum") / targets
        return loss, x.numel()

    result = optimize(model, cfg, ckpt_dir / CHECKPOINT, step_loss, device=device, resume=resume,
                      progress=progress, stop_after=stop_after, log=log, fit=fit, say=say)
    return {"losses": result["losses"], "tokens_per_s": result["items_per_s"], "steps": result["steps"],
            "planned_steps": result["planned_steps"], "cycles": result["cycles"], "fit_gaps": result["fit_gaps"]}
