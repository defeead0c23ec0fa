"""Extra measurements on a finished run, named by an experiment's ``study``.

A study reads the run folder (config, corpus, checkpoint), measures, and
caches what it measured as ``<study>.json`` in the folder (written atomically),
so that re-running an experiment does not measure again. It returns result-store
rows: ``{"rows": [{"metric": ..., "value": ..., other columns}]}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from transcend.config import RunConfig
from transcend.errors import TranscendError


def _vote(cfg: RunConfig, out: Path, options: dict) -> dict:
    import torch

    from transcend.corpus.store import load_corpus
    from transcend.evaluate.vote import vote_study
    from transcend.learner.model import GPT, GPTConfig
    from transcend.learner.train import CHECKPOINT, load_checkpoint, pick_device
    from transcend.pipeline import build_panel, build_world, areas_cache_dir

    device = pick_device(cfg.device)
    kg = build_world(cfg)
    panel = build_panel(cfg, kg, areas_cache_dir(out))
    corpus = load_corpus(out / "corpus")
    ckpt = load_checkpoint(out / "checkpoints" / CHECKPOINT, map_location=device)
    model = GPT(GPTConfig(**ckpt["gpt"]))
    model.load_state_dict(ckpt["model"])
    model.to(device)
    with torch.no_grad():
        return vote_study(model, kg, corpus.tokenizer, panel, list(options.get("k", [1, 3, 5, 9])),
                          int(options.get("trials", 16)), cfg.seed, device)


def _vote_rows(res: dict) -> list[dict]:
    rows = [{"metric": "vote.inference", "temperature": 1.0, "k": int(k), "value": v}
            for k, v in res["inference_vote"].items()]
    rows += [{"metric": "vote.inference_se", "temperature": 1.0, "k": int(k), "value": v}
             for k, v in res["inference_vote_se"].items()]
    rows += [{"metric": f"vote.{name}", "value": res[name]}
             for name in ("training_vote", "model_tau1", "experts_vote", "mode_share_above_half")]
    return rows


STUDIES = {"vote": (_vote, _vote_rows)}


def run_study(name: str, cfg: RunConfig, out: Path, options: dict) -> dict:
    """Measure study ``name`` on the finished run in ``out`` (or read its cached result)."""
    if name not in STUDIES:
        raise TranscendError(f"unknown study {name!r}; known: {', '.join(STUDIES)}.")
    measure, to_rows = STUDIES[name]
    path = Path(out) / f"{name}.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("options") == options:
            return {"rows": to_rows(saved["result"]), "result": saved["result"]}
    res = measure(cfg, Path(out), options)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"options": options, "result": res}, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    res = json.loads(path.read_text())["result"]  # the same types whether measured now or read back
    return {"rows": to_rows(res), "result": res}
