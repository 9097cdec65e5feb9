"""The synthetic model of docs/math.md#diagnostic and its exact gradients by quadrature.

One prompt, rewards ``R ~ N(0, 1)`` and the fixed bounded two-dimensional score

    S(r) = (tanh r, 1/(1 + r²) − E[1/(1 + R²)])            (mean zero)

For a tail vector ``τ = (h, μ_t, s)`` the population mean of the shaped-reward gradient is

    G(τ) = ∫_h^∞ ψ(r; τ) S(r) φ(r) dr,

so the true gradient is ``g* = G(τ*)`` (Lemma 2) and, for a cross-fitted estimator, ``G(τ̂)``
is the exact conditional mean of the evaluation average given the fitting batch (the
Rao–Blackwellized bias of docs/math.md#rao-blackwell). ``G`` is one numba function used for
both, evaluated by Gauss–Legendre quadrature on ``[h, h + 14]`` (φ is below 1e-42 beyond 14
standard deviations above any threshold the diagnostic meets).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from tailext import kappa, tail_moments
from tailext._kernels import psi_value

__all__ = ["DiagnosticModel", "diagnostic_model", "score", "tail_gradient",
           "QUADRATURE_NODES", "QUADRATURE_WIDTH"]

#: Gauss–Legendre nodes for ``G(τ)``; 32 already agree with adaptive quadrature to 1e-14
#: (tests/test_validation_pieces.py checks 48 against scipy.integrate.quad).
QUADRATURE_NODES = 48
#: Integration range ``[h, h + QUADRATURE_WIDTH]`` in standard deviations.
QUADRATURE_WIDTH = 14.0

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _score_offset() -> float:
    """``E[1/(1 + R²)] = √(π/2) e^{1/2} erfc(1/√2) ≈ 0.6557`` for ``R ~ N(0, 1)``."""
    return math.sqrt(math.pi / 2.0) * math.exp(0.5) * math.erfc(1.0 / math.sqrt(2.0))


#: Centring constant of the second score component.
SCORE_OFFSET = _score_offset()


def score(rewards):
    """The diagnostic score ``S(r) = (tanh r, 1/(1+r²) − E[1/(1+R²)])`` → ``[..., 2]``."""
    r = np.asarray(rewards, dtype=np.float64)
    return np.stack([np.tanh(r), 1.0 / (1.0 + r * r) - SCORE_OFFSET], axis=-1)


@njit(cache=True)
def tail_gradient(h, mu, s, inv_beta, kappa_n, offset, nodes, weights):
    """``G(τ) = ∫_h^{h+14} ψ(r; τ) S(r) φ(r) dr`` by Gauss–Legendre → ``(G₁, G₂)``."""
    half = 0.5 * QUADRATURE_WIDTH
    g1 = 0.0
    g2 = 0.0
    for q in range(nodes.shape[0]):
        r = h + half * (1.0 + nodes[q])
        value = (psi_value(r, h, mu, s, inv_beta, kappa_n) * weights[q]
                 * np.exp(-0.5 * r * r) * _INV_SQRT_2PI)
        g1 += value * np.tanh(r)
        g2 += value * (1.0 / (1.0 + r * r) - offset)
    return half * g1, half * g2


class DiagnosticModel(NamedTuple):
    """Constants of the Gaussian-tail diagnostic (docs/math.md#diagnostic) at one ``(β, N)``.

    Attributes
    ----------
    tail_fraction, n_target : float, int
        ``β`` and ``N``.
    kappa : float
        ``κ_N(β)``.
    threshold, tail_mean, tail_scale : float
        The population tail vector ``τ* = (z_β, λ_β, √v_β)`` of ``N(0, 1)``.
    scale_floor : float
        ``s*/2``, the absolute floor of the theory.
    true_gradient : ndarray, shape ``(2,)``
        ``g* = G(τ*)``.
    jacobian : ndarray, shape ``(2, 3)``
        ``∂G/∂(h, μ_t, s)`` at ``τ*`` (central differences of the quadrature), the
        coefficients of the control variates in :mod:`tailext.validate.montecarlo.kernels`.
    nodes, weights : ndarray
        Gauss–Legendre rule on ``[-1, 1]``.
    """

    tail_fraction: float
    n_target: int
    kappa: float
    threshold: float
    tail_mean: float
    tail_scale: float
    scale_floor: float
    true_gradient: np.ndarray
    jacobian: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray

    @property
    def tail_vector(self) -> np.ndarray:
        """``τ* = (h*, μ_t*, s*)`` as an array."""
        return np.array([self.threshold, self.tail_mean, self.tail_scale])

    @property
    def threshold_density(self) -> float:
        """``φ(h*)``, the reward density at the population threshold."""
        return _INV_SQRT_2PI * math.exp(-0.5 * self.threshold ** 2)

    def gradient_at(self, h, mu, s):
        """``G(h, μ_t, s)`` for one tail vector (the floor is the caller's business)."""
        return np.array(tail_gradient(float(h), float(mu), float(s), 1.0 / self.tail_fraction,
                                      self.kappa, SCORE_OFFSET, self.nodes, self.weights))


def diagnostic_model(tail_fraction=0.1, n_target=128) -> DiagnosticModel:
    r"""Constants and exact gradient ``g* = ∫_{h*}^∞ ψ(r; τ*) S(r) φ(r) dr``.

    See docs/math.md#diagnostic-quadrature.

    Examples
    --------
    >>> from tailext.validate.montecarlo.model import diagnostic_model
    >>> model = diagnostic_model(0.1, 128)
    >>> round(model.threshold, 6), model.true_gradient.shape
    (1.281552, (2,))
    """
    moments = tail_moments(tail_fraction)
    k_n = kappa(tail_fraction, n_target)
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    scale = math.sqrt(moments.v)
    tau_star = np.array([moments.z, moments.lam, scale])

    def gradient(tau):
        return np.array(tail_gradient(tau[0], tau[1], tau[2], 1.0 / tail_fraction, k_n,
                                      SCORE_OFFSET, nodes, weights))

    step = 1e-5  # central differences: truncation ~1e-10, rounding ~1e-11
    jacobian = np.column_stack([(gradient(tau_star + step * e) - gradient(tau_star - step * e))
                                / (2.0 * step) for e in np.eye(3)])
    return DiagnosticModel(float(tail_fraction), int(n_target), k_n, moments.z, moments.lam,
                           scale, 0.5 * scale, gradient(tau_star), jacobian, nodes, weights)
