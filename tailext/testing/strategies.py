"""Hypothesis strategies for rewards, tail settings and scores.

Every strategy yields finite values only. Reward batches come in *kinds* that stress
different parts of an advantage rule:

``"drawn"``
    Entries drawn one by one by hypothesis (best shrinking; many ties, since hypothesis
    fills most of an array with one value).
``"normal"``, ``"heavy"``, ``"light"``
    Gaussian, Student-t with 2 degrees of freedom (heavy upper and lower tails), and
    uniform (bounded, light tails) samples from a seeded :class:`numpy.random.Generator`.
``"ties"``
    Integer levels ``0..L-1`` with ``L`` in 2..4 (binary verifier rewards when ``L = 2``).
``"constant"``
    Every row all-equal (the degenerate group: a rule should return zeros, not NaN).

Independently of the kind, some rows of a batch are made all-equal, and the batch is
mapped to ``offset + scale · base`` with ``scale`` in ``{1, 1e-8, 1e8}`` and ``offset`` a
multiple of ``scale`` (so the relative resolution of the rewards is kept), then cast to
float64 or float32.

Examples
--------
>>> from hypothesis import given, settings
>>> from tailext.testing.strategies import reward_batches
>>> @settings(max_examples=5)
... @given(reward_batches(batch_size=(1, 3), group_size=(4, 8)))
... def test_finite(rewards):
...     assert rewards.ndim == 2 and np.isfinite(rewards).all()
>>> test_finite()
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .._arguments import choice_iv, integer_iv, real_iv, shown
from ..prefix import prefix_sizes, tail_count

__all__ = [
    "REWARD_KINDS",
    "SCALES",
    "OFFSETS",
    "TailProblem",
    "tail_fractions",
    "n_targets",
    "group_sizes",
    "reward_batches",
    "score_arrays",
    "rewards_and_scores",
    "tail_problems",
]

#: Kinds of reward batches (see the module docstring), in shrinking order: hypothesis moves
#: a failing example towards the first kinds, whose values are the most readable.
REWARD_KINDS = ("drawn", "ties", "normal", "light", "heavy", "constant")
#: Scales applied to every batch: ordinary, tiny and huge magnitudes.
SCALES = (1.0, 1e-8, 1e8)
#: Offsets, in units of the scale: a shift of 1e4 scales keeps ~12 significant digits in
#: float64 (and ~3 in float32, where differences of the base may round away: extra ties).
OFFSETS = (0.0, 1.0, -3.0, 100.0, 1e4)
#: Group sizes drawn rarely on top of the ordinary range (large-group code paths).
LARGE_GROUP_SIZES = (1024, 4096)
#: Nice tail fractions tried first (shrinking goes to the first: the default 0.25).
NICE_TAIL_FRACTIONS = (0.25, 0.5, 0.1, 0.2, 1.0 / 3.0)


def _size_range(size, name):
    """``int`` or ``(low, high)`` → ``(low, high)``, validated."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, (bool, np.bool_)):
        low = high = int(size)
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        low, high = (integer_iv(v, f"{name}[{i}]") for i, v in enumerate(size))
    else:
        raise TypeError(f"`{name}` must be an int >= 1 or a (low, high) pair, got "
                        f"{shown(size)}.")
    if not 1 <= low <= high:
        raise ValueError(f"`{name}` must be an int >= 1 or a (low, high) pair with "
                         f"1 <= low <= high, got {shown(size)}.")
    return low, high


def tail_fractions(min_value=0.05, max_value=0.5):
    """Tail fractions ``β`` in ``[min_value, max_value]``: nice fractions first, then floats.

    Parameters
    ----------
    min_value, max_value : float
        Bounds, ``0 < min_value <= max_value < 1``.
    """
    min_value = real_iv(min_value, "min_value", low=0.0, high=1.0, low_open=True,
                        high_open=True)
    max_value = real_iv(max_value, "max_value", low=min_value, high=1.0, high_open=True)
    nice = [b for b in NICE_TAIL_FRACTIONS if min_value <= b <= max_value]
    floats = st.floats(min_value, max_value, allow_nan=False, allow_subnormal=False)
    return st.one_of(st.sampled_from(nice), floats) if nice else floats


def n_targets(min_value=2, max_value=4096):
    """Best-of-N budgets ``N`` in ``[min_value, max_value]``: 128 first, then integers."""
    min_value = integer_iv(min_value, "min_value", low=2)
    max_value = integer_iv(max_value, "max_value", low=min_value)
    nice = [n for n in (128, 2, 16, 1024) if min_value <= n <= max_value]
    return st.one_of(st.sampled_from(nice), st.integers(min_value, max_value))


@lru_cache(maxsize=256)
def _valid_sizes(tail_fraction, low, high, n_prefixes, large):
    """Group sizes in ``[low, high]`` (plus ``large``) valid for the tail fit / prefixes."""
    def valid(m):
        if tail_fraction is None:
            return True
        if n_prefixes is None:
            return tail_count(m, tail_fraction) >= 2
        try:
            prefix_sizes(m, tail_fraction=tail_fraction, n_prefixes=n_prefixes)
        except ValueError:
            return False
        return True
    return ([m for m in range(low, high + 1) if valid(m)],
            [m for m in large if m > high and valid(m)])


def group_sizes(tail_fraction=None, *, group_size=(2, 64), n_prefixes=None,
                large_sizes=LARGE_GROUP_SIZES):
    """Group sizes ``m`` for which a tail fit with ``tail_fraction`` is valid.

    Parameters
    ----------
    tail_fraction : float or None
        With a ``β``, only sizes with ``tail_count(m, β) >= 2`` (the fit needs two tail
        samples); ``None`` allows every size in range.
    group_size : int or (int, int)
        Ordinary range of ``m``; shrinks towards the smallest valid size.
    n_prefixes : int or None
        If given, also require :func:`tailext.prefix_sizes` ``(m, β, n_prefixes)`` to be
        valid (Prefix-TEA).
    large_sizes : tuple of int
        Sizes above the range drawn rarely (about 1 example in 16).

    Raises
    ------
    ValueError
        If no size in range is valid.
    """
    low, high = _size_range(group_size, "group_size")
    beta = None if tail_fraction is None else float(tail_fraction)
    ordinary, large = _valid_sizes(beta, low, high, n_prefixes, tuple(large_sizes))
    if not ordinary:
        raise ValueError(f"no group size in [{low}, {high}] is valid for tail_fraction="
                         f"{tail_fraction} and n_prefixes={n_prefixes}.")
    strategy = st.sampled_from(ordinary)
    if not large:
        return strategy
    return st.integers(0, 15).flatmap(
        lambda u: st.sampled_from(large) if u == 15 else strategy)


def _base_values(kind, shape, rng, draw):
    """Unscaled rewards of one kind (see the module docstring)."""
    if kind == "drawn":
        return draw(hnp.arrays(np.float64, shape,
                               elements=st.floats(-10.0, 10.0, allow_subnormal=False)))
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "heavy":
        return rng.standard_t(2.0, size=shape)
    if kind == "light":
        return rng.uniform(-1.0, 1.0, size=shape)
    if kind == "ties":
        levels = draw(st.integers(2, 4))
        return rng.integers(0, levels, size=shape).astype(np.float64)
    if kind == "constant":
        return np.repeat(rng.standard_normal((shape[0], 1)), shape[1], axis=1)
    raise ValueError(f"unknown reward kind {kind!r}; known: {REWARD_KINDS}.")


@st.composite
def reward_batches(draw, *, batch_size=(1, 8), group_size=(2, 64), tail_fraction=None,
                   n_prefixes=None, kinds=REWARD_KINDS, dtypes=(np.float64, np.float32),
                   scales=SCALES, offsets=OFFSETS, large_sizes=LARGE_GROUP_SIZES):
    """Reward batches ``[B, m]`` of finite values (see the module docstring).

    Parameters
    ----------
    batch_size : int or (int, int)
        ``B`` or its range.
    group_size : int or (int, int)
        Ordinary range of ``m`` (see :func:`group_sizes`).
    tail_fraction : float or None
        If given, ``m`` keeps ``ceil(β m) >= 2`` so the batch is valid for a tail fit.
    n_prefixes : int or None
        If given (with ``tail_fraction``), ``m`` is valid for Prefix-TEA.
    kinds : sequence of str
        Subset of :data:`REWARD_KINDS`.
    dtypes : sequence of dtype
        float64 and/or float32.
    scales, offsets : sequence of float
        Magnitudes ``scale`` and shifts ``offset / scale`` (see :data:`OFFSETS`).
    large_sizes : tuple of int
        Rare large ``m`` (``()`` to disable); with them ``B`` is capped at 2.

    Returns
    -------
    SearchStrategy of ndarray, shape ``(B, m)``
        C-contiguous, finite, of one of ``dtypes``.
    """
    m = draw(group_sizes(tail_fraction, group_size=group_size, n_prefixes=n_prefixes,
                         large_sizes=large_sizes))
    low, high = _size_range(batch_size, "batch_size")
    if m > _size_range(group_size, "group_size")[1]:
        high = max(low, min(high, 2))  # keep rare large groups cheap
    n_groups = draw(st.integers(low, high))
    kinds = tuple(choice_iv(kind, "kinds", REWARD_KINDS) for kind in kinds)
    kind = draw(st.sampled_from(kinds))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    base = np.array(_base_values(kind, (n_groups, m), rng, draw), dtype=np.float64)
    if n_groups > 1 and kind != "constant":
        constant_rows = draw(st.lists(st.integers(0, n_groups - 1), max_size=n_groups - 1))
        base[constant_rows] = base[constant_rows, :1]
    scale = draw(st.sampled_from(tuple(scales)))
    offset = draw(st.sampled_from(tuple(offsets))) * scale
    dtype = draw(st.sampled_from(tuple(dtypes)))
    rewards = np.ascontiguousarray(offset + scale * base, dtype=dtype)
    # t(2) draws are finite but unbounded; a float32 cast of an extreme one could overflow.
    if not np.all(np.isfinite(rewards)):
        rewards = np.ascontiguousarray(np.clip(offset + scale * base, -1e30, 1e30),
                                       dtype=dtype)
    return rewards


@st.composite
def score_arrays(draw, shape, *, dim=(1, 4), scales=(1.0, 1e-3, 1e3)):
    """Finite float64 score arrays ``shape + (d,)`` (per-rollout score vectors).

    Parameters
    ----------
    shape : tuple of int
        The rewards' shape, ``(B, m)`` or ``(m,)``.
    dim : int or (int, int)
        ``d`` or its range.
    scales : sequence of float
        Magnitudes of the scores.
    """
    low, high = _size_range(dim, "dim")
    d = draw(st.integers(low, high))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from(tuple(scales)))
    return scale * rng.standard_normal(tuple(shape) + (d,))


@st.composite
def rewards_and_scores(draw, *, dim=(1, 4), **reward_options):
    """Pairs ``(rewards[B, m], scores[B, m, d])``; options as :func:`reward_batches`."""
    rewards = draw(reward_batches(**reward_options))
    return rewards, draw(score_arrays(rewards.shape, dim=dim))


class TailProblem(NamedTuple):
    """Rewards with tail settings under which a tail fit on them is valid."""

    rewards: np.ndarray
    tail_fraction: float
    n_target: int


@st.composite
def tail_problems(draw, *, tail_fraction=(0.05, 0.5), n_target=(2, 4096), n_prefixes=None,
                  **reward_options):
    """:class:`TailProblem` draws: ``β``, ``N`` and rewards with ``ceil(β m) >= 2``.

    Parameters
    ----------
    tail_fraction : (float, float)
        Range of ``β`` (see :func:`tail_fractions`).
    n_target : (int, int)
        Range of ``N`` (see :func:`n_targets`).
    n_prefixes : int or None
        If given, ``m`` is also valid for Prefix-TEA with that many prefixes.
    **reward_options
        Passed to :func:`reward_batches` (e.g. ``batch_size``, ``group_size``, ``dtypes``).
        The group-size range must contain a valid size for every ``β`` in range
        (e.g. ``m`` up to ``ceil(2 / β_min)``).
    """
    beta = draw(tail_fractions(*tail_fraction))
    low, high = _size_range(reward_options.get("group_size", (2, 64)), "group_size")
    if not _valid_sizes(float(beta), low, high, n_prefixes, ())[0]:
        reject()  # no valid m in range for this β (e.g. too few rollouts for 3 prefixes)
    n = draw(n_targets(*n_target))
    rewards = draw(reward_batches(tail_fraction=beta, n_prefixes=n_prefixes,
                                  **reward_options))
    return TailProblem(rewards, beta, n)
