"""Writing result files: one atomic, numpy-aware JSON writer for every check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["write_json"]


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value)}")


def write_json(path, record: dict, *, indent: int = 2) -> None:
    """Write ``record`` to ``path`` atomically: Ctrl-C never leaves a half-written file.

    numpy arrays and scalars are stored as lists and Python numbers; NaN/inf are refused
    (``allow_nan=False``) so a result file never holds a silent NaN.
    """
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=indent, allow_nan=False, default=_jsonable))
    os.replace(tmp, path)
