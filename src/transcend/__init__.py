"""transcend: a lab for studying transcendence.

The package reads as the pipeline it runs::

    world -> experts -> corpus -> learner -> evaluate -> results -> report

The Python API (see ``transcend.api``)::

    from transcend import RunConfig, run, connect
"""

from __future__ import annotations

from typing import Any

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
