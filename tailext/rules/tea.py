"""The TEA family: tail-extrapolated advantages fitted on each group's upper tail.

``tea`` (the training form), ``tea_raw`` (the unclipped, uncentred shaped reward) and
``prefix_tea`` (debiased over nested prefixes). The math is in ``docs/math.md``; the tail fit
and the shaped reward ψ are in :mod:`tailext.estimators` and :mod:`tailext._kernels`.
"""

from __future__ import annotations

import functools

import numpy as np

from .._arguments import choice_iv, integer_iv, seed_iv
from ..prefix import prefix_sizes, tail_count, tail_fraction_ratio
from .dispatch import check_status, checks_finite
from .registry import register_rule

# The kernels (numba) and the tail settings (κ: scipy) are imported in the functions that
# use them: registering the rules (import tailext.rules) stays cheap.
__all__ = ["tea_advantages", "tea_raw_advantages", "prefix_tea_advantages",
           "prefix_positions", "ORDERINGS"]

_TEA_PROPERTIES = {"shift_invariant", "scale_equivariant", "deterministic"}


def _tail_options(*, tail_fraction, n_target, scale_floor):
    from ..estimators import tail_settings_iv

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
def _prefix_arrays(m, tail_fraction, order, n_prefixes):
    """``(sizes, tail counts, weights)`` of the prefixes of a group of ``m``, as the kernel
    takes them; cached, as the plan depends only on these arguments (a Prefix-TEA plan
    costs ≈ 40 µs to build)."""
    from ..estimators import prefix_plan

    plan = prefix_plan(m, tail_fraction=tail_fraction, order=order, n_prefixes=n_prefixes)
    sizes, weights = plan.sizes.tolist(), plan.weights.tolist()
    counts = [tail_count(int(n), tail_fraction) for n in sizes]
    return (np.asarray(sizes, dtype=np.int64), np.asarray(counts, dtype=np.int64),
            np.asarray(weights, dtype=np.float64))


def _prefix_advantages(rewards, settings, arrays):
    """The prefix kernel's ``(advantages, tied tails)``, its status checked."""
    from .. import _kernels
    from ..estimators import top_blocks

    sizes, counts, weights = arrays
    out, tied, status = _kernels.prefix_tea_batch(
        rewards, top_blocks(rewards, sizes, counts), sizes, counts, weights,
        settings.floor_abs, settings.floor_rel, settings.inv_beta, settings.kappa, False)
    check_status(status)
    return out, tied


@functools.lru_cache(maxsize=256)
def _first_thresholds(m, tail_fraction):
    """``(k, z)`` of :func:`tailext._tea_kernel.tea_batch`: ``k = ceil(β m)`` and the
    standard-normal quantiles where ``k + 4``, ``k + 1.5``, ``k − 1.5`` and ``k − 4`` of
    ``m`` normal rewards are expected at or above ``mean + z·sd`` (only steering; the
    selection is exact for any rewards). Four thresholds rather than two (``k ± 2.5``) cut
    the counting passes after the first from 1.9 to 1.5 per row on normal rewards and from
    2.6–3.1 to 2.0–2.2 on exponential, uniform and t₃ ones (m = 64, k = 16)."""
    from statistics import NormalDist

    k = tail_count(m, tail_fraction)

    def quantile(rank):
        return NormalDist().inv_cdf(min(max(1.0 - rank / m, 0.5 / m), 1.0 - 0.5 / m))

    return k, tuple(quantile(k + offset) for offset in (4.0, 1.5, -1.5, -4.0))


def _tea_kernel_advantages(rewards, settings, raw=False):
    """TEA (``raw``: ψ) by :func:`tailext._tea_kernel.tea_batch` → ``(advantages, tied)``,
    its status checked."""
    from .._tea_kernel import tea_batch

    k, z = _first_thresholds(rewards.shape[1], settings.tail_fraction)
    out, tied, status = tea_batch(np.ascontiguousarray(rewards), k, z, settings.floor_abs,
                                  settings.floor_rel, settings.inv_beta, settings.kappa, raw)
    check_status(status)
    return out, tied


def _tail_psi_torch(rewards, values, count, settings, scale, sd):
    """ψ of the largest rewards of each row, the tail fitted on that row's group.

    ``rewards[B, w]`` orders the entries (−inf outside the group), ``values[B, w]`` are
    their frame values, ``count[B, 1]`` (int64) the group's size ``n_g`` and ``sd[B, 1]``
    its population sd in the frame (for the relative floor). One ``topk`` of the
    ``K = ceil(β w)`` largest: the tail is the first ``k = ceil(β n_g)`` of them, and only
    entries inside it can have ψ ≠ 0 (ψ vanishes at the threshold, so a tie there does not
    matter). Returns ``(psi[B, K], index[B, K], top[B, K], k)`` with ``top`` the rewards.
    """
    import torch

    from .. import _torch_ops

    ratio = tail_fraction_ratio(settings.tail_fraction)
    top, index = torch.topk(rewards, tail_count(rewards.shape[1], ratio), dim=1)
    tops = values.gather(1, index)
    k = _torch_ops.ceil_ratio(count, ratio.numerator, ratio.denominator)
    tail = _torch_ops.positions(tops) < k
    size = k.to(values.dtype).clamp(min=1.0)
    h = tops.gather(1, (k - 1).clamp(0, tops.shape[1] - 1))
    mu = _torch_ops.row_sum(tops, tail) / size
    deviation = _torch_ops.zeroed(tops - mu, tail)
    s = torch.sqrt((deviation * deviation).sum(dim=1, keepdim=True) / size)
    floor = settings.floor_abs / scale
    if settings.floor_rel > 0.0:
        floor = floor + settings.floor_rel * sd
    s = torch.maximum(s, floor)
    positive = s > 0
    curvature = torch.where(positive, settings.kappa / (2.0 * s), torch.zeros_like(s))
    psi = (tops - h) * (1.0 + curvature * (tops + h - 2.0 * mu)) * settings.inv_beta
    return torch.where(tail & positive, psi, torch.zeros_like(psi)), index, top, k


def _group_sd(values, member, count):
    """Population sd of each row's ``member`` entries (``count[B, 1]`` of them)."""
    import torch

    from .. import _torch_ops

    size = count.to(values.dtype).clamp(min=1.0)
    deviation = _torch_ops.zeroed(values - _torch_ops.row_sum(values, member) / size, member)
    return torch.sqrt((deviation * deviation).sum(dim=1, keepdim=True) / size)


def _tied_tails_torch(top, k, equal):
    """:func:`tailext.reference.tied_tails` from each group's largest rewards ``top``
    (descending), its tail size ``k`` and whether its rewards are all ``equal``."""
    from .. import _torch_ops

    tail = _torch_ops.positions(top) < k
    high = top[:, :1]
    low = top.gather(1, (k - 1).clamp(0, top.shape[1] - 1))
    inside = (tail & (top > low) & (top < high)).any(dim=1)
    repeated = (((tail & (top == low)).sum(dim=1) >= 2)
                | ((tail & (top == high)).sum(dim=1) >= 2))
    return ~inside & repeated & ~equal[:, 0]


def _group_tail_torch(x, valid, settings):
    """The frame and :func:`_tail_psi_torch` of each row's whole group of valid rewards."""
    from .. import _torch_ops

    frame = _torch_ops.row_frame(x, valid)
    sd = _torch_ops.std(_torch_ops.centred(frame), frame, 0)
    fit = _tail_psi_torch(_torch_ops.masked(x, valid, -float("inf")), frame.values,
                          frame.count, settings, frame.scale, sd)
    return frame, fit


def _tea_torch(x, valid, *, tail_fraction, n_target, scale_floor):
    """Masked TEA: a ``topk`` of ``ceil(β m)`` per row, then O(B m); the tail is the first
    ``ceil(β n)`` valid rewards, ``n`` the row's valid count."""
    import torch

    from ..estimators import tail_settings_iv

    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    frame, (psi, index, top, k) = _group_tail_torch(x, valid, settings)
    positive = torch.clamp(psi, min=0.0)
    mean = positive.sum(dim=1, keepdim=True) / frame.size
    out = torch.zeros_like(x).scatter(1, index, positive) - mean
    return out * frame.scale, _tied_tails_torch(top, k, frame.equal)


@register_rule(
    "tea", torch=_tea_torch, torch_masks=True, check_options=_tail_options,
    min_group_size=_tea_min_group_size,
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
    from ..estimators import tail_settings_iv

    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    return _tea_kernel_advantages(rewards, settings)


def _tea_raw_torch(x, valid, *, tail_fraction, n_target, scale_floor):
    """Masked raw TEA ψ: a ``topk`` of ``ceil(β m)`` per row, then O(B m)."""
    import torch

    from ..estimators import tail_settings_iv

    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    frame, (psi, index, top, k) = _group_tail_torch(x, valid, settings)
    out = torch.zeros_like(x).scatter(1, index, psi)
    return out * frame.scale, _tied_tails_torch(top, k, frame.equal)


@register_rule(
    "tea_raw", torch=_tea_raw_torch, torch_masks=True, check_options=_tail_options,
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
    from ..estimators import tail_settings_iv

    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    return _tea_kernel_advantages(rewards, settings, raw=True)


ORDERINGS = ("random", "given")


def _prefix_options(*, tail_fraction, n_target, order, n_prefixes, ordering, seed,
                    scale_floor):
    options = _tail_options(tail_fraction=tail_fraction, n_target=n_target,
                            scale_floor=scale_floor)
    n_prefixes = integer_iv(n_prefixes, "n_prefixes", low=2)
    order = integer_iv(order, "order", low=0, high=n_prefixes - 1)
    return {**options, "order": order, "n_prefixes": n_prefixes,
            "ordering": choice_iv(ordering, "ordering", ORDERINGS), "seed": seed_iv(seed)}


@functools.lru_cache(maxsize=256)
def _smallest_prefix_group(tail_fraction, n_prefixes) -> int:
    m = 2
    while True:  # terminates: m = n_prefixes·q + q is always valid
        try:
            prefix_sizes(m, tail_fraction=tail_fraction, n_prefixes=n_prefixes)
            return m
        except ValueError:
            m += 1


def _prefix_min_group_size(*, tail_fraction, n_target, order, n_prefixes, ordering, seed,
                           scale_floor):
    return _smallest_prefix_group(tail_fraction, n_prefixes)


@functools.lru_cache(maxsize=64)
def _prefix_tables(m, tail_fraction, order, n_prefixes):
    """Prefix plans of every group size ``n = 0..m`` → ``sizes[m+1, J]``, ``weights[m+1, J]``
    and the widths ``max_n sizes[n, j]`` (a tuple of ints).

    Rows below the smallest valid group (whose results the adapter discards) get weight 0.
    A group of ``n`` valid rollouts gathers row ``n`` on the device, so no host sync is needed
    to learn the valid counts; prefix ``j`` of every row lies in the first ``widths[j]``
    positions.
    """
    from ..estimators import prefix_plan

    sizes = np.ones((m + 1, n_prefixes), dtype=np.int64)
    weights = np.zeros((m + 1, n_prefixes))
    for n in range(_smallest_prefix_group(tail_fraction, n_prefixes), m + 1):
        plan = prefix_plan(n, tail_fraction=tail_fraction, order=order, n_prefixes=n_prefixes)
        sizes[n], weights[n] = plan.sizes, plan.weights
    return sizes, weights, tuple(int(width) for width in sizes.max(axis=0))


def prefix_positions(keys, count=None):
    """Random-order positions from uniform keys: ``π[b, ρ]`` = rank of ``keys[b, ρ]`` among
    ``keys[b, :n_b]`` (``n_b = count[b]``, default all) for ascending reward rank ``ρ``.

    The ``ordering="random"`` rule places the rollout of ascending reward rank ``ρ`` at
    position ``π[b, ρ]``; ``keys`` is ``seed``'s ``random((B, m))``. Entries ``ρ >= n_b`` are
    ``>= n_b``.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext.rules.tea import prefix_positions
    >>> prefix_positions(np.array([[0.7, 0.1, 0.4]])).tolist()
    [[2, 0, 1]]
    """
    keys = np.array(keys, dtype=np.float64)
    if count is not None:
        keys[np.arange(keys.shape[1]) >= np.asarray(count)[:, None]] = 2.0  # after every key
    return np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")


def _tie_means(values, ordered):
    """``values[G, n]`` (by ascending rank) averaged over runs of equal ``ordered`` rewards."""
    change = np.ones(values.shape, dtype=bool)
    change[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    if change.all():
        return values
    runs = np.cumsum(change.ravel()) - 1  # runs never span rows: change[:, 0] is True
    totals = np.bincount(runs, weights=values.ravel())
    return (totals / np.bincount(runs))[runs].reshape(values.shape)


def _in_random_order(rewards, seed, compute):
    """``compute`` on each group arranged in a random order keyed on its sorted rewards.

    The rollout of ascending rank ``ρ`` is placed at position ``π(ρ)``
    (:func:`prefix_positions` of ``seed``'s ``random((G, n))``), ``compute(arranged) ->
    (A, flags)`` runs on the arranged groups, each rollout gets its rank's advantage and
    tied rewards the mean of theirs: the result depends on the rewards only as a multiset,
    not on their order. With ``σ = argsort(u)`` (``σ_p`` is the rank at position ``p``)
    the arranged group is ``sorted[σ]``; no second sort is needed. Ties need no stable
    sort: tied rewards are interchangeable and then averaged.
    """
    ranks = np.argsort(rewards, axis=1)
    ordered = np.take_along_axis(rewards, ranks, axis=1)
    sigma = np.argsort(seed.random(rewards.shape), axis=1)
    advantages, flags = compute(np.take_along_axis(ordered, sigma, axis=1))
    by_rank = np.empty_like(advantages)
    np.put_along_axis(by_rank, sigma, advantages, axis=1)
    out = np.empty_like(by_rank)
    np.put_along_axis(out, ranks, _tie_means(by_rank, ordered), axis=1)
    return out, flags


def _prefix_positions_torch(frame, valid, ordering, seed):
    """Each column's position in the order that defines the prefixes → ``[B, m]`` (valid
    rollouts in ``[0, n)``, invalid ones after), or ``None`` for the identity; and, for
    ``"random"``, the descending order of the rewards (else ``None``).

    ``"given"``: the valid rollouts in their order. ``"random"``: the entry of ascending
    rank ``ρ`` goes to the rank of ``seed``'s key ``u[b, ρ]`` among the row's first ``n``
    keys (``u = random((B, m))``). The host sorts the keys (``σ = argsort(u)``, the ranks
    in processing order); restricted to the ranks below ``n``, ``σ`` lists them in that
    order, so the device needs one sort (of the rewards) and a cumulative count.
    """
    import torch

    from .. import _torch_ops

    if ordering == "given":
        return (None if valid is None else _torch_ops.compacting(valid, frame.count)), None
    order = _torch_ops.descending(frame)  # sorted entry t has ascending rank n − 1 − t
    sigma = _torch_ops.constant(np.argsort(seed.random(tuple(order.shape)), axis=1),
                                frame.rewards, torch.int64)
    slots = _torch_ops.compacting(sigma < frame.count, frame.count)  # rank σ_t's position
    by_rank = torch.empty_like(sigma).scatter(1, sigma, slots)
    t = _torch_ops.positions(order)
    rank = torch.where(t < frame.count, frame.count - 1 - t, t)  # invalid: ranks >= n
    return torch.empty_like(order).scatter(1, order, by_rank.gather(1, rank)), order


def _prefix_tea_torch(x, valid, *, tail_fraction, n_target, order, n_prefixes, ordering,
                      seed, scale_floor):
    """Masked Prefix-TEA: ``J`` top-k's, O(B m J) besides; ``ordering="random"`` adds two
    sorts of ``[B, m]`` (the rewards, the keys) and a host draw of ``B m`` uniforms.

    The rollouts are arranged in the order that defines the prefixes, valid ones first
    (:func:`_prefix_positions_torch`); each row's plan is gathered by its valid count from
    :func:`_prefix_tables`, prefix ``j`` is its first ``n_j`` arranged rollouts and its tail
    their ``ceil(β n_j)`` largest. With every rollout valid, ``"random"`` draws the orders
    numpy draws for the same seed.
    """
    import torch

    from .. import _torch_ops
    from ..estimators import tail_settings_iv

    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    m = x.shape[1]
    frame = _torch_ops.row_frame(x, valid)
    sizes, weights, widths = _prefix_tables(m, settings.tail_fraction, order, n_prefixes)
    sizes = _torch_ops.constant(sizes, x, torch.int64)[frame.count[:, 0]]
    weights = _torch_ops.constant(weights, x)[frame.count[:, 0]]
    position, by_reward = _prefix_positions_torch(frame, valid, ordering, seed)
    arranged, values = frame.rewards, frame.values
    if position is not None:
        arranged = torch.empty_like(x).scatter(1, position, arranged)
        values = torch.empty_like(x).scatter(1, position, values)
    combined = torch.zeros_like(x)  # c of every arranged position
    for j, width in enumerate(widths):
        size = sizes[:, j:j + 1]
        member = _torch_ops.positions(x[:, :width]) < size
        psi, index, top, k = _tail_psi_torch(
            _torch_ops.masked(arranged[:, :width], member, -float("inf")),
            values[:, :width], size, settings, frame.scale,
            _group_sd(values[:, :width], member, size))
        factor = weights[:, j:j + 1] * frame.size / size.to(x.dtype)
        combined = combined.scatter_add(1, index, factor * torch.clamp(psi, min=0.0))
    flags = _tied_tails_torch(top, k, frame.equal)  # the last prefix is the whole group
    if position is not None:
        combined = combined.gather(1, position)  # back to the rewards' columns
    if by_reward is not None:  # ordering="random": tied rewards get the mean of their c
        live = _torch_ops.positions(x) < frame.count
        tied = _torch_ops.tie_means(combined.gather(1, by_reward),
                                    frame.rewards.gather(1, by_reward), live)
        combined = torch.empty_like(tied).scatter(1, by_reward, tied)
    centre = _torch_ops.row_sum(combined, valid) / frame.size
    return (combined - centre) * frame.scale, flags


@register_rule(
    "prefix_tea", torch=_prefix_tea_torch, torch_masks=True, check_options=_prefix_options,
    min_group_size=_prefix_min_group_size, label="Prefix-TEA", tail_fit=True,
    properties=_TEA_PROPERTIES | {"zero_sum", "permutation_equivariant"},
    formula=r"c_{\pi(i)} = \sum_j w_j \frac{m}{n_j}\mathbf 1\{\pi(i) \le n_j\}\,"
            r"\psi_+(r_i;\hat\tau(\{r_l: \pi(l) \le n_j\})),"
            r"\quad A_i = c_i - \frac{1}{m}\sum_l c_l")
@checks_finite
def prefix_tea_advantages(rewards, *, tail_fraction=0.25, n_target=128, order=2,
                          n_prefixes=3, ordering="random", seed=None, scale_floor=None):
    r"""Prefix-TEA advantage: TEA debiased by a jackknife over nested prefixes.

    With prefix sizes ``n_1 < … < n_J = m`` (:func:`tailext.prefix_sizes`), weights ``w``
    (:func:`tailext.cancellation_weights` of order ``L``) and ``π(i)`` the position of
    rollout ``i`` in the order that defines the prefixes:

    .. math::

        c_i = \sum_j w_j \frac{m}{n_j} \mathbf 1\{\pi(i) \le n_j\}\,
        \psi_+(r_i; \hat\tau(\{r_l : \pi(l) \le n_j\})),\qquad
        A_i = c_i - \frac1m\sum_l c_l.

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        The smallest prefix needs ``ceil(β n_1) >= 2``.
    tail_fraction, n_target, scale_floor
        As in :func:`tea_advantages`.
    order : int, default 2
        ``L``, the number of bias terms ``n^{-1} … n^{-L}`` cancelled.
    n_prefixes : int, default 3
        ``J >= L + 1``.
    ordering : {"random", "given"}, default "random"
        ``"random"``: each group is sorted by reward and its rollout of rank ``ρ`` placed at
        a uniformly random position ``π(ρ)`` drawn from ``seed``
        (:func:`tailext.rules.tea.prefix_positions`), so the prefixes are uniformly random
        subsets, independent of the order the rollouts arrive in; rollouts with equal
        rewards get the mean of their ``c``. ``"given"``: ``π(i) = i``, the order as handed
        in (the estimator of the paper, which assumes that order is random).
    seed : None, int or numpy.random.Generator
        Source of the random order (``ordering="random"``); ignored for ``"given"``. An
        int repeats the same orders on every call: pass a Generator during training so
        that every step draws new ones (``None`` draws fresh OS entropy on every call).

    Notes
    -----
    Trainers reorder rollouts (verl's ``_balance_batch`` sorts them by sequence length
    before advantages are computed), and with ``ordering="given"`` the prefixes then hold
    whatever correlates with that order — a bias. ``ordering="random"`` is invariant to
    the input order: ``A(r[σ]) = A(r)[σ]`` for every permutation ``σ`` under a fixed seed,
    and for exchangeable (iid) rollouts it has the distribution of ``"given"`` (same bias
    and variance; ``benchmarks/prefix_ordering.py`` measures both). It costs one sort per
    group (O(m log m)) and a host draw of ``B·m`` uniforms. With every rollout valid numpy
    and torch draw the same orders for the same seed; with a validity mask both draw
    uniformly random orders, but different ones. Both orderings sum to zero per group and
    are shift-invariant and scale-equivariant like TEA (for a fixed seed); the negative
    weights make the rule non-monotone in the reward.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import prefix_tea_advantages
    >>> r = np.random.default_rng(0).normal(size=(2, 64))
    >>> A = prefix_tea_advantages(r, seed=1)
    >>> A.shape, bool(np.allclose(A.sum(axis=1), 0.0))
    ((2, 64), True)
    >>> shuffled = prefix_tea_advantages(r[:, ::-1], seed=1)[:, ::-1]
    >>> bool(np.allclose(shuffled, A))
    True
    """
    from ..estimators import tail_settings_iv

    settings = tail_settings_iv(tail_fraction, n_target, scale_floor)
    arrays = _prefix_arrays(rewards.shape[1], settings.tail_fraction, int(order),
                            int(n_prefixes))

    def compute(arranged):
        return _prefix_advantages(arranged, settings, arrays)

    if ordering == "given":
        return compute(rewards)
    return _in_random_order(rewards, seed_iv(seed), compute)
