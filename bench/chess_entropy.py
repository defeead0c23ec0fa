"""Action entropy of each cutoff's data over common states, for a finished chess run, at several thresholds.

The pipeline records the entropy over *opening states* (``analyses.opening_states``:
positions among the first chosen plies that every cutoff's corpus holds). This script
reports it instead over the states that occur at least k times in all corpora together
(the paper's "common states"; simulated games after random opening plies repeat few):

    OMP_NUM_THREADS=1 python bench/chess_entropy.py --run runs/chess-small --min-counts 2,3,5
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from transcend.chess.config import ChessConfig
from transcend.chess.pipeline import CONFIG, World
from transcend.chess.analyses import action_entropy, common_states
from transcend.chess.ideal import Mixture
from transcend.chess.corpus import MoveCorpus


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/chess-small")
    parser.add_argument("--min-counts", default="2,3,5")
    args = parser.parse_args(argv)
    run = Path(args.run)
    cfg = ChessConfig.load(run / CONFIG)
    corpora = {p.stem: MoveCorpus.load(p) for p in sorted((run / "corpus").glob("*.npz"))
               if not p.stem.endswith(".heldout")}
    out: dict = {}
    with World(cfg, run) as world:
        mixtures = {}
        for label, c in corpora.items():
            counts = Counter(c.players.tolist())
            mixtures[label] = Mixture.from_counts([p for p in world.players if p.name in counts], counts)
        for m in (int(x) for x in args.min_counts.split(",")):
            states = common_states(list(corpora.values()), m)
            out[m] = {"states": len(states), **{k: action_entropy(mix, states)["normalised_entropy"]
                                                for k, mix in mixtures.items()}}
            print(f"min count {m}: {len(states)} states; " + ", ".join(
                f"cutoff {k}: {out[m][k]:.3f}" for k in mixtures))
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
