"""How often the trained move model proposes an illegal move (full-vocabulary sampling), on held-out positions.

For each held-out position of a cutoff: the model's probability mass on illegal moves at
τ = 1, whether its arg-max (the τ → 0 move) is illegal, and the implied chance of a forfeit
at τ = 1 under the rule "resample up to 5 times, then forfeit" (illegal mass ** 6).

    OMP_NUM_THREADS=1 python bench/chess_illegal.py --run runs/chess-small
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from transcend.chess.policy import MAX_RESAMPLES, load_policy, predict_logits, tempered
from transcend.chess.corpus import MoveCorpus


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/chess-small")
    parser.add_argument("--positions", type=int, default=2000)
    args = parser.parse_args(argv)
    run = Path(args.run)
    out = {}
    for held_path in sorted((run / "corpus").glob("*.heldout.npz")):
        label = held_path.name.split(".")[0]
        held = MoveCorpus.load(held_path)
        rows = np.arange(min(args.positions, len(held)))
        model = load_policy(run / "models" / label / "latest.pt")
        logits = predict_logits(model, held.inputs[rows])
        legal = held.legal_mask(rows)
        p = tempered(logits, 1.0)
        illegal_mass = (p * ~legal).sum(axis=1)
        argmax_illegal = ~legal[np.arange(len(rows)), logits.argmax(axis=1)]
        out[label] = {"positions": int(len(rows)), "illegal_mass_tau1": float(illegal_mass.mean()),
                      "argmax_illegal": float(argmax_illegal.mean()),
                      "forfeit_chance_per_move_tau1": float((illegal_mass ** (1 + MAX_RESAMPLES)).mean())}
        print(f"cutoff {label}: illegal mass at τ=1 {out[label]['illegal_mass_tau1']:.4f}, arg-max illegal "
              f"{out[label]['argmax_illegal']:.4f}, forfeit chance per move at τ=1 "
              f"{out[label]['forfeit_chance_per_move_tau1']:.2e} ({len(rows)} held-out positions)")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
