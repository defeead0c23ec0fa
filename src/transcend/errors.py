"""User-facing errors: one clear sentence, exit status 2; and strict JSON for what the lab writes."""

import json
import math
from typing import Any


class TranscendError(Exception):
    """Bad input (config, file, checkpoint): the message names what is wrong and what is allowed."""

    exit_code = 2


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) replaced by None: strict JSON has no NaN token."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def strict_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes NaN or Infinity (they become null), so every JSON parser reads it."""
    return json.dumps(finite_or_null(obj), allow_nan=False, **kwargs)
