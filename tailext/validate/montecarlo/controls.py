r"""Polynomial control variates of the tail fit: statistics of exactly known mean.

See docs/math.md#polynomial-controls. For a fit on ``n`` rewards with ``k = ⌈βn⌉``, let
``ĥ`` be the ``k``-th largest reward and ``Y_1..Y_K`` (``K = k − 1``) the rewards above it.
Given ``ĥ = h`` the ``Y_i`` are i.i.d. ``N(0, 1)`` truncated to ``(h, ∞)`` (the Markov
property of order statistics), with mean ``m₁(h)``, variance ``v(h)`` and central moments
``c_r(h)`` in closed form. With ``u_i = (Y_i − m₁(ĥ))/√v(ĥ)``, ``g₁ = u``, ``g₂ = u² − 1``
and the standardized threshold ``z = (ĥ − h*)/σ_n``, ``σ_n = √(β(1 − β)/n)/φ(h*)``, the
features of one fit are (:data:`N_FEATURES` of them, in this order):

* ``z^a``, ``a = 1..6`` (mean by quadrature over the law of ``ĥ``: :func:`threshold_moments`);
* first chaos ``z^a Σ_i (u_i^r − E[u^r | ĥ]) / √K``, ``r = 1..4``, ``a = 0..4``;
* second chaos ``z^a Σ_{i≠j} g_p(Y_i) g_q(Y_j) / K``, ``p ≤ q`` in ``{1, 2}``, ``a = 0..3``;
* third chaos ``z^a Σ_{i,j,l distinct} g_p(Y_i) g_q(Y_j) g_r(Y_l) / K^{3/2}`` for the four
  multisets ``{p, q, r}`` of ``{1, 2}``, ``a = 0, 1``;
* fourth chaos likewise over four distinct indices (five multisets), ``/ K²``, ``a = 0, 1``.

A sum over distinct indices is computed from the power sums ``S_ab = Σ_i g₁(Y_i)^a
g₂(Y_i)^b`` by Möbius inversion on the lattice of set partitions:
``Σ_{distinct} Π_t f_t(Y_{i_t}) = Σ_π μ(π) Π_{B ∈ π} Σ_i Π_{t ∈ B} f_t(Y_i)`` with
``μ(π) = Π_B (−1)^{|B|−1} (|B| − 1)!``.

Every feature but the first six has conditional mean zero given ``ĥ`` for *every* ``ĥ``
(the ``g`` are conditionally centred and independent), so its mean is exactly zero.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

__all__ = ["N_FEATURES", "N_THRESHOLD", "fit_features", "threshold_moments", "feature_means",
           "truncated_moments", "CHAOS_TABLES", "LAYOUT"]

#: Powers of ``z`` with a non-zero mean (the first features).
N_THRESHOLD = 6
_FIRST = (4, 5)    # r = 1..4, z^0..4
_SECOND = (3, 4)   # pairs (1,1), (1,2), (2,2), z^0..3
_HIGHER = 2       # z^0..1 for the third and fourth chaos


def _set_partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in _set_partitions(rest):
        for i in range(len(partition)):
            yield partition[:i] + [[first] + partition[i]] + partition[i + 1:]
        yield [[first]] + partition


def _chaos_tables(order: int):
    """For each multiset of ``order`` functions from ``{g₁, g₂}``: the Möbius coefficient of
    each set partition and, per block, the index ``5a + b`` of its power sum ``S_ab``."""
    import itertools

    combos = list(itertools.combinations_with_replacement((0, 1), order))
    partitions = list(_set_partitions(list(range(order))))
    coefficients = np.zeros((len(combos), len(partitions)))
    blocks = np.full((len(combos), len(partitions), order), -1, dtype=np.int64)
    for c, combo in enumerate(combos):
        for p, partition in enumerate(partitions):
            coefficients[c, p] = math.prod((-1) ** (len(b) - 1) * math.factorial(len(b) - 1)
                                           for b in partition)
            for i, block in enumerate(partition):
                a = sum(1 for t in block if combo[t] == 0)
                blocks[c, p, i] = 5 * a + (len(block) - a)
    return coefficients, blocks


_COEF3, _BLOCKS3 = _chaos_tables(3)
_COEF4, _BLOCKS4 = _chaos_tables(4)
#: ``(coefficients, blocks)`` of the third and fourth chaos, for the torch backend.
CHAOS_TABLES = ((_COEF3, _BLOCKS3), (_COEF4, _BLOCKS4))
#: ``(orders, powers of z)`` of the first and second chaos blocks and the powers of z of the
#: higher ones, for the torch backend.
LAYOUT = (_FIRST, _SECOND, _HIGHER)
#: Features per fit.
N_FEATURES = (N_THRESHOLD + _FIRST[0] * _FIRST[1] + _SECOND[0] * _SECOND[1]
              + (_COEF3.shape[0] + _COEF4.shape[0]) * _HIGHER)

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(cache=True)
def truncated_moments(h):
    """``(m₁, c₂, c₃, c₄)`` of ``N(0, 1)`` truncated to ``(h, ∞)``: the mean and the central
    moments, from the raw moments ``M_p = (p − 1) M_{p−2} + h^{p−1} λ``, ``λ = φ(h)/Q(h)``."""
    lam = math.exp(-0.5 * h * h) * _INV_SQRT_2PI / (0.5 * math.erfc(h / math.sqrt(2.0)))
    m1 = lam
    m2 = 1.0 + h * lam
    m3 = 2.0 * m1 + h * h * lam
    m4 = 3.0 * m2 + h * h * h * lam
    c2 = m2 - m1 * m1
    c3 = m3 - 3.0 * m1 * m2 + 2.0 * m1 ** 3
    c4 = m4 - 4.0 * m1 * m3 + 6.0 * m1 * m1 * m2 - 3.0 * m1 ** 4
    return m1, c2, c3, c4


@njit(cache=True)
def _distinct_sums(power, coefficients, blocks, out):
    """``out[c] = Σ_π μ(π) Π_B S_B`` for each multiset ``c`` (see the module docstring)."""
    for c in range(coefficients.shape[0]):
        total = 0.0
        for p in range(coefficients.shape[1]):
            term = coefficients[c, p]
            for i in range(blocks.shape[2]):
                index = blocks[c, p, i]
                if index >= 0:
                    term *= power[index]
            total += term
        out[c] = total


@njit(cache=True)
def fit_features(top, k, h, n, h_star, tail_fraction, density, out):
    """Add the :data:`N_FEATURES` features of one fit to ``out`` (``+=``, so the two
    directions of the symmetric estimator can share a slot).

    ``top[:k]`` are the fit's ``k`` largest rewards in any order and ``h`` their minimum.
    """
    if out.shape[0] == 0:
        return
    m1, c2, c3, c4 = truncated_moments(h)
    scale = 1.0 / math.sqrt(c2)
    e3 = c3 * scale ** 3
    e4 = c4 * scale ** 4
    big_k = k - 1
    z = (h - h_star) * density / math.sqrt(tail_fraction * (1.0 - tail_fraction) / n)
    # power[5a + b] = Σ_i g1^a g2^b (a + b ≤ 4) over the K values above ĥ, and the centred
    # third and fourth powers of u
    power = np.zeros(25)
    t3 = 0.0
    t4 = 0.0
    skipped = False
    for i in range(k):
        y = top[i]
        if y == h and not skipped:
            skipped = True
            continue
        u = (y - m1) * scale
        g2 = u * u - 1.0
        pa = 1.0
        for a in range(5):
            pb = pa
            for b in range(5 - a):
                power[5 * a + b] += pb
                pb *= g2
            pa *= u
        t3 += u * u * u - e3
        t4 += u * u * u * u - e4
    s1 = power[5]
    s2 = power[1]
    root = math.sqrt(big_k)
    first = (s1 / root, s2 / root, t3 / root, t4 / root)
    second = ((s1 * s1 - power[10]) / big_k, (s1 * s2 - power[6]) / big_k,
              (s2 * s2 - power[2]) / big_k)
    third = np.empty(_COEF3.shape[0])
    _distinct_sums(power, _COEF3, _BLOCKS3, third)
    fourth = np.empty(_COEF4.shape[0])
    _distinct_sums(power, _COEF4, _BLOCKS4, fourth)
    f = 0
    zp = 1.0
    for a in range(N_THRESHOLD):
        zp *= z
        out[f] += zp
        f += 1
    f = _add_with_powers(first, _FIRST[0], _FIRST[1], 1.0, z, out, f)
    f = _add_with_powers(second, _SECOND[0], _SECOND[1], 1.0, z, out, f)
    f = _add_with_powers(third, third.shape[0], _HIGHER, big_k * root, z, out, f)
    _add_with_powers(fourth, fourth.shape[0], _HIGHER, float(big_k * big_k), z, out, f)


@njit(cache=True)
def _add_with_powers(values, rows, powers, norm, z, out, f):
    """``out[f..] += z^a values[r] / norm`` for ``r < rows`` and ``a < powers``; the next
    ``f``."""
    for r in range(rows):
        zp = 1.0
        for a in range(powers):
            out[f] += zp * values[r] / norm
            zp *= z
            f += 1
    return f


def threshold_moments(n: int, k: int, h_star: float, tail_fraction: float, density: float,
                      degree: int = N_THRESHOLD, nodes: int = 400) -> np.ndarray:
    r"""``E[z^a]``, ``a = 1..degree``, for ``z = (ĥ − h*)/σ_n`` and ``ĥ`` the ``k``-th largest
    of ``n`` standard normals.

    ``ĥ`` has density ``n!/((n−k)!(k−1)!) Φ(x)^{n−k} Q(x)^{k−1} φ(x)`` (``Φ(ĥ)`` is
    ``Beta(n − k + 1, k)``); the integral is Gauss–Legendre with ``nodes`` nodes over 16
    standard deviations either side of the mode, where the density is below ``e^{-120}``
    of its peak, normalized by the integral of the density itself. Two rules (``nodes``
    and ``nodes/2``) agree to 1e-13 (tests/test_validation_controls.py).
    """
    from scipy import optimize, special

    sigma = math.sqrt(tail_fraction * (1.0 - tail_fraction) / n) / density
    log_norm = -special.betaln(n - k + 1, k)

    def log_density(x):
        return (log_norm + (n - k) * special.log_ndtr(x) + (k - 1) * special.log_ndtr(-x)
                - 0.5 * x * x - 0.5 * math.log(2.0 * math.pi))

    # the law's SD is σ_n up to O(1/n); the mode is found numerically
    mode = optimize.minimize_scalar(lambda x: -log_density(x),
                                    bounds=(h_star - 10 * sigma, h_star + 10 * sigma),
                                    method="bounded", options={"xatol": 1e-12}).x
    x_nodes, weights = _legendre(nodes)
    half = 16.0 * sigma
    x = mode + half * x_nodes
    mass = half * weights * np.exp(log_density(x))
    z = (x - h_star) / sigma
    total = mass.sum()
    # the normalizing constant (betaln) is good to ~1e-12 relative; dividing by the total
    # removes that error, and a total far from 1 would mean a misplaced window
    if not abs(total - 1.0) < 1e-9:
        raise RuntimeError(f"order-statistic density of (n={n}, k={k}) integrates to {total}")
    return np.array([(mass * z ** a).sum() for a in range(1, degree + 1)]) / total


@lru_cache(maxsize=4)
def _legendre(nodes: int):
    return np.polynomial.legendre.leggauss(nodes)


def feature_means(n: int, k: int, h_star: float, tail_fraction: float,
                  density: float) -> np.ndarray:
    """Exact means of the :data:`N_FEATURES` features of a fit on ``n`` rewards."""
    means = np.zeros(N_FEATURES)
    means[:N_THRESHOLD] = threshold_moments(n, k, h_star, tail_fraction, density)
    return means
