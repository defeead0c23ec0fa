"""transcend: a lab for studying transcendence.

The package reads as the pipeline it runs::

    world -> experts -> corpus -> learner -> evaluate -> results -> report

The Python API (see ``transcend.api``)::

    from transcend import RunConfig, run, connect
"""

from __future__ import annotations

import os as _os
from typing import Any

# OpenMP threads that finish their share of a kernel sleep instead of spinning: beside another busy
# process, spinning threads take the core that the slowest thread needs and training slowed 6x on
# 2 cores (bench/bench_threads.py). Set before torch loads its OpenMP runtime; a user's setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

__version__ = "0.1.0"
__all__ = ["RunConfig", "run", "connect", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `transcend --help` does not load torch.
    if name == "RunConfig":
        from transcend.config import RunConfig
        return RunConfig
    if name in ("run", "connect"):
        from transcend import api
        return getattr(api, name)
    raise AttributeError(f"module 'transcend' has no attribute {name!r}")
