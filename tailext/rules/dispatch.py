""":func:`advantages`, the numpy entry point of every registered rule.

It validates the rewards, the validity mask and the options once, applies the policy of
:mod:`tailext.rules.policy` (invalid rollouts, groups too small for the rule) and calls the
rule's kernel on blocks of whole, valid groups, so kernels never see an invalid rollout or
a group too small for them. A kernel marked :func:`checks_finite` (every built-in one)
checks the rewards and its results for finiteness in its own passes and reports the rows
(:class:`NonFiniteRows`); for such kernels a float64 array goes to the kernel as it is and
the error messages come from the validators afterwards. Other kernels get validated,
finite rewards and their results are checked here.
"""

from __future__ import annotations

import numpy as np

from .._arguments import bool_iv, choice_iv, masked_rewards_iv, valid_iv
from .policy import (SMALL_GROUP_POLICIES, AdvantageResult, small_group_error, warn_discrete,
                     warn_small_groups)
from .registry import get_rule

__all__ = ["advantages", "compute_groups", "checks_finite", "check_status", "NonFiniteRows"]

#: Integers beyond this are not all exactly representable in float64.
_EXACT_INTEGERS = 2 ** 53


class NonFiniteRows(Exception):
    """Raised by a kernel marked :func:`checks_finite` when some rows of its block had a
    non-finite reward or advantage; ``status[b]`` holds the codes of
    :mod:`tailext._kernels` (0 fine, 1 a non-finite reward, 2 an advantage outside the
    float64 range)."""

    def __init__(self, status):
        super().__init__("non-finite rows")
        self.status = status


class _NonFiniteReward(ValueError):
    """A kernel found a non-finite reward (replaced by the validator's message)."""


def checks_finite(kernel):
    """Mark a numpy kernel that checks its rewards and its results for finiteness itself.

    Such a kernel raises :class:`NonFiniteRows` (through :func:`check_status`) instead of
    returning a non-finite advantage, and accepts non-finite rewards; :func:`advantages`
    then skips its own passes over the rewards and the result (for the fast kernels
    these passes cost as much as the kernel: about 35 µs each on ``[4096, 64]``).
    """
    kernel.checks_finite = True
    return kernel


def check_status(status):
    """Raise :class:`NonFiniteRows` if a kernel's ``status[B]`` flags a row."""
    if status.any():
        raise NonFiniteRows(status)


def _kernel_output(rule, block, options, rows=None):
    """The kernel's advantages and its per-group discrete flags (tail-fitting rules).

    A kernel's :class:`NonFiniteRows` becomes the error for the first flagged group
    (``rows[i]`` is the batch row of block row ``i``; ``None``: the block is the batch).
    """
    try:
        out = rule.numpy(block, **options)
    except NonFiniteRows as error:
        from .._kernels import BAD_OUTPUT  # numba: imported on first use, like the kernels

        first = int(np.flatnonzero(error.status)[0])
        row = first if rows is None else int(rows[first])
        if error.status[first] == BAD_OUTPUT:
            raise _overflow_error(rule, row, block[first]) from None
        raise _NonFiniteReward(f"non-finite reward in group {row}; rewards must be finite "
                               "(mark a reward that could not be computed invalid with "
                               "`valid`).") from None
    discrete = 0
    if rule.tail_fit:
        out, flags = out
        discrete = int(np.count_nonzero(flags))
    if type(out) is not np.ndarray or out.dtype is not _FLOAT64:
        out = np.asarray(out, dtype=np.float64)
    if out.shape != block.shape:
        raise ValueError(f"rule {rule.name!r} returned shape {out.shape} for rewards of shape "
                         f"{block.shape}; a rule must return one advantage per reward.")
    return out, discrete


def compute_groups(rule, batch, mask, options, policy, name="rewards", given=None,
                   minimum=None):
    """Advantages of validated ``batch[B, m]`` with ``mask`` (or ``None``) → ``(out, info)``.

    Groups are processed in blocks of equal valid size: each block's valid rewards, in their
    order, are packed into ``[G, s]`` and handed to the kernel, and the results are put back;
    invalid rollouts and groups below the rule's minimum get 0. ``info`` is
    ``(small_groups, invalid, discrete_groups)``. ``given`` are the options as the caller
    passed them, for the error message (default: ``options``); ``minimum`` the rule's
    minimum group size under them, when the caller knows it.
    """
    n_groups, m = batch.shape
    if minimum is None:
        minimum = int(rule.min_group_size(**options))
    checked = getattr(rule.numpy, "checks_finite", False)
    if mask is None and m >= minimum:
        out, discrete = _kernel_output(rule, batch, options)
        return out if checked else _checked(rule, out, batch), (0, 0, discrete)
    counts = np.full(n_groups, m) if mask is None else mask.sum(axis=1)
    small = (counts > 0) & (counts < minimum)
    if policy == "raise" and small.any():
        row = int(np.argmax(small))
        where = "the group" if n_groups == 1 else f"group {row} of `{name}`"
        raise small_group_error(rule, options if given is None else given,
                                int(counts[row]), minimum, where)
    out = np.zeros_like(batch)
    # Valid entries first, each row's order kept (a stable sort of the invalid flags).
    order = None if mask is None else np.argsort(~mask, axis=1, kind="stable")
    discrete = 0
    for size in np.unique(counts[counts >= minimum]):
        rows = np.flatnonzero(counts == size)
        if order is None:
            block = batch[rows]
        else:
            columns = order[rows, :size]
            block = np.ascontiguousarray(np.take_along_axis(batch[rows], columns, axis=1))
        advantages, flagged = _kernel_output(rule, block, options, rows)
        discrete += flagged
        if order is None:
            out[rows] = advantages
        else:
            out[rows[:, None], columns] = advantages
    n_small = int(small.sum())
    invalid = 0 if mask is None else int(mask.size - counts.sum())
    return out if checked else _checked(rule, out, batch), (n_small, invalid, discrete)


def _overflow_error(rule, row, rewards):
    low, high = float(rewards.min()), float(rewards.max())
    return ValueError(f"method {rule.name!r} gave a non-finite advantage in group {row}, "
                      f"whose rewards span [{low!r}, {high!r}]: the result is outside the "
                      "float64 range; rescale the rewards.")


def _checked(rule, out, batch):
    """``out``, or a clear error where the rule could not represent an advantage."""
    finite = np.isfinite(out)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        raise _overflow_error(rule, row, batch[row])
    return out


def _plain_float64(rewards) -> bool:
    """Whether ``rewards`` is already a C-contiguous float64 ``(m,)`` or ``[B, m]`` array."""
    return (type(rewards) is np.ndarray and rewards.dtype is _FLOAT64
            and rewards.ndim in (1, 2) and rewards.size > 0
            and rewards.strides[-1] == 8 and (rewards.ndim == 1 or
                                              rewards.strides[0] == 8 * rewards.shape[1]))


_FLOAT64 = np.dtype(np.float64)
#: Resolved option sets by rule (name, kernel, validator, defaults) and options with their
#: types: validating them costs 3–12 µs warm and up to ~100 µs when the interpreter's
#: caches are cold (measured between kernel calls on [4096, 64]), against 0.2–0.35 ms for
#: the fastest kernels; a composed rule's components cost ~60 µs to validate and ~20 µs to
#: derive its attributes from, so its specialized rule is kept too.
_RESOLVED: dict = {}
_RESOLVED_MAX = 1024
_IMMUTABLE = (int, float, str, bool, type(None))


def _frozen(value):
    """A hashable stand-in for an option value that keeps its type: lists, tuples and
    mappings (a composed rule's components, as a config gives them) recursively; raises
    ``TypeError`` for anything else unhashable."""
    if isinstance(value, (list, tuple)):
        return type(value), tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return dict, tuple((key, _frozen(item)) for key, item in value.items())
    hash(value)
    return type(value), value


def _immutable(value) -> bool:
    """Whether a resolved option value can be shared between calls: scalars of immutable
    types, and tuples of them or of a composed rule's components (whose options are)."""
    if type(value) in _IMMUTABLE:
        return True
    if isinstance(value, tuple):
        if hasattr(value, "rule") and hasattr(value, "options"):  # a Component
            return _immutable(value.weight) and all(map(_immutable, value.options.values()))
        return all(map(_immutable, value))
    return False


#: id(rule) → ``[rule, a copy of its options, its part of a _RESOLVED key (None if its
#: defaults are unhashable), its _resolved result without options (None until known)]``:
#: freezing a rule's defaults took 11 of the 21 µs a one-group call took, and hashing the
#: nested key is a walk over cold objects after a call that streams the caches.
_RULES: dict = {}


def _rule_entry(rule):
    """``rule``'s :data:`_RULES` entry, made once per rule object (and again if its default
    options were changed in place)."""
    entry = _RULES.get(id(rule))
    if entry is None or entry[0] is not rule or entry[1] != rule.options:
        try:
            key = (rule.name, rule.numpy, rule.check_options,
                   _frozen(tuple(rule.options.items())))
        except TypeError:
            key = None
        entry = [rule, dict(rule.options), key, None]
        if len(_RULES) < _RESOLVED_MAX:
            _RULES[id(rule)] = entry
    return entry


def _resolved(rule, options):
    """``(rule.resolve(options), minimum group size, rule specialized to them)``, memoized
    for option values that are immutable (a resolved ``seed`` is a Generator, so the options
    of seeded rules are resolved on every call); a call without options finds it on the
    rule's entry. The cache key has each value's type, so ``True`` and ``1`` stay apart.
    Callers must not modify the result."""
    entry = _rule_entry(rule)
    if not options and entry[3] is not None:
        return entry[3]
    try:
        key = None if entry[2] is None else (
            entry[2], tuple((name, _frozen(value)) for name, value in options.items()))
        cached = None if key is None else _RESOLVED.get(key)
    except TypeError:  # an unhashable option value: the validator will say what it is
        cached, key = None, None
    if cached is None:
        resolved = rule.resolve(options)
        cached = resolved, int(rule.min_group_size(**resolved)), rule.specialized(resolved)
        if all(map(_immutable, resolved.values())):
            if key is not None and len(_RESOLVED) < _RESOLVED_MAX:
                _RESOLVED[key] = cached
            if not options:
                entry[3] = cached
    return cached


def _exact_integers(rule, rewards, batch, mask):
    """``batch``, or for a shift-invariant rule and int64/uint64 rewards beyond ``2^53``
    (which float64 cannot all hold), the rewards minus their row's smallest valid reward,
    subtracted in integer arithmetic (modulo ``2^64``, exact for every valid entry) and
    then converted: the rule sees differences rounded once, relative to the spread, not
    rewards rounded relative to their offset."""
    array = np.asarray(rewards)
    if ("shift_invariant" not in rule.properties or array.dtype.kind not in "iu"
            or array.dtype.itemsize < 8):
        return batch
    array = array[None, :] if array.ndim == 1 else array
    if not (array.max() > _EXACT_INTEGERS or array.min() < -_EXACT_INTEGERS):
        return batch
    fill = np.iinfo(array.dtype).max
    anchor = (array if mask is None else np.where(mask, array, fill)).min(axis=1,
                                                                          keepdims=True)
    shifted = array.astype(np.uint64) - anchor.astype(np.uint64)
    return np.ascontiguousarray(shifted.astype(np.float64))


def advantages(rewards, method="tea", *, valid=None, small_groups="raise", return_info=False,
               **options):
    """Advantages of every rollout under the rule ``method``.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Rewards of ``B`` groups (prompts) of ``m`` rollouts; finite where valid. Any real
        dtype; float16/float32 convert to float64 exactly, and int64/uint64 rewards beyond
        ``2^53`` (which float64 cannot all hold) are shifted by their group's smallest
        valid reward in integer arithmetic first when the rule is shift-invariant, so
        only their differences are rounded.
    method : str, default "tea"
        A name from :func:`available_methods` (or a registered :class:`AdvantageRule`).
    valid : array_like of bool, shape of ``rewards``, optional
        ``False`` marks rollouts that must not count: they are left out of their group's
        statistics (a group of 16 with 3 invalid rollouts is a group of 13, in its order)
        and get advantage 0. Their rewards may be NaN.
    small_groups : {"raise", "zero"}, default "raise"
        A group with fewer valid rollouts than the rule's minimum
        (``get_rule(method).min_group_size(...)``) raises ``ValueError``, or, with
        ``"zero"``, gets advantage 0 (with a :class:`SmallGroupWarning` once per call site).
    return_info : bool, default False
        Return an :class:`AdvantageResult` (advantages and the counts of small groups,
        invalid rollouts and tied-tail groups) instead of the array.
    **options
        The rule's keyword options (e.g. ``tail_fraction``, ``n_target`` for TEA); an
        option the rule does not accept is a ``TypeError``.

    Returns
    -------
    ndarray, float64, same shape as ``rewards`` (or :class:`AdvantageResult`)
        The built-in rules compute each group in its own frame (shifted by its maximum,
        scaled by a power of two near its spread), so the result is the exact advantage of
        the given values to float64 rounding relative to the group, from subnormal rewards
        to ``±1.8e308`` and at any offset.

    Raises
    ------
    ValueError
        Unknown method; a non-finite valid reward; a group too small under
        ``small_groups="raise"``; an advantage outside the float64 range.
    TypeError
        An option the rule does not accept, or an argument of the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import advantages
    >>> rewards = np.random.default_rng(0).normal(size=(4, 16))
    >>> A = advantages(rewards, method="tea", tail_fraction=0.25, n_target=128)
    >>> A.shape
    (4, 16)
    >>> valid = np.ones((4, 16), dtype=bool); valid[0, 13:] = False
    >>> B = advantages(rewards, method="tea", valid=valid)
    >>> bool(np.allclose(B[0, :13], advantages(rewards[0, :13], method="tea")))
    True
    """
    rule = get_rule(method)
    resolved, minimum, rule = _resolved(rule, options)
    # The common values pass without the validators (which give the messages otherwise).
    policy = (small_groups if type(small_groups) is str and small_groups in SMALL_GROUP_POLICIES
              else choice_iv(small_groups, "small_groups", SMALL_GROUP_POLICIES))
    if return_info is not False and return_info is not True:
        return_info = bool_iv(return_info, "return_info")
    if getattr(rule.numpy, "checks_finite", False) and _plain_float64(rewards):
        # The kernel checks finiteness (in a pass it makes anyway), so nothing here reads
        # the rewards; a non-finite one gets the validator's message below.
        was_1d = rewards.ndim == 1
        batch = rewards[None, :] if was_1d else rewards
        mask = valid_iv(valid, batch.shape, was_1d)
    else:
        batch, mask, was_1d = masked_rewards_iv(rewards, valid)
        batch = _exact_integers(rule, rewards, batch, mask)
    try:
        out, (n_small, invalid, discrete) = compute_groups(rule, batch, mask, resolved,
                                                           policy, given=options,
                                                           minimum=minimum)
    except _NonFiniteReward:
        masked_rewards_iv(rewards, valid)  # raises, naming the reward
        raise
    if n_small:
        warn_small_groups(rule, minimum)
    if discrete:
        warn_discrete(rule)
    out = out[0] if was_1d else out
    return AdvantageResult(out, n_small, invalid, discrete) if return_info else out
