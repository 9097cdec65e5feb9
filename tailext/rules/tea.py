"""The TEA family: tail-extrapolated advantages fitted on each group's upper tail.

``tea`` (the training form), ``tea_raw`` (the unclipped, uncentred shaped reward) and
``prefix_tea`` (debiased over nested prefixes). The math is in ``docs/math.md``; the tail fit
and the shaped reward ψ are in :mod:`tailext.estimators` and :mod:`tailext._kernels`.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import _kernels
from .._arguments import integer_iv
from ..estimators import prefix_plan, tail_settings_iv, top_blocks
from ..prefix import prefix_sizes, tail_count, tail_fraction_ratio
from .dispatch import check_status, checks_finite
from .registry import register_rule

__all__ = ["tea_advantages", "tea_raw_advantages", "prefix_tea_advantages"]

_TEA_PROPERTIES = {"shift_invariant", "scale_equivariant", "deterministic"}


def _tail_options(*, tail_fraction, n_target, scale_floor):
    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    return {"tail_fraction": settings.tail_fraction, "n_target": settings.n_target,
            "scale_floor": scale_floor}


def _tea_min_group_size(*, tail_fraction, n_target, scale_floor):
    return _smallest_tail_group(tail_fraction)


@functools.lru_cache(maxsize=256)
def _smallest_tail_group(tail_fraction) -> int:
    ratio = tail_fraction_ratio(tail_fraction)  # cached: ≈ 7 µs, paid on every call
    return ratio.denominator // ratio.numerator + 1  # least m with ceil(β m) >= 2


@functools.lru_cache(maxsize=256)
def _prefix_arrays(m, tail_fraction, order=None, n_prefixes=None):
    """``(sizes, tail counts, weights)`` of the prefixes for a group of ``m`` (``order=None``:
    the single prefix ``m`` with weight 1, i.e. TEA), as the kernel takes them; cached, as
    the plan depends only on these arguments (a Prefix-TEA plan costs ≈ 40 µs to build)."""
    if order is None:
        sizes, weights = [m], [1.0]
    else:
        plan = prefix_plan(m, tail_fraction=tail_fraction, order=order, n_prefixes=n_prefixes)
        sizes, weights = plan.sizes.tolist(), plan.weights.tolist()
    counts = [tail_count(int(n), tail_fraction) for n in sizes]
    return (np.asarray(sizes, dtype=np.int64), np.asarray(counts, dtype=np.int64),
            np.asarray(weights, dtype=np.float64))


def _prefix_advantages(rewards, settings, arrays, raw=False):
    """The prefix kernel's ``(advantages, tied tails)``, its status checked."""
    sizes, counts, weights = arrays
    out, tied, status = _kernels.prefix_tea_batch(
        rewards, top_blocks(rewards, sizes, counts), sizes, counts, weights,
        settings.floor_abs, settings.floor_rel, settings.inv_beta, settings.kappa, raw)
    check_status(status)
    return out, tied


def _fit_and_psi_torch(x, k, settings):
    """ψ(r; τ̂(x)) of every entry of ``x[B, n]``, the tail fit of its own row."""
    import torch

    top = torch.topk(x, k, dim=1).values  # descending
    h = top[:, -1:]
    mu = top.mean(dim=1, keepdim=True)
    s = torch.sqrt(((top - mu) ** 2).mean(dim=1, keepdim=True))
    floor = settings.floor_abs
    if settings.floor_rel > 0.0:
        floor = floor + settings.floor_rel * torch.sqrt(
            ((x - x.mean(dim=1, keepdim=True)) ** 2).mean(dim=1, keepdim=True))
    s = torch.clamp(s, min=floor) if isinstance(floor, float) else torch.maximum(s, floor)
    positive = s > 0
    curvature = torch.where(positive, settings.kappa / (2.0 * s), torch.zeros_like(s))
    psi = (x - h) * (1.0 + curvature * (x + h - 2.0 * mu)) * settings.inv_beta
    return torch.where((x >= h) & positive, psi, torch.zeros_like(psi)), top


def _tied_tails_torch(top, x):
    low, high = top.amin(dim=1, keepdim=True), top.amax(dim=1, keepdim=True)
    inside = ((top > low) & (top < high)).any(dim=1)
    repeated = ((top == low).sum(dim=1) >= 2) | ((top == high).sum(dim=1) >= 2)
    constant = x.amin(dim=1) == high[:, 0]
    return ~inside & repeated & ~constant


def _prefix_combined_torch(x, sizes, weights, settings):
    """``c_i = Σ_j w_j (m/n_j) 1{i < n_j} ψ₊(r_i; τ̂(r[:n_j]))``, centred (TEA: one prefix)."""
    import torch

    m = x.shape[1]
    combined = torch.zeros_like(x)
    for n_j, w_j in zip(sizes, weights):
        n_j = int(n_j)
        psi, top = _fit_and_psi_torch(x[:, :n_j], tail_count(n_j, settings.tail_fraction),
                                      settings)
        combined[:, :n_j] += float(w_j) * (m / n_j) * torch.clamp(psi, min=0.0)
    return combined - combined.mean(dim=1, keepdim=True), _tied_tails_torch(top, x)


def _tea_torch(x, valid, *, tail_fraction, n_target, scale_floor):
    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    return _prefix_combined_torch(x, [x.shape[1]], [1.0], settings)


@register_rule(
    "tea", torch=_tea_torch, check_options=_tail_options, min_group_size=_tea_min_group_size,
    properties=_TEA_PROPERTIES | {"zero_sum", "permutation_equivariant", "monotone"},
    label="TEA", tail_fit=True,
    formula=r"A_i = \psi_+(r_i;\hat\tau) - \frac{1}{m}\sum_j \psi_+(r_j;\hat\tau)")
@checks_finite
def tea_advantages(rewards, *, tail_fraction=0.25, n_target=128, scale_floor=None):
    r"""Tail-Extrapolated Advantage (TEA), the training form.

    .. math::

        A_i = (a_i)_+ - \frac1m\sum_j (a_j)_+,\qquad a_i = \psi(r_i;\hat\tau).

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Rewards of ``B`` groups of ``m`` rollouts; needs ``ceil(β m) >= 2``.
    tail_fraction : float, default 0.25
        ``β``, the upper-tail fraction of the fit.
    n_target : int, default 128
        ``N``, the best-of-N deployment budget extrapolated to.
    scale_floor : float or None
        See :func:`tailext.tail_vector`.

    Returns
    -------
    ndarray, float64, same shape as ``rewards``
        Advantages that sum to zero in every group, non-decreasing in the reward within a
        group, invariant to adding a constant to a group and equivariant to scaling it by
        ``a > 0`` (default floor).

    Notes
    -----
    Only the top ``k = ceil(β m)`` rollouts can get a positive raw advantage; the clipping
    ``(·)₊`` removes the negative dip of ψ just above the threshold, so the update never
    pushes down a tail sample. A group of equal rewards gets zeros. With 0/1 rewards the
    fit sees ties (a :class:`tailext.DiscreteRewardWarning`; see the binary-rewards page).

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import tea_advantages
    >>> A = tea_advantages(np.array([[0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.8, 0.7]]))
    >>> bool(abs(A.sum()) < 1e-12 and A.argmax() == 3)
    True
    """
    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    return _prefix_advantages(rewards, settings,
                              _prefix_arrays(rewards.shape[1], settings.tail_fraction))


def _tea_raw_torch(x, valid, *, tail_fraction, n_target, scale_floor):
    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    psi, top = _fit_and_psi_torch(x, tail_count(x.shape[1], settings.tail_fraction), settings)
    return psi, _tied_tails_torch(top, x)


@register_rule(
    "tea_raw", torch=_tea_raw_torch, check_options=_tail_options,
    min_group_size=_tea_min_group_size, label="TEA (raw)", tail_fit=True,
    properties=_TEA_PROPERTIES | {"permutation_equivariant"},
    formula=r"a_i = \psi(r_i;\hat\tau)")
@checks_finite
def tea_raw_advantages(rewards, *, tail_fraction=0.25, n_target=128, scale_floor=None):
    """Raw TEA advantage ``a_i = ψ(r_i; τ̂)``, ``τ̂`` fitted on the same group.

    Not centred and not clipped: ``(1/m) Σ_i a_i S_i`` is the direct gradient estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import tea_raw_advantages
    >>> a = tea_raw_advantages(np.arange(8.0))
    >>> bool(a[:6].max() == 0.0 and a[7] > 0)
    True
    """
    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    return _prefix_advantages(rewards, settings,
                              _prefix_arrays(rewards.shape[1], settings.tail_fraction), raw=True)


def _prefix_options(*, tail_fraction, n_target, order, n_prefixes, scale_floor):
    options = _tail_options(tail_fraction=tail_fraction, n_target=n_target,
                            scale_floor=scale_floor)
    n_prefixes = integer_iv(n_prefixes, "n_prefixes", low=2)
    order = integer_iv(order, "order", low=0, high=n_prefixes - 1)
    return {**options, "order": order, "n_prefixes": n_prefixes}


@functools.lru_cache(maxsize=256)
def _smallest_prefix_group(tail_fraction, n_prefixes) -> int:
    m = 2
    while True:  # terminates: m = n_prefixes·q + q is always valid
        try:
            prefix_sizes(m, tail_fraction=tail_fraction, n_prefixes=n_prefixes)
            return m
        except ValueError:
            m += 1


def _prefix_min_group_size(*, tail_fraction, n_target, order, n_prefixes, scale_floor):
    return _smallest_prefix_group(tail_fraction, n_prefixes)


def _prefix_tea_torch(x, valid, *, tail_fraction, n_target, order, n_prefixes, scale_floor):
    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    plan = prefix_plan(x.shape[1], tail_fraction=settings.tail_fraction, order=order,
                       n_prefixes=n_prefixes)
    return _prefix_combined_torch(x, plan.sizes.tolist(), plan.weights.tolist(), settings)


@register_rule(
    "prefix_tea", torch=_prefix_tea_torch, check_options=_prefix_options,
    min_group_size=_prefix_min_group_size, label="Prefix-TEA", tail_fit=True,
    properties=_TEA_PROPERTIES | {"zero_sum"},
    formula=r"c_i = \sum_j w_j \frac{m}{n_j}\mathbf 1\{i \le n_j\}\,\psi_+(r_i;\hat\tau(r_{1:n_j})),"
            r"\quad A_i = c_i - \frac{1}{m}\sum_l c_l")
@checks_finite
def prefix_tea_advantages(rewards, *, tail_fraction=0.25, n_target=128, order=2,
                          n_prefixes=3, scale_floor=None):
    r"""Prefix-TEA advantage: TEA debiased by a jackknife over nested prefixes.

    With prefix sizes ``n_1 < … < n_J = m`` (:func:`tailext.prefix_sizes`) and weights ``w``
    (:func:`tailext.cancellation_weights` of order ``L``):

    .. math::

        c_i = \sum_j w_j \frac{m}{n_j} \mathbf 1\{i \le n_j\}\,
        \psi_+(r_i; \hat\tau(r_{1:n_j})),\qquad A_i = c_i - \frac1m\sum_l c_l.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        The rollout order is used as given (rollouts are exchangeable); the smallest prefix
        needs ``ceil(β n_1) >= 2``.
    tail_fraction, n_target, scale_floor
        As in :func:`tea_advantages`.
    order : int, default 2
        ``L``, the number of bias terms ``n^{-1} … n^{-L}`` cancelled.
    n_prefixes : int, default 3
        ``J >= L + 1``.

    Notes
    -----
    Not permutation-equivariant: earlier rollouts enter more prefixes. It sums to zero per
    group and is shift-invariant and scale-equivariant like TEA, but the negative weights
    make it non-monotone in the reward.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import prefix_tea_advantages
    >>> r = np.random.default_rng(0).normal(size=(2, 64))
    >>> A = prefix_tea_advantages(r)
    >>> A.shape, bool(np.allclose(A.sum(axis=1), 0.0))
    ((2, 64), True)
    """
    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    return _prefix_advantages(rewards, settings, _prefix_arrays(
        rewards.shape[1], settings.tail_fraction, int(order), int(n_prefixes)))
