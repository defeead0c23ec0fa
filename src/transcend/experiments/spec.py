"""An experiment: a named sweep over the typed config.

An :class:`Experiment` holds a base config (a ``RunConfig`` dict), a grid of
values for some dotted config fields (``"experts.coverage": [0.2, 0.4]``) and
a list of seeds. :meth:`Experiment.expand` gives one validated ``RunConfig``
per grid point and seed (the Cartesian product, in a fixed order), each with
the grid values it came from. A run folder is named by its config's hash, so
the same run in two experiments, or twice in one, is computed once per folder.

``study`` names extra measurements made on each finished run (see
``transcend.experiments.studies``), e.g. ``"vote"``.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from transcend.config import RunConfig
from transcend.errors import TranscendError


def set_dotted(d: dict[str, Any], dotted: str, value: Any) -> None:
    """d["a"]["b"] = value for dotted = "a.b" (creating tables as needed)."""
    keys = dotted.split(".")
    for k in keys[:-1]:
        sub = d.setdefault(k, {})
        if not isinstance(sub, dict):
            raise TranscendError(f"grid field {dotted!r}: {k!r} is not a config section.")
        d = sub
    d[keys[-1]] = value


def get_dotted(d: dict[str, Any], dotted: str, default: Any = None) -> Any:
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment: its config, the grid point it came from, and its folder name."""
    config: RunConfig
    params: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.config.hash()


@dataclass
class Experiment:
    # Name (also the folder under runs/experiments/).
    name: str
    # One line saying what the experiment shows.
    description: str
    # The base config, as a RunConfig dict (sections as nested dicts).
    base: dict[str, Any]
    # Dotted config field -> the values it takes; the sweep is their Cartesian product. A list of such
    # grids is the union of their products (runs that two of them share are run once).
    grid: dict[str, list[Any]] | list[dict[str, list[Any]]] = field(default_factory=dict)
    # Seeds of every grid point.
    seeds: list[int] = field(default_factory=lambda: [0])
    # Extra measurements on each finished run ("vote"), or None.
    study: str | None = None
    # Options of the study (e.g. {"k": [1, 3, 5]}).
    study_options: dict[str, Any] = field(default_factory=dict)
    # Grid points to leave out: each a dict of dotted field -> value that must all match.
    exclude: list[dict[str, Any]] = field(default_factory=list)
    # The scale it was made at (small, paper, tiny), for the record.
    scale: str = "custom"

    def __post_init__(self) -> None:
        if not self.name or self.name.startswith(".") or any(c in self.name for c in "/\\\0"):
            raise TranscendError(f"experiment name {self.name!r} must be a folder name: no '/', '\\', or leading '.'.")
        if not self.seeds or any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise TranscendError(f"experiment {self.name}: seeds must be whole numbers >= 0, got {self.seeds}.")
        for grid in self.grids:
            for k, v in grid.items():
                if not isinstance(v, (list, tuple)) or not v:
                    raise TranscendError(f"experiment {self.name}: grid field {k} needs a non-empty list of values.")

    @property
    def grids(self) -> list[dict[str, list[Any]]]:
        return list(self.grid) if isinstance(self.grid, (list, tuple)) else [self.grid]

    @property
    def fields(self) -> list[str]:
        """Every dotted field any grid varies, in first-seen order."""
        return list(dict.fromkeys(k for g in self.grids for k in g))

    def points(self) -> list[dict[str, Any]]:
        """The grid points (dotted field -> value), in order, without the excluded ones."""
        out = []
        for grid in self.grids:
            keys = list(grid)
            for values in itertools.product(*(grid[k] for k in keys)):
                p = dict(zip(keys, values))
                if any(all(p.get(k) == v for k, v in ex.items()) for ex in self.exclude):
                    continue
                out.append(p)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "scale": self.scale, "base": self.base,
                "grid": self.grid, "seeds": self.seeds, "study": self.study, "study_options": self.study_options,
                "exclude": self.exclude}

    def expand(self) -> list[RunSpec]:
        """One validated RunSpec per distinct (grid point, seed); a bad value names the field."""
        runs, seen = [], set()
        for p in self.points():
            for seed in self.seeds:
                d = copy.deepcopy(self.base)
                for k, v in p.items():
                    set_dotted(d, k, v)
                d["seed"] = seed
                try:
                    cfg = RunConfig.from_dict(d)
                except TypeError as e:
                    raise TranscendError(f"experiment {self.name}: a grid field is not a config field ({e}).") \
                        from None
                if cfg.hash() in seen:
                    continue
                seen.add(cfg.hash())
                runs.append(RunSpec(cfg, {**p, "seed": seed}))
        return runs
