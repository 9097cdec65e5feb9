"""Oracle best-of-N advantage of a reward pool and the alignment of a rule's update.

For a pool of rewards with probabilities ``p`` (the empirical distribution of ``M`` samples,
or an explicit policy), ``V_N = E[max of N]`` and ``∂V_N/∂p_j = N g(x_j)`` with
``g(r) = E[max(r, M_{N−1})]``. For a policy ``p = π_θ`` this gives
``∇_θ V_N = E_π[A*(R) S]`` with ``A* = N (g − V_N)`` and ``S = ∇ log π``
(see docs/math.md#oracle).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._arguments import distribution_iv, finite_array_iv, integer_iv, rewards_iv, scores_iv
from .evaluation import best_of_n_from_cdf, sorted_cdf

__all__ = ["OracleAdvantage", "oracle_advantages", "Alignment", "oracle_alignment",
           "policy_update", "cosine"]

#: Largest ``N``: ``F**(N − 1)`` is computed with an int64 exponent.
_MAX_POWER = np.iinfo(np.int64).max


class OracleAdvantage(NamedTuple):
    """Oracle best-of-N quantities of a pool (scalars / ``[M]`` for 1-D input).

    Attributes
    ----------
    value : float or ndarray ``(B,)``
        ``V_N``.
    gain : ndarray, shape of the pool
        ``g(r_i) = E[max(r_i, M_{N−1})]`` at every pool entry.
    advantages : ndarray, shape of the pool
        ``A*(r_i) = N (g(r_i) − V_N)``.
    """

    value: np.ndarray | float
    gain: np.ndarray
    advantages: np.ndarray


def oracle_advantages(pool, *, n_target=128, weights=None) -> OracleAdvantage:
    r"""Oracle best-of-N advantage ``A*(r) = N (g(r) − V_N)`` of every entry of a pool.

    With the pool sorted ascending ``x_(1..M)``, probabilities ``p_(i)`` (``1/M`` by default)
    and CDF ``F_i = Σ_{j≤i} p_(j)``:

    .. math::

        V_N = \sum_i x_{(i)}\,[F_i^N - F_{i-1}^N],\qquad
        g(r) = r\,F(r)^{N-1} + \sum_{x_{(i)} > r} x_{(i)}\,[F_i^{N-1} - F_{i-1}^{N-1}].

    Parameters
    ----------
    pool : array_like, shape ``(M,)`` or ``(B, M)``
        Finite rewards (ties allowed).
    n_target : int, default 128
        ``N >= 1``.
    weights : array_like or None
        Probabilities of the pool entries (same shape, normalized per row); ``None`` is the
        empirical distribution.

    Returns
    -------
    OracleAdvantage

    Notes
    -----
    O(M log M) per row (one sort, cumulative sums). ``F(r)`` counts every entry ``<= r``, so
    tied entries share ``g``. ``E_p[A*] = 0``, and ``∂V_N/∂p_j = N g(x_j)`` (unconstrained
    derivative), so with ``p = softmax(θ)`` the gradient is ``Σ_j p_j A*_j (e_j − p)``.
    An all-equal pool gives ``A* ≡ 0``.

    Examples
    --------
    >>> from tailext.oracle import oracle_advantages
    >>> out = oracle_advantages([0.0, 1.0], n_target=2)
    >>> out.value, out.advantages.tolist()
    (0.75, [-0.5, 0.5])
    """
    batch, probs, N, was_1d = _oracle_advantages_iv(pool, n_target, weights)
    value, gain, adv = _oracle(batch, probs, N)
    if was_1d:
        return OracleAdvantage(float(value[0]), gain[0], adv[0])
    return OracleAdvantage(value, gain, adv)


def _oracle(batch, probs, N):
    """``(V_N[B], g[B, M], A*[B, M])`` of validated pools."""
    x, cdf, order = sorted_cdf(batch, probs)
    B, M = x.shape
    previous = np.concatenate([np.zeros((B, 1)), cdf[:, :-1]], axis=1)
    value = best_of_n_from_cdf(x, cdf, [N])[:, 0]
    # End of each entry's tie block: F(r) and "x_(i) > r" are taken at the block's last index.
    index = np.broadcast_to(np.arange(M), (B, M))
    last = np.concatenate([x[:, 1:] != x[:, :-1], np.ones((B, 1), bool)], axis=1)
    block_end = np.minimum.accumulate(np.where(last, index, M)[:, ::-1], axis=1)[:, ::-1]
    terms = x * (cdf ** (N - 1) - previous ** (N - 1))
    above = np.concatenate([np.cumsum(terms[:, ::-1], axis=1)[:, ::-1], np.zeros((B, 1))],
                           axis=1)  # above[:, i] = Σ_{j >= i} terms
    F = np.take_along_axis(cdf, block_end, axis=1)
    gain_sorted = x * F ** (N - 1) + np.take_along_axis(above, block_end + 1, axis=1)
    gain = np.empty_like(gain_sorted)
    np.put_along_axis(gain, order, gain_sorted, axis=1)
    return value, gain, N * (gain - value[:, None])


def _pool_iv(pool, weights, name="pool", weights_name="weights"):
    batch, was_1d = rewards_iv(pool, name)
    if weights is None:
        return batch, np.full(batch.shape, 1.0 / batch.shape[1]), was_1d
    return distribution_iv(pool, weights, name, weights_name)


def _oracle_advantages_iv(pool, n_target, weights):
    batch, probs, was_1d = _pool_iv(pool, weights)
    N = integer_iv(n_target, "n_target", low=1, high=_MAX_POWER)
    return batch, probs, N, was_1d


def policy_update(advantages, scores, *, weights=None):
    r"""Policy-gradient update ``(1/B) Σ_b Σ_i w_{b,i} A_{b,i} S_{b,i}`` (``w = 1/m`` default).

    Parameters
    ----------
    advantages : array_like, shape ``(m,)`` or ``(B, m)``
    scores : array_like, shape ``(m, d)`` or ``(B, m, d)``
    weights : array_like or None
        Per-sample weights (rows normalized); ``None`` is the sample average.

    Returns
    -------
    ndarray, shape ``(d,)``

    Examples
    --------
    >>> from tailext.oracle import policy_update
    >>> policy_update([1.0, -1.0], [[1.0, 0.0], [0.0, 1.0]]).tolist()
    [0.5, -0.5]
    """
    A, S, w = _policy_update_iv(advantages, scores, weights)
    return _update(A, S, w)


def _update(A, S, w):
    return np.einsum("bm,bmd->d", w * A, S) / A.shape[0]


def _policy_update_iv(advantages, scores, weights, names=("advantages", "scores", "weights")):
    A, probs, was_1d = _pool_iv(advantages, weights, names[0], names[2])
    S = scores_iv(scores, A.shape[1:] if was_1d else A.shape, was_1d, names[1])
    return A, S, probs


def cosine(u, v) -> float:
    r"""Cosine of two vectors, ``u·v / (‖u‖ ‖v‖)``; 0 when either is zero.

    Parameters
    ----------
    u, v : array_like
        Finite real vectors with the same number of entries (flattened).

    Returns
    -------
    float in ``[-1, 1]``

    Notes
    -----
    Each vector is divided by its largest ``|entry|`` first (the cosine is scale-invariant),
    so entries near the float64 limits (``1e200``, ``1e-200``) neither overflow nor underflow
    in the norms. A zero vector has no direction to align with: its cosine is reported as 0.

    Examples
    --------
    >>> from tailext.oracle import cosine
    >>> cosine([1e200, 0.0], [1e-200, 1e-200]) == cosine([1.0, 0.0], [1.0, 1.0])
    True
    """
    u, v = _cosine_iv(u, v)
    u_max, v_max = np.abs(u).max(), np.abs(v).max()
    if u_max == 0 or v_max == 0:
        return 0.0
    u, v = u / u_max, v / v_max
    return float(np.clip(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)), -1.0, 1.0))


def _cosine_iv(u, v):
    u, v = finite_array_iv(u, "u").ravel(), finite_array_iv(v, "v").ravel()
    if u.size != v.size:
        raise ValueError(f"`u` and `v` must have the same number of entries, got {u.size} "
                         f"and {v.size}.")
    return u, v


class Alignment(NamedTuple):
    """Cosine alignment of a rule's update with the oracle best-of-N update.

    Attributes
    ----------
    cosine : float
    rule_update, oracle_update : ndarray, shape ``(d,)``
    """

    cosine: float
    rule_update: np.ndarray
    oracle_update: np.ndarray


def oracle_alignment(advantages, scores, pool, pool_scores, *, n_target=128,
                     pool_weights=None) -> Alignment:
    r"""Cosine between a rule's update and the oracle best-of-N update.

    ``u = (1/B) Σ_b (1/m) Σ_i A_{b,i} S_{b,i}`` (the rule on each prompt's group) and
    ``u* = (1/B) Σ_b Σ_j p_{b,j} A*(r_{b,j}) S_{b,j}`` over each prompt's pool (``p = 1/M``
    unless ``pool_weights`` gives the exact policy probabilities); see docs/math.md#alignment.

    Parameters
    ----------
    advantages : array_like, shape ``(m,)`` or ``(B, m)``
        The rule's advantages of each group.
    scores : array_like, shape ``(m, d)`` or ``(B, m, d)``
        Score vectors ``∇ log π`` of the group's samples.
    pool : array_like, shape ``(M,)`` or ``(B, M)``
        Rewards of each prompt's reference pool.
    pool_scores : array_like, shape ``(M, d)`` or ``(B, M, d)``
    n_target : int, default 128
    pool_weights : array_like or None

    Returns
    -------
    Alignment

    Notes
    -----
    The cosine with a zero update is reported as 0.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext.oracle import oracle_advantages, oracle_alignment
    >>> rng = np.random.default_rng(0)
    >>> r, S = rng.normal(size=64), rng.normal(size=(64, 3))
    >>> A = oracle_advantages(r, n_target=8).advantages
    >>> round(oracle_alignment(A, S, r, S, n_target=8).cosine, 12)
    1.0
    """
    group, reference, N = _oracle_alignment_iv(advantages, scores, pool, pool_scores,
                                               n_target, pool_weights)
    rule = _update(*group)
    x, S, probs = reference
    target = _update(_oracle(x, probs, N)[2], S, probs)
    return Alignment(cosine(rule, target), rule, target)


def _oracle_alignment_iv(advantages, scores, pool, pool_scores, n_target, pool_weights):
    group = _policy_update_iv(advantages, scores, None)
    reference = _policy_update_iv(pool, pool_scores, pool_weights,
                                  ("pool", "pool_scores", "pool_weights"))
    if np.ndim(advantages) != np.ndim(pool) or group[0].shape[0] != reference[0].shape[0]:
        raise ValueError(f"`advantages` and `pool` must cover the same prompts, got shapes "
                         f"{np.shape(advantages)} and {np.shape(pool)}.")
    if group[1].shape[-1] != reference[1].shape[-1]:
        raise ValueError(f"`scores` and `pool_scores` must have the same dimension d, got "
                         f"{group[1].shape[-1]} and {reference[1].shape[-1]}.")
    N = integer_iv(n_target, "n_target", low=1, high=_MAX_POWER)
    return group, reference, N
