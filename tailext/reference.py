"""Pure-numpy reference implementations of every tailext estimator.

Written for reading, not for speed: full sorts, explicit formulas, one obvious loop where the
math has one. The numba kernels in :mod:`tailext._kernels` must agree with these to 1e-12
relative (float64); the test-suite checks it on hypothesis-generated inputs, and at any
magnitude through :func:`exact_advantages` (the references evaluated in each row's frame,
by the rules' shift and scale invariances).

All functions here take already-validated 2-D float64 arrays (``[B, m]`` rewards,
``[B, m, d]`` scores) and plain Python scalars; use the public API in :mod:`tailext` for
validation, 1-D inputs and defaults.
"""

from __future__ import annotations

import math

import numpy as np

from .constants import kappa, tail_moments
from .prefix import tail_count

__all__ = [
    "tail_vector",
    "shaped_reward",
    "tea_raw",
    "tea",
    "direct_gradient",
    "crossfit_gradient",
    "split_gradient",
    "prefix_tea_gradient",
    "prefix_tea",
    "centred",
    "group_std",
    "mean_centred",
    "grpo",
    "rloo",
    "bon_max_mean",
    "bon_max_second",
    "binomial_ratios",
    "max_at_k_transformed",
    "bon_mean",
    "max_at_k_estimate",
    "maxk_loo1",
    "chow_bon_rl",
    "cat_bon",
    "tied_tails",
    "rule_advantages",
    "unit_frame",
    "exact_rows",
    "exact_advantages",
]


def _floor_parameters(tail_fraction, scale_floor):
    """Return ``(absolute, relative)`` with floor = absolute + relative · sd(fit sample)."""
    if scale_floor is None:
        return 0.0, 0.5 * np.sqrt(tail_moments(tail_fraction).v)
    return float(scale_floor), 0.0


def tail_vector(rewards, tail_fraction, scale_floor=None):
    """Empirical tail vector ``(ĥ, μ̂_t, ŝ)`` of each row, by a full sort.

    See docs/math.md#tail-vector.
    """
    m = rewards.shape[1]
    k = tail_count(m, tail_fraction)
    top = np.sort(rewards, axis=1)[:, m - k:]  # the k largest values, ascending
    threshold = top[:, 0]
    # Means and sds are taken of deviations from a data value (the threshold; the first
    # reward) so that rounding scales with the spread of the rewards, not with their
    # offset: the mean itself need not be representable at the offset (rewards within a
    # few ulps of 1 have a mean between two doubles there, and a sd about either one is
    # off by a factor up to √(5/4)).
    top_deviation = top - threshold[:, None]
    mean = threshold + top_deviation.mean(axis=1)
    raw_scale = _population_sd(top_deviation)
    absolute, relative = _floor_parameters(tail_fraction, scale_floor)
    floor = absolute + relative * _population_sd(rewards - rewards[:, :1])
    return threshold, mean, np.maximum(raw_scale, floor)


def _population_sd(deviations):
    """Population sd of each row of ``deviations`` (from a data value of the row)."""
    centred = deviations - deviations.mean(axis=1, keepdims=True)
    return np.sqrt((centred ** 2).mean(axis=1))


def shaped_reward(rewards, threshold, mean, scale, tail_fraction, n_target):
    """Tail-shaped reward ψ, factored form; ψ ≡ 0 where the scale is zero (docs/math.md#psi)."""
    k_n = kappa(tail_fraction, n_target)
    h, mu, s = threshold[:, None], mean[:, None], scale[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        curvature = np.where(s > 0, k_n / (2.0 * s), 0.0)
    psi = (rewards - h) * (1.0 + curvature * (rewards + h - 2.0 * mu)) / tail_fraction
    return np.where((rewards >= h) & (s > 0), psi, 0.0)


def tea_raw(rewards, tail_fraction, n_target, scale_floor=None):
    """Raw advantage ``a_i = ψ(r_i; τ̂)`` with ``τ̂`` fitted on the same row."""
    tau = tail_vector(rewards, tail_fraction, scale_floor)
    return shaped_reward(rewards, *tau, tail_fraction, n_target)


def tea(rewards, tail_fraction, n_target, scale_floor=None):
    """TEA advantage ``A_i = (a_i)₊ − mean_j (a_j)₊`` (see docs/math.md#tea-clipping)."""
    positive = np.maximum(tea_raw(rewards, tail_fraction, n_target, scale_floor), 0.0)
    return positive - positive.mean(axis=1, keepdims=True)


def direct_gradient(rewards, scores, tail_fraction, n_target, scale_floor=None):
    """Direct plug-in estimator ``ĝ = (1/m) Σ_i ψ(r_i; τ̂) S_i`` → ``[B, d]``."""
    psi = tea_raw(rewards, tail_fraction, n_target, scale_floor)
    return np.einsum("bm,bmd->bd", psi, scores) / rewards.shape[1]


def crossfit_gradient(fit_rewards, eval_rewards, eval_scores, tail_fraction, n_target,
                      scale_floor=None):
    """Cross-fitted estimator ``(1/n) Σ_{i∈B²} ψ(r²_i; τ̂(B¹)) S²_i`` → ``[B, d]``."""
    tau = tail_vector(fit_rewards, tail_fraction, scale_floor)
    psi = shaped_reward(eval_rewards, *tau, tail_fraction, n_target)
    return np.einsum("bm,bmd->bd", psi, eval_scores) / eval_rewards.shape[1]


def split_gradient(fit_rewards, eval_rewards, eval_scores, sizes, weights, tail_fraction,
                   n_target, scale_floor=None):
    """Split-budget estimator ``Σ_j w_j ĝ^cf_{n_j}`` over nested prefixes.

    See docs/math.md#prefix-tea-gradient.
    """
    total = 0.0
    for n_j, w_j in zip(sizes, weights):
        total = total + w_j * crossfit_gradient(
            fit_rewards[:, :n_j], eval_rewards[:, :n_j], eval_scores[:, :n_j],
            tail_fraction, n_target, scale_floor)
    return total


def prefix_tea_gradient(rewards, scores, sizes, weights, tail_fraction, n_target,
                        symmetric=True, scale_floor=None):
    """Total-budget Prefix-TEA gradient: halves ``B¹``/``B²``, symmetric average.

    See docs/math.md#prefix-tea-gradient.
    """
    n = rewards.shape[1] // 2
    first, second = rewards[:, :n], rewards[:, n:2 * n]
    first_scores, second_scores = scores[:, :n], scores[:, n:2 * n]
    forward = split_gradient(first, second, second_scores, sizes, weights, tail_fraction,
                             n_target, scale_floor)
    if not symmetric:
        return forward
    backward = split_gradient(second, first, first_scores, sizes, weights, tail_fraction,
                              n_target, scale_floor)
    return 0.5 * (forward + backward)


def prefix_tea(rewards, sizes, weights, tail_fraction, n_target, scale_floor=None):
    """Prefix-TEA advantage: ``c_i = Σ_j w_j (m/n_j) 1{i ≤ n_j} (a_{j,i})₊``, centred."""
    m = rewards.shape[1]
    combined = np.zeros_like(rewards)
    for n_j, w_j in zip(sizes, weights):
        raw = tea_raw(rewards[:, :n_j], tail_fraction, n_target, scale_floor)
        combined[:, :n_j] += w_j * (m / n_j) * np.maximum(raw, 0.0)
    return combined - combined.mean(axis=1, keepdims=True)


# --- Baseline advantage rules (see docs/math.md#baselines) ---------------------------------
# Each takes validated ``[B, m]`` float64 rewards. Group means are taken after shifting by the
# group maximum, ``r − r̄ = x − x̄`` with ``x = r − max(r)``, so that a group of equal rewards
# gives exact zeros (and never ``tiny / (tiny + ε)``) whatever its magnitude.

def centred(rewards):
    """``r_i − r̄`` per group, computed as ``x − x̄`` with ``x = r − max(r)``."""
    x = rewards - rewards.max(axis=1, keepdims=True)
    return x - x.mean(axis=1, keepdims=True)


def group_std(deviations, ddof):
    """Group standard deviation with divisor ``m − ddof`` from ``centred(rewards)`` → ``[B, 1]``."""
    squares = np.einsum("bm,bm->b", deviations, deviations)[:, None]
    return np.sqrt(squares / (deviations.shape[1] - ddof))


def mean_centred(rewards):
    """Mean-centred advantage ``A_i = r_i − r̄``."""
    return centred(rewards)


def grpo(rewards, eps=1e-6, ddof=1):
    """GRPO: ``A_i = (r_i − r̄) / (sd + ε)``, sd with divisor ``m − ddof``; 0 where sd+ε = 0."""
    deviations = centred(rewards)
    denominator = group_std(deviations, ddof) + eps
    return deviations / np.where(denominator > 0, denominator, 1.0)


def rloo(rewards):
    """RLOO: ``A_i = r_i − mean_{j≠i} r_j = m/(m−1) · (r_i − r̄)``."""
    m = rewards.shape[1]
    return m / (m - 1) * centred(rewards)


def bon_max_mean(rewards):
    """BoN-max mean: ``A_{i*} = r_{i*} − r̄`` at the first maximum ``i*``, 0 elsewhere."""
    best = rewards.argmax(axis=1)[:, None]
    out = np.zeros_like(rewards)
    np.put_along_axis(out, best, np.take_along_axis(centred(rewards), best, axis=1), axis=1)
    return out


def bon_max_second(rewards, normalize=False, eps=1e-6):
    """BoN-max second: ``A_{i*} = r_(m) − r_(m−1)`` at the first maximum, 0 elsewhere.

    ``normalize=True`` divides by the sample standard deviation plus ``ε`` (verl's
    ``grpo_passk``).
    """
    best = rewards.argmax(axis=1)[:, None]
    top_two = np.sort(rewards, axis=1)[:, -2:]
    gap = top_two[:, 1:] - top_two[:, :1]
    if normalize:
        denominator = group_std(centred(rewards), 1) + eps
        gap = gap / np.where(denominator > 0, denominator, 1.0)
    out = np.zeros_like(rewards)
    np.put_along_axis(out, best, gap, axis=1)
    return out


def binomial_ratios(n_max, r, denominator):
    """``[C(j, r) / denominator for j = 0..n_max]``: exact integers, correctly rounded quotients.

    ``C(j+1, r) = C(j, r) (j+1) / (j+1−r)`` is exact in Python integers.
    """
    values, current = [], 0
    for j in range(n_max + 1):
        current = 1 if j == r else (current * j // (j - r) if j > r else 0)
        values.append(current / denominator)
    return np.array(values)


def max_at_k_transformed(rewards, k):
    """``r̃_(i) = [C(i−1,k−1) r_(i) + Σ_{j>i} C(j−2,k−2) r_(j)] / C(m−1,k−1)``, unsorted.

    Binomial ratios are exact Python-integer quotients (correctly rounded to float).
    Returns ``r̃ − max(r)`` (``r̃`` is shift-equivariant), so equal rewards give zeros.
    """
    m = rewards.shape[1]
    total = math.comb(m - 1, k - 1)
    own = binomial_ratios(m - 1, k - 1, total)                         # C(i−1, k−1), i = 1..m
    above = np.concatenate([[0.0], binomial_ratios(m - 2, k - 2, total)])  # C(i−2, k−2)
    order = np.argsort(rewards, axis=1, kind="stable")
    x = np.take_along_axis(rewards, order, axis=1) - rewards.max(axis=1, keepdims=True)
    weighted = above * x
    later = np.zeros_like(x)  # Σ_{j>i} above_j x_(j)
    later[:, :-1] = np.cumsum(weighted[:, ::-1], axis=1)[:, ::-1][:, 1:]
    out = np.empty_like(x)
    np.put_along_axis(out, order, own * x + later, axis=1)
    return out


def bon_mean(rewards, k, eps=1e-6):
    """BoN mean (max@k): the z-score (population sd, ``+ε``) of the transformed rewards ``r̃``."""
    return grpo(max_at_k_transformed(rewards, k), eps, 0)


def max_at_k_estimate(values, k):
    """Unbiased max@k estimate ``ρ̂_k(x) = Σ_{i=k}^{n} C(i−1,k−1)/C(n,k) x_(i)`` of a 1-D array."""
    n = values.shape[0]
    weights = binomial_ratios(n - 1, k - 1, math.comb(n, k))  # C(i−1, k−1), i = 1..n
    return float(weights @ np.sort(values))


def maxk_loo1(rewards, k):
    """``A_i = s_i − (k/m) ρ̂_{k−1}(r_{−i})`` (Walder & Karkhanis 2025), from its definition.

    ``s_i = (k/m) r̃_i`` since ``C(m−1,k−1)/C(m,k) = k/m``; the leave-one-out estimate is
    recomputed for every ``i`` (O(m² log m) per group).
    """
    m = rewards.shape[1]
    shifted = rewards - rewards.max(axis=1, keepdims=True)  # A is shift-invariant
    own = k / m * max_at_k_transformed(shifted, k)
    out = np.empty_like(rewards)
    for b in range(rewards.shape[0]):
        for i in range(m):
            out[b, i] = own[b, i] - k / m * max_at_k_estimate(np.delete(shifted[b], i), k - 1)
    return out


def chow_bon_rl(rewards, selected):
    """Chow BoN-RL advantages for a given selection mask (``True`` = ``Sel``, else ``Cor``).

    ``y*`` = first index of the maximum within ``Sel``, ``F̂ n_c = max(#{j∈Cor: r_j ≤ r*}, 1)``,
    ``A_{y*} = m (r* − r̄)``, ``A_j = m (r* − r̄)(n_sel − 1)/(F̂ n_c) · 1{r_j ≤ r*}`` on ``Cor``.
    """
    m = rewards.shape[1]
    n_select = selected.sum(axis=1, keepdims=True)
    best = np.where(selected, rewards, -np.inf).argmax(axis=1)[:, None]
    r_best = np.take_along_axis(rewards, best, axis=1)
    gain = m * np.take_along_axis(centred(rewards), best, axis=1)  # m (r* − r̄)
    below = ~selected & (rewards <= r_best)
    count = np.maximum(below.sum(axis=1, keepdims=True), 1)
    out = np.where(below, gain * (n_select - 1) / count, 0.0)
    np.put_along_axis(out, best, gain, axis=1)
    return out


def cat_bon(rewards, n_target, eps=1e-4):
    """CAT-BoN: ``A_i = w̃_i (r_i − r̄)/(sd_sample + ε)``, ``w̃ = w / mean(w)``, ``w_i = N q_i^{N−1}``.

    ``q_i = (#{j : r_j < r_i} + 1)/(m + 1)`` (ties share the count); ``w`` is normalized in
    log space so ``q^{N−1}`` cannot underflow to ``0/0``.
    """
    m = rewards.shape[1]
    below = np.array([np.searchsorted(np.sort(row), row, side="left") for row in rewards])
    log_weights = (n_target - 1) * np.log((below + 1.0) / (m + 1.0))
    weights = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
    normalized = weights / weights.mean(axis=1, keepdims=True)
    deviations = centred(rewards)
    denominator = group_std(deviations, 1) + eps
    return normalized * deviations / np.where(denominator > 0, denominator, 1.0)


def tied_tails(rewards, tail_fraction):
    """Groups whose top ``k = ceil(β m)`` rewards are two-level ties, as a ``[B]`` mask.

    Flagged: the top ``k`` values take at most two distinct values, one of them at least
    twice, and the group is not constant (the 0/1-reward pattern, for which the Gaussian tail
    fit gives little or no signal).
    """
    k = tail_count(rewards.shape[1], tail_fraction)
    top = np.sort(rewards, axis=1)[:, -k:]
    low, high = top[:, :1], top[:, -1:]
    inside = ((top > low) & (top < high)).any(axis=1)
    repeated = ((top == low).sum(axis=1) >= 2) | ((top == high).sum(axis=1) >= 2)
    constant = rewards.min(axis=1) == high[:, 0]
    return ~inside & repeated & ~constant


def rule_advantages(rewards, method, options):
    """Reference advantages of the built-in rule ``method`` under its complete ``options``.

    ``options`` are the rule's options with every value given (as
    ``get_rule(method).resolve`` returns them, except that ``chow_bon_rl`` takes an integer
    ``seed``, from which the selection is drawn as the kernel draws it). Tail-fitting rules
    return ``(advantages, tied_tails)`` like their kernels.
    """
    o = dict(options)
    if method in ("tea", "tea_raw", "prefix_tea"):
        beta, n, floor = o["tail_fraction"], o["n_target"], o["scale_floor"]
        if method == "prefix_tea":
            from .prefix import cancellation_weights, prefix_sizes

            if o.get("ordering", "given") != "given":
                raise ValueError("the Prefix-TEA reference takes the rollouts in the given "
                                 "order; pass ordering='given'.")

            sizes = prefix_sizes(rewards.shape[1], tail_fraction=beta,
                                 n_prefixes=o["n_prefixes"])
            weights = cancellation_weights(sizes, order=o["order"])
            out = prefix_tea(rewards, sizes, weights, beta, n, floor)
        else:
            out = (tea if method == "tea" else tea_raw)(rewards, beta, n, floor)
        return out, tied_tails(rewards, beta)
    if method == "chow_bon_rl":
        from .rules.chow import chow_selection

        return chow_bon_rl(rewards, chow_selection(rewards.shape, n_select=o["n_select"],
                                                   seed=o["seed"]))
    simple = {"mean_centred": lambda: mean_centred(rewards),
              "grpo": lambda: grpo(rewards, o["eps"], o["ddof"]),
              "rloo": lambda: rloo(rewards),
              "bon_max_mean": lambda: bon_max_mean(rewards),
              "bon_max_second": lambda: bon_max_second(rewards, o["normalize"], o["eps"]),
              "bon_mean": lambda: bon_mean(rewards, o["k"], o["eps"]),
              "maxk_loo1": lambda: maxk_loo1(rewards, o["k"]),
              "cat_bon": lambda: cat_bon(rewards, o["n_target"], o["eps"])}
    if method not in simple:
        raise ValueError(f"no reference for method {method!r}; known: "
                         f"{', '.join(sorted([*simple, 'tea', 'tea_raw', 'prefix_tea', 'chow_bon_rl']))}.")
    return simple[method]()


# --- Exact answers at any magnitude ---------------------------------------------------------
# Every built-in rule is shift-invariant and scale-equivariant (A(c·r) = c·A(r), p = 1) or
# scale-invariant (p = 0, its ε-like options scaling like the rewards), so the answer for a row
# r is 2^(p·e) · A_ref((r − max r)·2^-e; ε·2^-e). The references above, written for clarity,
# are evaluated there, on the row shifted to 0 and scaled by a power of two near its spread,
# where their own rounding is that of unit-scale float64 (on the raw row it would be relative
# to the offset, and squares underflow or overflow far from 1). The shift rounds once,
# relative to the spread (not at all when the offset exceeds twice the spread: Sterbenz);
# the scalings are exact. The tests and benchmarks/bench_precision.py compare the kernels
# with these.

#: Options that carry reward units (they scale with the rewards).
SCALED_OPTIONS = ("eps", "scale_floor")
#: ``p`` of each built-in rule under its default options.
SCALE_POWER = {"tea": 1, "tea_raw": 1, "prefix_tea": 1, "grpo": 0, "mean_centred": 1,
               "rloo": 1, "bon_max_mean": 1, "bon_max_second": 1, "bon_mean": 0,
               "maxk_loo1": 1, "chow_bon_rl": 1, "cat_bon": 0}


def scale_power(method, options):
    """``p`` of ``method`` under ``options`` (normalized BoN-max second is scale-invariant)."""
    if method == "bon_max_second" and options.get("normalize"):
        return 0
    return SCALE_POWER[method]


def unit_frame(row, anchor=None, at_least=None):
    """``(x, e)`` with ``x = (row − anchor)·2^-e`` (``anchor``: the row maximum) and ``2^e``
    the power of two above the spread (``e = 0`` for a constant row), or ``2^at_least`` if
    that is larger."""
    top = float(row.max() if anchor is None else anchor)
    low = min(float(row.min()), top)
    spread = top - low
    if math.isinf(spread):  # beyond the float64 range: halve first
        e = math.frexp(0.5 * top - 0.5 * low)[1] + 1
    else:
        e = math.frexp(spread)[1] if spread > 0 else 0
    if at_least is not None:
        e = max(e, at_least)
    if e >= 0:
        return np.ldexp(row, -e) - math.ldexp(top, -e), e
    return np.ldexp(row - top, -e), e


def option_exponent(options):
    """The exponent of the largest reward-unit option: a frame must not scale it past 1
    (an ``ε`` far above the spread dominates; at the spread's scale it would overflow)."""
    values = [abs(v) for k, v in options.items() if k in SCALED_OPTIONS and v]
    return math.frexp(max(values))[1] if values else None


def scaled_options(options, e):
    return {k: (math.ldexp(v, -e) if k in SCALED_OPTIONS and v else v)
            for k, v in options.items()}


def exact_rows(function, rewards, p, options):
    """``function(rows, **options)`` row by row through the invariances (see the module
    docstring); ``function`` returns ``[1, m]`` advantages (or a tuple, whose first item is
    taken)."""
    out = np.empty(rewards.shape)
    for b, row in enumerate(np.asarray(rewards, dtype=np.float64)):
        x, e = unit_frame(row, at_least=option_exponent(options))
        result = function(x[None, :], **scaled_options(options, e))
        result = result[0] if isinstance(result, tuple) else result
        out[b] = np.ldexp(result[0], p * e) if p else result[0]
    return out


def exact_advantages(rewards, method, options):
    """The exact advantages of the built-in rule ``method`` (complete ``options``; an
    integer ``seed`` for ``chow_bon_rl``, whose selection depends on the batch shape, so it
    is drawn for the whole batch first)."""
    if method == "chow_bon_rl":
        from .rules.chow import chow_selection

        selected = chow_selection(rewards.shape, n_select=options["n_select"],
                                  seed=options["seed"])
        rows = iter(selected)
        return exact_rows(lambda x: chow_bon_rl(x, next(rows)[None, :]), rewards, 1, {})
    return exact_rows(lambda x, **o: rule_advantages(x, method, o), rewards,
                      scale_power(method, options), options)
