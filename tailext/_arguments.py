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
           "seed_iv", "tail_fraction_iv", "n_target_iv", "budgets_iv", "numeric_array_iv",
           "finite_array_iv", "rewards_iv", "masked_rewards_iv", "scores_iv", "valid_iv",
           "distribution_iv", "paired_scores_iv", "tail_iv", "first_nonfinite",
           "MAX_TAIL_DENOMINATOR", "MAX_N_TARGET"]

#: Largest denominator used when a float ``tail_fraction`` is read as a fraction ``p/q``
#: (so ``k = ceil(β m)`` is exact integer arithmetic); ``β`` must lie in
#: ``[1/1000, 999/1000]`` for that fraction to be neither 0 nor 1.
MAX_TAIL_DENOMINATOR = 1000

#: Largest best-of-N target: ``e_N`` (and so ``κ_N``) is computed by quadrature, accurate to
#: about 1e-13 up to here (see :func:`tailext.expected_max_normal`).
MAX_N_TARGET = 10**7


def shown(value) -> str:
    """A value as the user gave it: ``repr``, with numpy numbers in their own precision.

    ``np.float32(0.3)`` shows as ``0.3`` (numpy's shortest float32 form, not the float64
    ``0.30000001192092896`` it converts to) and ``np.int64(5)`` as ``5``; long texts are cut
    at 80 characters.
    """
    if isinstance(value, (np.number, np.bool_)):
        text = str(value)
    elif isinstance(value, np.generic):
        text = repr(value.item())
    else:
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
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range (10**400) is not a finite number
        number = math.inf
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
    if not _is_integral(value):
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


def _is_integral(value) -> bool:
    """An int (not a bool), or a real number with an integral value (``4.0``, not NaN)."""
    if _is_bool(value) or not isinstance(value, numbers.Real):
        return False
    if isinstance(value, numbers.Integral):
        return True
    try:
        return float(value).is_integer()  # False for NaN and inf
    except OverflowError:  # a Fraction beyond the float range
        return False


def bool_iv(value, name: str) -> bool:
    """``True`` or ``False`` (numpy booleans too) → ``bool``; ``0``/``1`` are a ``TypeError``."""
    if not _is_bool(value):
        raise TypeError(f"`{name}` must be True or False, got {shown(value)}.")
    return bool(value)


def choice_iv(value, name: str, choices):
    """One of ``choices`` — all strings or all integers — with a "did you mean" for strings.

    Integer choices accept integral floats (``1.0`` for ``1``), as :func:`integer_iv` does.
    """
    choices = tuple(choices)
    strings = all(isinstance(c, str) for c in choices)
    listed = ", ".join(map(repr, choices))
    if not (isinstance(value, str) if strings else _is_integral(value)):
        raise TypeError(f"`{name}` must be one of {listed}, got {shown(value)}.")
    if value not in choices:
        hint = did_you_mean(value, choices) if strings else ""
        raise ValueError(f"`{name}` must be one of {listed}, got {shown(value)}.{hint}")
    return str(value) if strings else int(value)


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


def budgets_iv(n, name: str = "n", *, low: int = 1, high=None, high_what: str = ""):
    """An integer or a non-empty 1-D sequence of integers in ``[low, high]`` → ``int64[C]``.

    Entries of a sequence are named ``n[i]`` in messages; ``high_what`` says what ``high`` is
    (e.g. "the number of samples M").
    """
    if isinstance(n, np.ndarray) and n.ndim == 0:
        entries, names = [n[()]], [name]
    elif isinstance(n, (str, bytes, numbers.Number, np.generic)) or n is None:
        entries, names = [n], [name]
    else:
        try:
            entries = list(n)
        except TypeError:
            raise TypeError(f"`{name}` must be an integer or a 1-D sequence of integers, got "
                            f"{shown(n)}.") from None
        if not entries or np.ndim(n) != 1:
            raise ValueError(f"`{name}` must be an integer or a non-empty 1-D sequence of "
                             f"integers, got {shown(n)}.")
        names = [f"{name}[{i}]" for i in range(len(entries))]
    budgets = []
    for entry, entry_name in zip(entries, names):
        budget = integer_iv(entry, entry_name, low=low)
        if high is not None and budget > high:
            raise ValueError(f"`{entry_name}` must be <= {high_what} = {high}, got "
                             f"{shown(entry)}.")
        budgets.append(budget)
    return np.array(budgets, dtype=np.int64)


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


def finite_array_iv(values, name: str) -> np.ndarray:
    """A non-empty real array with finite entries → float64 (any shape)."""
    raw = numeric_array_iv(values, name)
    if raw.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {raw.shape}.")
    array = raw.astype(np.float64)
    if not np.all(np.isfinite(array)):
        index, _ = first_nonfinite(array)
        where = f" at index {index}" if index else ""
        raise ValueError(f"`{name}` must be finite, got {shown(raw[index])}{where}.")
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
        raise ValueError(f"`{name}` must have at least one column (d >= 1), got shape "
                         f"{array.shape}.")
    batch = np.ascontiguousarray(array[None] if was_1d else array, dtype=np.float64)
    if not np.all(np.isfinite(batch)):
        index, value = first_nonfinite(batch)
        raise ValueError(f"non-finite score {value} at `{name}` index "
                         f"{index[1:] if was_1d else index}; scores must be finite.")
    return batch


def distribution_iv(values, weights, values_name: str = "values", weights_name: str = "weights"):
    """Support points and probabilities → ``(values[B, K], probs[B, K], was_1d)``, rows summing to 1.

    ``weights`` must be real, finite, ``>= 0`` and not all zero in any row. Each row is
    divided by its largest weight before it is summed, so weights up to the float64 maximum
    (``1.8e308``) and down to subnormals normalize without overflow or underflow.
    """
    batch, was_1d = rewards_iv(values, values_name)
    raw = numeric_array_iv(weights, weights_name)
    expected = batch.shape[1:] if was_1d else batch.shape
    if raw.shape != expected:
        raise ValueError(f"`{weights_name}` must have the shape of `{values_name}` "
                         f"{expected}, got {raw.shape}.")
    probs = np.atleast_2d(raw.astype(np.float64))
    bad = ~np.isfinite(probs) | (probs < 0)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        index = index[1:] if was_1d else index
        raise ValueError(f"`{weights_name}` must be finite and >= 0, got {shown(raw[index])} "
                         f"at index {index}.")
    largest = probs.max(axis=1)
    if np.any(largest == 0):
        row = int(np.argmin(largest))
        where = "" if was_1d else f" in row {row}"
        raise ValueError(f"`{weights_name}` must have a positive entry in every row, got "
                         f"all zeros{where}.")
    scaled = probs / largest[:, None]  # entries in [0, 1]: the row sum cannot overflow
    return batch, scaled / scaled.sum(axis=1, keepdims=True), was_1d


def paired_scores_iv(a, b, names=("a", "b")):
    """Per-prompt scores of two methods on the same prompts → two float64 ``[P]``/``[P, C]``."""
    scores = []
    for name, values in zip(names, (a, b)):
        array = numeric_array_iv(values, name)
        if array.ndim not in (1, 2) or array.shape[0] == 0:
            raise ValueError(f"`{name}` must be [P] or [P, C] per-prompt scores with P >= 1, "
                             f"got shape {array.shape}.")
        scores.append(finite_array_iv(array, name))
    if scores[0].shape != scores[1].shape:
        raise ValueError(f"`{names[0]}` and `{names[1]}` must have the same shape (paired by "
                         f"prompt), got {scores[0].shape} and {scores[1].shape}.")
    return scores


def tail_iv(tail, n_groups: int, was_1d: bool, name: str = "tail"):
    """A tail vector ``(threshold, mean, scale)`` matching ``n_groups`` groups → three ``[B]``.

    Scalars broadcast over the groups of 2-D rewards; the scale must be ``>= 0``.
    """
    try:
        parts = [np.asarray(tail[i], dtype=np.float64) for i in range(3)]
    except (TypeError, IndexError, ValueError, KeyError):
        raise TypeError(f"`{name}` must be a TailVector (threshold, mean, scale), got "
                        f"{shown(tail)}.") from None
    expected = () if was_1d else (n_groups,)
    out = []
    for field, part in zip(("threshold", "mean", "scale"), parts):
        if part.shape != expected and not (not was_1d and part.shape == ()):
            raise ValueError(f"`{name}.{field}` must have shape {expected} to match the "
                             f"rewards, got {part.shape}.")
        part = finite_array_iv(part, f"{name}.{field}")
        out.append(np.ascontiguousarray(np.broadcast_to(part, (n_groups,))))
    if np.any(out[2] < 0):
        index = int(np.argmax(out[2] < 0))
        where = "" if parts[2].ndim == 0 else f" at index {(index,)}"
        raise ValueError(f"`{name}.scale` must be >= 0, got {shown(out[2][index])}{where}.")
    return out
