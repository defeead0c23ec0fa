"""What the causal board encoder cost: move prediction of the causal and the bidirectional encoder.

On a run's corpus of one cutoff (``corpus/<cutoff>.npz`` and its held-out positions, none of
which occurs in the training games), train the run's model shape with the run's schedule
twice, once with causal attention over the squares (the earlier design) and once
bidirectional (the current one), same seed and batches, and report for each the held-out
move prediction against the cutoff's exact mixture (``analyses.move_prediction``: top-1
agreement with the mixture's mode, cross-entropy and KL to it, illegal mass under
full-vocabulary sampling). Needs only the run's ladder, games and corpora (not a finished run).

    OMP_NUM_THREADS=1 python bench/chess_encoder.py --run runs/chess-small --out /tmp/chess-encoder
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import torch

from transcend.chess import analyses
from transcend.chess.config import ChessConfig
from transcend.chess.corpus import MoveCorpus
from transcend.chess.ideal import Mixture
from transcend.chess.pipeline import CONFIG, POPULATION, SCORES, World
from transcend.chess.policy import policy_model, train_policy


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/chess-small")
    parser.add_argument("--out", required=True, help="a scratch folder for the two models")
    parser.add_argument("--cutoff", help="cutoff label (default: the lowest with a corpus)")
    parser.add_argument("--steps", type=int, help="training steps (default: the run's)")
    args = parser.parse_args(argv)
    run, out = Path(args.run), Path(args.out)
    cfg = ChessConfig.load(run / CONFIG)
    labels = sorted((p.name.split(".")[0] for p in (run / "corpus").glob("*.heldout.npz")), key=float)
    label = args.cutoff or labels[0]
    train = MoveCorpus.load(run / "corpus" / f"{label}.npz")
    held = MoveCorpus.load(run / "corpus" / f"{label}.heldout.npz")
    out.mkdir(parents=True, exist_ok=True)
    if (run / SCORES).is_file():  # a copy: the run may still be writing its own
        shutil.copyfile(run / SCORES, out / SCORES)
    shutil.copyfile(run / POPULATION, out / POPULATION)  # the run's players
    training = replace(cfg.training, steps=args.steps) if args.steps else cfg.training
    result: dict = {"run": str(run), "cutoff": label, "train_positions": len(train), "heldout_positions": len(held),
                    "steps": training.steps, "by_encoder": {}}
    with World(cfg, out) as world:
        counts = Counter(train.players.tolist())
        mixture = Mixture.from_counts([p for p in world.players if p.name in counts], counts)
        for causal in (True, False):
            name = "causal" if causal else "bidirectional"
            torch.manual_seed(cfg.seed)
            model = policy_model(cfg.n_layer, cfg.n_head, cfg.n_embd, causal)
            t0 = time.perf_counter()
            info = train_policy(model, train, training, out / name, seed=cfg.seed, progress=False)
            mp = analyses.move_prediction(model, held, mixture, seed=cfg.seed)
            result["by_encoder"][name] = {**mp, "train_seconds": round(time.perf_counter() - t0, 1),
                                          "loss_last100": float(sum(info["losses"][-100:]) / len(info["losses"][-100:]))}
            print(f"{name}: top-1 = mixture mode {mp['top1_vs_plurality']:.3f}, H(f̄, model) "
                  f"{mp['cross_entropy_vs_mixture']:.3f} vs H(f̄) {mp['mixture_entropy']:.3f} (KL "
                  f"{mp['kl_mixture_model']:.3f}), illegal mass {mp['illegal_mass_full_vocab']:.3f}", flush=True)
    (out / "encoder.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
