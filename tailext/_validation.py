"""Input validation shared by every public function.

Each public entry point calls one ``_..._iv`` function that validates and normalizes all of
its arguments, so that the kernels only ever see finite, C-contiguous float64 arrays and
plain scalars. Error messages are tested one by one in ``tests/test_validation.py``.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .constants import _check_positive_int, _check_tail_fraction, kappa, tail_moments
from .prefix import tail_count, tail_fraction_ratio

__all__ = ["as_reward_batch", "unbatch", "as_score_batch", "TailSettings", "tail_settings_iv",
           "check_tail_size"]


def _first_nonfinite(values: np.ndarray):
    """Index tuple and value of the first non-finite entry (values has ndim ≥ 1)."""
    bad = np.argwhere(~np.isfinite(values))[0]
    return tuple(int(i) for i in bad), values[tuple(bad)]


def as_reward_batch(rewards, name: str = "rewards", *, min_group_size: int = 1):
    """Validate rewards and return ``(batch[B, m] float64, was_1d)``.

    The result never aliases the caller's array when a conversion was needed, and kernels
    never write into it, so inputs are never modified.
    """
    array = np.asarray(rewards)
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {array.dtype}.")
    if array.ndim not in (1, 2):
        raise ValueError(f"`{name}` must be 1-D (one group) or 2-D [B, m] (B groups of m "
                         f"rollouts), got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {array.shape}.")
    was_1d = array.ndim == 1
    batch = np.ascontiguousarray(array[None, :] if was_1d else array, dtype=np.float64)
    if not np.all(np.isfinite(batch)):
        (row, col), value = _first_nonfinite(batch)
        where = f"{name}[{col}]" if was_1d else f"row {row} of `{name}` (column {col})"
        raise ValueError(f"non-finite reward {value} in {where}; rewards must be finite.")
    if batch.shape[1] < min_group_size:
        raise ValueError(f"groups of `{name}` need at least {min_group_size} rollouts, "
                         f"got m={batch.shape[1]}.")
    return batch, was_1d


def unbatch(array, was_1d: bool):
    """Undo the ``[1, m]`` view :func:`as_reward_batch` gives a 1-D group."""
    return array[0] if was_1d else array


def as_score_batch(scores, reward_shape, was_1d: bool, name: str = "scores"):
    """Validate scores against rewards ``[B, m]`` → ``[B, m, d]`` float64 (C-contiguous)."""
    array = np.asarray(scores)
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {array.dtype}.")
    expected = tuple(reward_shape)
    if array.ndim != len(expected) + 1 or array.shape[:-1] != tuple(expected):
        shape = "[m, d]" if was_1d else "[B, m, d]"
        raise ValueError(f"`{name}` must have shape {shape} = {tuple(expected)} + (d,) to "
                         f"match the rewards, got {array.shape}.")
    if array.shape[-1] == 0:
        raise ValueError(f"`{name}` must have at least one column (d >= 1).")
    batch = np.ascontiguousarray(array[None] if was_1d else array, dtype=np.float64)
    if not np.all(np.isfinite(batch)):
        index, value = _first_nonfinite(batch)
        raise ValueError(f"non-finite score {value} at `{name}` index "
                         f"{index[1:] if was_1d else index}; scores must be finite.")
    return batch


class TailSettings(NamedTuple):
    """Validated tail-fit settings, as the kernels take them."""

    tail_fraction: float
    n_target: int
    kappa: float
    inv_beta: float
    floor_abs: float
    floor_rel: float


def tail_settings_iv(tail_fraction, n_target, scale_floor) -> TailSettings:
    """Validate ``tail_fraction``, ``n_target`` and ``scale_floor`` together."""
    beta = _check_tail_fraction(tail_fraction)
    n = _check_positive_int(n_target, "n_target", 2)
    if scale_floor is None:
        floor_abs, floor_rel = 0.0, 0.5 * np.sqrt(tail_moments(beta).v)
    else:
        if isinstance(scale_floor, (bool, np.bool_)) or not isinstance(scale_floor,
                                                                         numbers.Real):
            raise TypeError(f"`scale_floor` must be None or a real number, got "
                            f"{scale_floor!r}.")
        floor_abs = float(scale_floor)
        if not np.isfinite(floor_abs) or floor_abs < 0.0:
            raise ValueError(f"`scale_floor` must be a finite number >= 0, got {floor_abs}.")
        floor_rel = 0.0
    return TailSettings(beta, n, kappa(beta, n), 1.0 / beta, floor_abs, floor_rel)


def check_tail_size(group_size: int, tail_fraction: float, what: str = "group") -> int:
    """``k = ceil(β m)``, raising unless ``k >= 2`` (a one-sample tail has no scale)."""
    k = tail_count(group_size, tail_fraction)
    if k < 2:
        ratio = tail_fraction_ratio(tail_fraction)
        smallest = ratio.denominator // ratio.numerator + 1  # least m with p·m > q
        raise ValueError(
            f"{what} size m={group_size} is too small for tail_fraction={tail_fraction}: the "
            f"tail fit needs ceil(tail_fraction*m) >= 2 samples, got {k}; use m >= "
            f"{smallest} or a larger tail_fraction.")
    return k
