"""Hugging Face causal language models in, the lab's GPT out.

``[model] model`` (``--model``) picks the learner:

* ``gpt`` — the lab's own GPT (``learner/model.py``), the default;
* ``hf:DIR`` — a local ``transformers`` causal LM folder as ``save_pretrained``
  writes it (config, weights, tokenizer), fine-tuned from its weights; the corpus
  is re-tokenized with its own tokenizer, so entity names span several tokens
  and are scored by ``evaluate/exact.py``;
* ``hf-config:ARCH`` — a ``transformers`` architecture (``gpt2``, ``llama``,
  ``gpt_neox``, …) built from its config at the ``[model]`` sizes and trained
  from scratch, with the lab's tokenizer or ``[model] tokenizer`` (a local folder).

Nothing is ever downloaded (``local_files_only``). ``export_run`` writes a
lab-trained run as a ``GPTNeoXForCausalLM`` folder: the lab's GPT is exactly a
GPT-NeoX block stack (rotary on every channel, sequential residual, LayerNorm,
GELU MLP of width 4·d). The lab rotates interleaved channel pairs
(x[2i], x[2i+1]); NeoX rotates halves (x[i], x[i + d/2]), so the rows of each
head's query and key weights are permuted at export (the dot products q·k are
unchanged by the same permutation of both).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from transcend.errors import TranscendError

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the Hub, whatever the caller's environment
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

GPT = "gpt"
HF, HF_CONFIG = "hf:", "hf-config:"


def _transformers():
    try:
        import transformers
    except ImportError:
        raise TranscendError("a Hugging Face model needs transformers and safetensors: "
                             "pip install -e '.[hf]'.") from None
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def causal_model_types() -> set[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def check_model_name(name: str) -> str:
    """Validate ``[model] model``: 'gpt', 'hf:DIR' or 'hf-config:ARCH' (ARCH a causal-LM model type)."""
    if name == GPT:
        return name
    if name.startswith(HF) and name[len(HF):]:
        return name
    if name.startswith(HF_CONFIG) and name[len(HF_CONFIG):]:
        _transformers()
        arch = name[len(HF_CONFIG):]
        if arch not in causal_model_types():
            raise TranscendError(f"model {name!r}: {arch!r} is not a transformers causal-LM architecture; "
                                 "use one such as gpt2, llama, gpt_neox, mistral, qwen2.")
        return name
    raise TranscendError(f"model must be 'gpt', 'hf:DIR' (a local causal LM folder) or 'hf-config:ARCH' "
                         f"(e.g. hf-config:gpt2), got {name!r}.")


@dataclass
class HFModelConfig:
    """What a checkpoint of a Hugging Face learner is checked against on resume."""

    source: str
    vocab_size: int
    block_size: int


class HFCausalLM(nn.Module):
    """A ``transformers`` causal LM behind the lab's interface: ``cfg`` and ``forward(ids) -> logits``."""

    def __init__(self, hf: nn.Module, cfg: HFModelConfig):
        super().__init__()
        self.hf, self.cfg = hf, cfg

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=idx, use_cache=False).logits

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The 2-D weights inside the blocks, as the lab's GPT names them for Muon: every matrix but the
        embeddings (token, position) and the output head."""
        outside = {id(m.weight) for m in self.hf.modules() if isinstance(m, nn.Embedding)}
        outside.add(id(self.hf.get_output_embeddings().weight))
        return [p for p in self.hf.parameters() if p.dim() == 2 and id(p) not in outside]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


@dataclass
class Learner:
    """The model to train, the tokenizer its corpus and prompts are written in, and its special ids."""

    model: nn.Module
    tokenizer: object          # a transformers PreTrainedTokenizerFast
    eos_id: int
    pad_id: int
    lab_tokenizer: bool        # the corpus's own word-level tokenizer: no re-tokenization, one-token scoring


def lab_hf_tokenizer(tok):
    """The lab's word-level tokenizer as a ``transformers`` tokenizer (ids unchanged)."""
    from transcend.corpus.tokenizer import EOS, PAD, UNK

    t = _transformers()
    return t.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                     unk_token=UNK)


def _local_dir(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise TranscendError(f"{what} {path!r} is not a folder; give a local folder written by save_pretrained "
                             "(nothing is downloaded).")
    return p


def load_tokenizer_dir(path: str, what: str = "tokenizer folder"):
    t = _transformers()
    p = _local_dir(path, what)
    try:
        tok = t.AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except Exception as e:  # transformers raises OSError, ValueError, ... for a folder without a tokenizer
        raise TranscendError(f"{what} {path!r} holds no loadable tokenizer ({type(e).__name__}).") from None
    if tok.eos_token_id is None:
        raise TranscendError(f"the tokenizer in {path!r} has no end-of-text token (eos_token); set one.")
    return tok


def _check_causal(config, path: str) -> None:
    if getattr(config, "is_encoder_decoder", False) or config.model_type not in causal_model_types():
        raise TranscendError(f"{path!r} holds a {config.model_type!r} model, which is not a causal language "
                             "model; give a folder of a causal LM (GPT-2, Llama, GPT-NeoX, ...).")


def resolve(name: str, tokenizer_dir: str | None) -> None:
    """Fail early (before a run folder is written) on a missing folder or a model that is not causal."""
    if name.startswith(HF):
        t = _transformers()
        p = _local_dir(name[len(HF):], "model folder")
        if not (p / "config.json").is_file():
            raise TranscendError(f"model folder {str(p)!r} has no config.json; give a folder written by "
                                 "save_pretrained.")
        _check_causal(t.AutoConfig.from_pretrained(str(p), local_files_only=True), str(p))
        load_tokenizer_dir(str(p), "model folder")
    elif tokenizer_dir is not None:
        load_tokenizer_dir(tokenizer_dir)


def build_learner(name: str, tokenizer_dir: str | None, sizes, lab_tok, seed: int) -> Learner:
    """The learner of ``name`` ('hf:DIR' or 'hf-config:ARCH'); ``sizes`` is the [model] section."""
    t = _transformers()
    torch.manual_seed(seed)
    if name.startswith(HF):
        path = name[len(HF):]
        resolve(name, None)
        tok = load_tokenizer_dir(path, "model folder")
        config = _no_dropout(t.AutoConfig.from_pretrained(path, local_files_only=True))
        hf = t.AutoModelForCausalLM.from_pretrained(path, config=config, local_files_only=True, dtype=torch.float32)
        limit = getattr(hf.config, "max_position_embeddings", None) or getattr(hf.config, "n_positions", None)
        if limit is not None and sizes.block_size > limit:
            raise TranscendError(f"model.block_size {sizes.block_size} exceeds the {limit} positions of the model "
                                 f"in {path!r}; lower --block-size.")
        lab = False
    else:
        arch = name[len(HF_CONFIG):]
        tok = load_tokenizer_dir(tokenizer_dir) if tokenizer_dir else lab_hf_tokenizer(lab_tok)
        lab = tokenizer_dir is None
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        hf = from_config(arch, sizes, len(tok), tok.eos_token_id, pad)
    vocab = hf.get_output_embeddings().weight.shape[0]
    if len(tok) > vocab:
        raise TranscendError(f"the tokenizer has {len(tok)} tokens but the model only {vocab} embeddings.")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    model = HFCausalLM(hf, HFModelConfig(source=name, vocab_size=vocab, block_size=sizes.block_size))
    return Learner(model=model, tokenizer=tok, eos_id=int(tok.eos_token_id), pad_id=int(pad), lab_tokenizer=lab)


def from_config(arch: str, sizes, vocab_size: int, eos_id: int, pad_id: int) -> nn.Module:
    """A fresh ``transformers`` causal LM of type ``arch`` at the [model] sizes (MLP width 4·d, no dropout);
    every other setting is the architecture's own default (GPT-2: learned positions, tied embeddings)."""
    t = _transformers()
    config = t.AutoConfig.for_model(
        arch, vocab_size=vocab_size, hidden_size=sizes.n_embd, num_hidden_layers=sizes.n_layer,
        num_attention_heads=sizes.n_head, num_key_value_heads=sizes.n_head, intermediate_size=4 * sizes.n_embd,
        max_position_embeddings=sizes.block_size, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id)
    return t.AutoModelForCausalLM.from_config(_no_dropout(config), attn_implementation="sdpa")


def _no_dropout(config):
    """The lab trains without dropout (and so a resumed run repeats an uninterrupted one exactly)."""
    for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout", "hidden_dropout",
                "attention_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob", "dropout"):
        if isinstance(getattr(config, key, None), (int, float)):
            setattr(config, key, 0.0)
    return config


def sentence_texts(texts: list[str], lab_tok, end_ids: tuple[int, ...]) -> list[list[str]]:
    """Each unit's sentences, by the lab's own rule: a sentence ends at a token of ``end_ids`` ("."),
    read by the lab's tokenizer ``lab_tok`` (which keeps every entity name whole, dots and all), so another
    tokenizer's corpus has exactly the lab corpus's sentence starts. The space between sentences is dropped."""
    out = []
    for text, enc in zip(texts, lab_tok.encode_batch(texts, add_special_tokens=False)):
        cuts = [enc.offsets[i + 1][0] for i, t in enumerate(enc.ids[:-1]) if t in end_ids]
        out.append([text[a:b].strip() for a, b in zip([0, *cuts], [*cuts, len(text)])])
    return out


def tokenize_texts(units: list[list[str]], tok, eos_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The corpus re-tokenized: ``eos`` + the tokens of each unit (its sentences), concatenated, and the
    positions where a sentence other than a unit's first starts (``train``'s ``sentence_starts``).

    Each sentence is tokenized on its own, as a query prompt is ("The {relation} of {head} is", no space
    before it): a window led by ``eos`` at any sentence then holds exactly the tokens that a prompt and its
    answer are scored by (``evaluate/exact.py``), whatever the tokenizer (byte-level BPE would give a
    sentence after a space another first token, " The"), and every sentence start is a token boundary."""
    ids = iter(tok([s for unit in units for s in unit], add_special_tokens=False)["input_ids"]
               if any(units) else ())
    parts, starts, at = [], [], 0
    for unit in units:
        parts.append(np.array([eos_id], dtype=np.int64))
        at += 1
        for k in range(len(unit)):
            piece = np.asarray(next(ids), dtype=np.int64)
            if k:
                starts.append(at)
            parts.append(piece)
            at += len(piece)
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return stream, np.asarray(starts, dtype=np.int64)


# ---------------------------------------------------------------------------------------------- export

def _rotary_rows(n_head: int, head_dim: int) -> torch.Tensor:
    """Row order that turns the lab's interleaved rotary pairs into NeoX's halves, per head."""
    per_head = torch.cat([torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)])
    return (torch.arange(n_head)[:, None] * head_dim + per_head[None, :]).flatten()


def neox_state_dict(sd: dict[str, torch.Tensor], n_layer: int, n_head: int, n_embd: int,
                    tied: bool) -> dict[str, torch.Tensor]:
    """The lab GPT's weights under GPTNeoXForCausalLM's names and layout."""
    hd = n_embd // n_head
    perm = _rotary_rows(n_head, hd)
    out = {"gpt_neox.embed_in.weight": sd["wte.weight"],
           "gpt_neox.final_layer_norm.weight": sd["ln_f.weight"], "gpt_neox.final_layer_norm.bias": sd["ln_f.bias"],
           "lm_head.weight": sd["wte.weight"] if tied else sd["head.weight"]}
    for i in range(n_layer):
        src, dst = f"blocks.{i}.", f"gpt_neox.layers.{i}."
        for a, b in (("ln1", "input_layernorm"), ("ln2", "post_attention_layernorm")):
            out[dst + b + ".weight"], out[dst + b + ".bias"] = sd[src + a + ".weight"], sd[src + a + ".bias"]
        w, bias = sd[src + "attn.qkv.weight"], sd[src + "attn.qkv.bias"]
        q, k, v = w.split(n_embd, 0)
        qb, kb, vb = bias.split(n_embd, 0)
        q, k, qb, kb = q[perm], k[perm], qb[perm], kb[perm]
        # NeoX reads query_key_value as (heads, [q | k | v] of head_dim each)
        out[dst + "attention.query_key_value.weight"] = torch.stack(
            [z.view(n_head, hd, n_embd) for z in (q, k, v)], 1).reshape(3 * n_embd, n_embd)
        out[dst + "attention.query_key_value.bias"] = torch.stack(
            [z.view(n_head, hd) for z in (qb, kb, vb)], 1).reshape(3 * n_embd)
        for a, b in (("attn.proj", "attention.dense"), ("mlp.0", "mlp.dense_h_to_4h"), ("mlp.2", "mlp.dense_4h_to_h")):
            out[dst + b + ".weight"], out[dst + b + ".bias"] = sd[src + a + ".weight"], sd[src + a + ".bias"]
    return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


def export_run(run_dir: Path, to: Path) -> Path:
    """Write the lab-trained run in ``run_dir`` as a transformers folder ``to`` (atomically)."""
    import shutil

    from transcend.corpus.tokenizer import load_tokenizer
    from transcend.learner.train import CHECKPOINT, load_checkpoint

    t = _transformers()
    run_dir, to = Path(run_dir), Path(to)
    ckpt_path = run_dir / "checkpoints" / CHECKPOINT
    if not ckpt_path.is_file():
        raise TranscendError(f"{run_dir} holds no trained model ({ckpt_path} is missing); give a run folder.")
    if not (run_dir / "metrics.json").is_file():
        raise TranscendError(f"run {run_dir} has not finished training; finish it with --resume first.")
    ckpt = load_checkpoint(ckpt_path)
    g = ckpt["gpt"]
    if "n_layer" not in g:
        raise TranscendError(f"run {run_dir} was trained with another learner ({g.get('source')}); only runs of "
                             "the lab's GPT are exported (a Hugging Face learner is already in that format).")
    if to.exists() and any(to.iterdir()):
        raise TranscendError(f"{to} exists and is not empty; choose another --to.")
    tok = load_tokenizer(run_dir / "corpus" / "tokenizer.json")
    hf_tok = lab_hf_tokenizer(tok)
    config = t.GPTNeoXConfig(
        vocab_size=g["vocab_size"], hidden_size=g["n_embd"], num_hidden_layers=g["n_layer"],
        num_attention_heads=g["n_head"], intermediate_size=4 * g["n_embd"], hidden_act="gelu",
        max_position_embeddings=g["block_size"], rotary_pct=1.0, rotary_emb_base=10000.0, layer_norm_eps=1e-5,
        use_parallel_residual=False, attention_bias=True, tie_word_embeddings=bool(g.get("tie_embeddings")),
        hidden_dropout=0.0, attention_dropout=0.0, bos_token_id=hf_tok.eos_token_id,
        eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id)
    config.architectures = ["GPTNeoXForCausalLM"]
    model = t.GPTNeoXForCausalLM(config)
    sd = neox_state_dict(ckpt["model"], g["n_layer"], g["n_head"], g["n_embd"], bool(g.get("tie_embeddings")))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or [k for k in missing if not k.endswith("inv_freq")]:
        raise TranscendError(f"export mapping is incomplete: missing {missing}, unexpected {unexpected}.")
    tmp = to.with_name(to.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    hf_tok.save_pretrained(str(tmp))
    if to.exists():
        to.rmdir()
    to.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, to)
    return to
