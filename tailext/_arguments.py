"""Argument validation for every public function: one module, one naming style.

Each validator is called ``<what>_iv`` ("input validation", as in scipy) and returns the
normalized value; a public function ``f`` with several arguments has one ``_f_iv`` in its own
module that calls these. The rule for the exception type is the same everywhere:

* ``TypeError`` — the argument has the wrong *type*: a string or ``None`` where a number is
  expected, a ``bool`` where a number is expected (``True`` is an ``int`` in Python, but a
  flag passed as a tolerance is a mistake), a non-integral float where an integer is
  expected, a non-numeric array, an unknown keyword option (as Python itself does);
* ``ValueError`` — the type is right but the *value* is not allowed: out of range, NaN or
  infinite, the wrong shape, a name that is not one of the choices.

Messages name the argument and show the value exactly as it was given (``repr``; numpy
scalars as the Python number they hold), never a rounded or converted one, and say what is
accepted. Names close to a valid one get a "did you mean" (:func:`did_you_mean`). Every
message is tested (``tests/test_arguments.py``) and the FAQ (``docs/faq.md``) quotes them.
"""

from __future__ import annotations

import difflib
import math
import numbers
from fractions import Fraction

import numpy as np

__all__ = ["shown", "did_you_mean", "real_iv", "integer_iv", "bool_iv", "choice_iv",
           "seed_iv", "tail_fraction_iv", "n_target_iv", "numeric_array_iv", "rewards_iv",
           "masked_rewards_iv", "scores_iv", "valid_iv", "first_nonfinite", "MAX_TAIL_DENOMINATOR",
           "MAX_N_TARGET"]

#: Largest denominator used when a float ``tail_fraction`` is read as a fraction ``p/q``
#: (so ``k = ceil(β m)`` is exact integer arithmetic); ``β`` must lie in
#: ``[1/1000, 999/1000]`` for that fraction to be neither 0 nor 1.
MAX_TAIL_DENOMINATOR = 1000

#: Largest best-of-N target: ``e_N`` (and so ``κ_N``) is computed by quadrature, accurate to
#: about 1e-13 up to here (see :func:`tailext.expected_max_normal`).
MAX_N_TARGET = 10**7


def shown(value) -> str:
    """``repr`` of a value as the user gave it (numpy scalars as their Python value)."""
    if isinstance(value, np.generic):
        return repr(value.item())
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def did_you_mean(name, choices) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` to ``name`` ('' when none is close).

    Case and the ``-``/``_`` spelling are ignored first ('TEA', 'prefix-tea'), then
    :func:`difflib.get_close_matches` finds misspellings ('grpoz').
    """
    if not isinstance(name, str):
        return ""
    choices = list(choices)
    folded = name.strip().lower().replace("-", "_").replace(" ", "_")
    exact = [c for c in choices if c.lower() == folded]
    close = exact or difflib.get_close_matches(folded, choices, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def real_iv(value, name: str, *, low=None, high=None, low_open=False, high_open=False,
            allow_none=False):
    """A finite real number within ``[low, high]`` (ends open when asked) → ``float``.

    ``None`` passes through when ``allow_none``. Infinite bounds are written as ``None``.
    """
    if value is None and allow_none:
        return None
    if _is_bool(value) or not isinstance(value, numbers.Real):
        kind = "None or a real number" if allow_none else "a real number"
        raise TypeError(f"`{name}` must be {kind}, got {shown(value)}.")
    number = float(value)
    lower_ok = low is None or (number > low if low_open else number >= low)
    upper_ok = high is None or (number < high if high_open else number <= high)
    if not math.isfinite(number) or not (lower_ok and upper_ok):
        raise ValueError(f"`{name}` must be {_interval(low, high, low_open, high_open)}, "
                         f"got {shown(value)}.")
    return number


def _interval(low, high, low_open, high_open) -> str:
    if low is None and high is None:
        return "finite"
    if high is None:
        return f"a finite number {'>' if low_open else '>='} {low}"
    if low is None:
        return f"a finite number {'<' if high_open else '<='} {high}"
    return (f"in the {'open ' if low_open and high_open else ''}interval "
            f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")


def integer_iv(value, name: str, *, low=None, high=None, allow_none=False):
    """An integer within ``[low, high]`` → ``int``; integral floats (``4.0``) are accepted.

    Configuration files often give ``4.0`` for ``4``; ``4.5`` is a ``TypeError``.
    """
    if value is None and allow_none:
        return None
    integral = isinstance(value, numbers.Integral) or (
        isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer())
    if _is_bool(value) or not integral:
        kind = "None or an integer" if allow_none else "an integer"
        raise TypeError(f"`{name}` must be {kind}, got {shown(value)}.")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        if high is None:
            bound = f">= {low}"
        elif low is None:
            bound = f"<= {high}"
        else:
            bound = f"in [{low}, {high}]"
        raise ValueError(f"`{name}` must be an integer {bound}, got {shown(value)}.")
    return number


def bool_iv(value, name: str) -> bool:
    """``True`` or ``False`` (numpy booleans too) → ``bool``; ``0``/``1`` are a ``TypeError``."""
    if not _is_bool(value):
        raise TypeError(f"`{name}` must be True or False, got {shown(value)}.")
    return bool(value)


def choice_iv(value, name: str, choices):
    """One of ``choices`` — all strings or all integers — with a "did you mean" for strings."""
    choices = tuple(choices)
    strings = all(isinstance(c, str) for c in choices)
    listed = ", ".join(map(repr, choices))
    if (strings and not isinstance(value, str)) or (not strings and (
            _is_bool(value) or not isinstance(value, numbers.Integral))):
        raise TypeError(f"`{name}` must be one of {listed}, got {shown(value)}.")
    if value not in choices:
        hint = did_you_mean(value, choices) if strings else ""
        raise ValueError(f"`{name}` must be one of {listed}, got {shown(value)}.{hint}")
    return value if strings else int(value)


def seed_iv(seed, name: str = "seed") -> np.random.Generator:
    """``None`` (fresh OS entropy), a non-negative int or a Generator → a ``Generator``.

    A Generator is returned as it is (and advanced by the caller's draws), so successive
    calls that share one draw successive, different numbers.
    """
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if _is_bool(seed) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"`{name}` must be None, a non-negative integer or a "
                        f"numpy.random.Generator, got {shown(seed)}.")
    if seed < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {shown(seed)}.")
    return np.random.default_rng(int(seed))


def tail_fraction_iv(tail_fraction, name: str = "tail_fraction") -> float:
    """``β`` in ``[1/1000, 999/1000]`` → ``float``.

    ``β`` is used as the nearest fraction with denominator ≤ 1000 (exact tail counts), so a
    value below ``1/2000`` would round to 0 and one above ``1999/2000`` to 1.
    """
    beta = real_iv(tail_fraction, name, low=0.0, high=1.0, low_open=True, high_open=True)
    ratio = Fraction(beta).limit_denominator(MAX_TAIL_DENOMINATOR)
    if not (0 < ratio < 1):
        raise ValueError(f"`{name}` must be between 1/{MAX_TAIL_DENOMINATOR} and "
                         f"{MAX_TAIL_DENOMINATOR - 1}/{MAX_TAIL_DENOMINATOR} (it is read as "
                         f"the nearest fraction with denominator <= {MAX_TAIL_DENOMINATOR}), "
                         f"got {shown(tail_fraction)}.")
    return beta


def n_target_iv(n_target, name: str = "n_target", low: int = 2) -> int:
    """The best-of-N target ``N`` in ``[low, 10**7]`` → ``int``."""
    return integer_iv(n_target, name, low=low, high=MAX_N_TARGET)


def numeric_array_iv(values, name: str) -> np.ndarray:
    """``np.asarray(values)`` of a real (integer or floating) dtype, ragged input explained."""
    try:
        array = np.asarray(values)
    except ValueError as error:  # numpy refuses ragged nested sequences
        raise ValueError(f"`{name}` must be a rectangular array, got a ragged sequence "
                         f"(rows of different lengths); pad the rows to one length and "
                         f"mark the padding with `valid`.") from error
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {array.dtype}.")
    return array


def first_nonfinite(values: np.ndarray, where=None):
    """Index tuple and value of the first non-finite entry (among ``where`` when given)."""
    bad = ~np.isfinite(values) if where is None else (~np.isfinite(values) & where)
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return index, values[index]


def rewards_iv(rewards, name: str = "rewards"):
    """Finite rewards → ``(batch[B, m] float64 C-contiguous, was_1d)``.

    The result never aliases the caller's array when a conversion was needed, and nothing
    writes into it, so inputs are never modified.
    """
    batch, _, was_1d = masked_rewards_iv(rewards, None, name)
    return batch, was_1d


def masked_rewards_iv(rewards, valid, name: str = "rewards"):
    """Rewards and their validity mask → ``(batch[B, m] float64, mask[B, m] bool or None, was_1d)``.

    Only valid entries must be finite: a trainer marks an unscorable completion invalid and
    may leave NaN in its slot.
    """
    array = numeric_array_iv(rewards, name)
    if array.ndim not in (1, 2):
        raise ValueError(f"`{name}` must be 1-D (one group) or 2-D [B, m] (B groups of m "
                         f"rollouts), got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {array.shape}.")
    was_1d = array.ndim == 1
    batch = np.ascontiguousarray(array[None, :] if was_1d else array, dtype=np.float64)
    mask = valid_iv(valid, batch.shape, was_1d)
    finite = np.isfinite(batch)
    if not (finite.all() or (mask is not None and finite[mask].all())):
        (row, col), value = first_nonfinite(batch, mask)
        where = f"{name}[{col}]" if was_1d else f"row {row} of `{name}` (column {col})"
        raise ValueError(f"non-finite reward {value} in {where}; rewards must be finite "
                         f"(mark a reward that could not be computed invalid with `valid`).")
    return batch, mask, was_1d


def valid_iv(valid, shape, was_1d: bool, name: str = "valid"):
    """A validity mask of the rewards' shape → ``[B, m]`` bool array, or ``None``."""
    if valid is None:
        return None
    array = np.asarray(valid)
    if array.dtype != np.bool_:
        raise TypeError(f"`{name}` must be a boolean array (True = a valid rollout), got "
                        f"dtype {array.dtype}.")
    expected = (shape[1],) if was_1d else tuple(shape)
    if array.shape != expected:
        raise ValueError(f"`{name}` must have the shape of the rewards {expected}, got "
                         f"{array.shape}.")
    return np.ascontiguousarray(array[None, :] if was_1d else array)


def scores_iv(scores, reward_shape, was_1d: bool, name: str = "scores"):
    """Score vectors matching rewards ``[B, m]`` → ``[B, m, d]`` float64 (C-contiguous)."""
    array = numeric_array_iv(scores, name)
    expected = tuple(reward_shape)
    if array.ndim != len(expected) + 1 or array.shape[:-1] != expected:
        shape = "[m, d]" if was_1d else "[B, m, d]"
        raise ValueError(f"`{name}` must have shape {shape} = {expected} + (d,) to match "
                         f"the rewards, got {array.shape}.")
    if array.shape[-1] == 0:
        raise ValueError(f"`{name}` must have at least one column (d >= 1).")
    batch = np.ascontiguousarray(array[None] if was_1d else array, dtype=np.float64)
    if not np.all(np.isfinite(batch)):
        index, value = first_nonfinite(batch)
        raise ValueError(f"non-finite score {value} at `{name}` index "
                         f"{index[1:] if was_1d else index}; scores must be finite.")
    return batch
