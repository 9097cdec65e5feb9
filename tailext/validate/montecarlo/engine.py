"""Streamed Monte Carlo of the Gaussian-tail diagnostic: bias and variance of the estimators.

For each group size ``m`` the replications are drawn in fixed-size *blocks*, block ``j`` of
size ``m`` from its own generator ``PCG64(SeedSequence(seed, spawn_key=(m, j)))`` (the
suite's seeding scheme, :mod:`tailext.validate.seeding`). Blocks are
grouped into chunks only for speed, so the numbers depend on the seed and the block size,
never on the chunk size, the backend's threading or which other ``m`` are run. Per block the
sums of the centred estimates ``ĝ − g*`` and of their outer products are kept; the summary
derives bias, variance and their standard errors from them (variance SE by batch means over
blocks).

With ``controls=True`` the cross-fitted estimators also get the polynomial control variates
of :mod:`tailext.validate.montecarlo.controls` (docs/math.md#polynomial-controls): their
coefficients are fitted by least squares on ``pilot_replications`` separate replications
(block ``j`` of the pilot is stream ``(m, j, 1)``), then frozen, so the controlled values of
the main replications keep the exact expectation ``E ĝ``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from tailext import cancellation_weights, prefix_plan, tail_count
from tailext.prefix import tail_fraction_ratio

from ..seeding import generator
from .controls import N_FEATURES, feature_means
from .model import SCORE_OFFSET, DiagnosticModel

__all__ = ["EstimatorSpec", "SimulationConfig", "CellStatistics", "simulate_cell",
           "summarize_cell", "EstimatorSummary", "DEFAULT_ESTIMATORS", "estimates",
           "estimates_and_features", "block_rewards", "estimator_plan", "offset_sizes",
           "fit_controls", "Controls", "SE_PRECISION"]


#: What each replication reports per estimator (``t`` axis): the estimate, its conditional
#: mean given the fits (Rao–Blackwellized), that mean minus the linear zero-mean control
#: variate, and the conditional mean minus the polynomial control variates (equal to the
#: third view without ``controls``, and for the direct estimator).
VIEWS = ("estimate", "conditional_mean", "controlled_mean", "polynomial_controlled")
N_VIEWS = len(VIEWS)


#: Prefix-size rules of :class:`EstimatorSpec`.
SIZE_RULES = ("compatible", "offset", "single")


class EstimatorSpec(NamedTuple):
    """An estimator of the diagnostic: TEA (``order is None``) or Prefix-TEA ``(L, J)``.

    ``sizes`` picks the prefix sizes on the base ``n = m // 2``: ``"compatible"``
    (:func:`tailext.prefix_sizes`, one rounding offset δ), ``"offset"`` (every prefix but
    the last moved to the size nearest ``j n / J`` whose δ differs from that of ``n``, with
    the order-``L`` weights for those sizes: the ablation of docs/math.md#rounding-offset),
    or ``"single"`` (one symmetric cross-fit of size ``n − shift``, weight 1).
    """

    name: str
    label: str
    order: int | None = None
    n_prefixes: int | None = None
    sizes: str = "compatible"
    shift: int = 0


def offset_sizes(n: int, tail_fraction, n_prefixes: int) -> list[int]:
    """Sizes ``n_j`` nearest ``j n / J`` with ``n_j ≢ n (mod q)`` (``β = p/q``) for ``j < J``,
    and ``n_J = n``: prefixes whose rounding offset differs from the base's (ties: the
    larger size). For ``β = 1/2`` and even ``n``, the odd size nearest ``j n / J``."""
    q = tail_fraction_ratio(tail_fraction).denominator  # ≥ 2 for 0 < β < 1
    sizes = []
    for j in range(1, n_prefixes):
        target = j * n / n_prefixes
        candidates = [c for c in range(int(target) - q, int(target) + q + 2)
                      if (c - n) % q and c > 0]
        sizes.append(min(candidates, key=lambda c: (abs(c - target), -c)))
    return sizes + [n]


DEFAULT_ESTIMATORS = (
    EstimatorSpec("tea", "TEA (direct)"),
    EstimatorSpec("prefix_tea_L2_J3", "Prefix-TEA (L,J)=(2,3)", 2, 3),
    EstimatorSpec("prefix_tea_L2_J4", "Prefix-TEA (L,J)=(2,4)", 2, 4),
)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate: model constants, estimators, ``m`` grid, replications and seed.

    ``replications[i]`` replications are run at ``group_sizes[i]`` in blocks of
    ``block_size`` (each block its own random stream); ``blocks_per_chunk`` (0: automatic,
    about 4 million rewards) only sets how many blocks go to the kernel at once and does
    not change any number. ``backend`` is ``"numba"`` or ``"torch"`` (on ``device``); both
    give the same numbers to 1e-11. The first estimator must be TEA (the direct estimator).
    """

    model: DiagnosticModel
    group_sizes: tuple[int, ...]
    replications: tuple[int, ...]
    block_size: int
    seed: int
    estimators: tuple[EstimatorSpec, ...] = DEFAULT_ESTIMATORS
    backend: str = "numba"
    device: str = "cpu"
    blocks_per_chunk: int = field(default=0)
    controls: bool = False
    pilot_replications: int = 0

    def __post_init__(self):
        if self.estimators[0].order is not None:
            raise ValueError("the first estimator must be the direct (TEA) estimator.")
        if self.controls and (self.pilot_replications % self.block_size
                              or self.pilot_replications < 2 * self.block_size):
            raise ValueError(f"pilot_replications ({self.pilot_replications}) must be a "
                             f"multiple of block_size={self.block_size} and at least two "
                             "blocks when controls are on.")
        if len(self.group_sizes) != len(self.replications):
            raise ValueError("`replications` needs one count per group size.")
        for m, count in zip(self.group_sizes, self.replications):
            if count % self.block_size or count < 2 * self.block_size:
                raise ValueError(f"replications ({count} at m={m}) must be a multiple of "
                                 f"block_size={self.block_size} and at least two blocks.")


class CellStatistics(NamedTuple):
    """Per-block sums for one ``m``: ``sums[b, e, t, :]`` and ``squares[b, e, t, :, :]``, and
    the third and fourth moment tensors ``cubes[b, e]``, ``quartics[b, e]`` of the last view.

    ``t`` indexes :data:`VIEWS`; values are centred at ``g*`` before summing.
    """

    group_size: int
    block_size: int
    sums: np.ndarray
    squares: np.ndarray
    cubes: np.ndarray | None = None
    quartics: np.ndarray | None = None


def estimator_plan(spec: EstimatorSpec, n: int, tail_fraction) -> tuple[list, list]:
    """Prefix sizes and weights of a cross-fitted estimator on base size ``n``."""
    if spec.sizes == "compatible":
        plan = prefix_plan(n, tail_fraction=tail_fraction, order=spec.order,
                           n_prefixes=spec.n_prefixes)
        return [int(v) for v in plan.sizes], [float(w) for w in plan.weights]
    if spec.sizes == "offset":
        sizes = offset_sizes(n, tail_fraction, spec.n_prefixes)
        return sizes, [float(w) for w in cancellation_weights(sizes, order=spec.order)]
    if spec.sizes == "single":
        return [n - spec.shift], [1.0]
    raise ValueError(f"unknown prefix-size rule {spec.sizes!r}; use one of {SIZE_RULES}.")


def _plan_arrays(config: SimulationConfig, m: int):
    beta = config.model.tail_fraction
    sizes, counts, weights, bounds = [], [], [], [0]
    for spec in config.estimators[1:]:
        plan_sizes, plan_weights = estimator_plan(spec, m // 2, beta)
        sizes.extend(plan_sizes)
        counts.extend(tail_count(n, beta) for n in plan_sizes)
        weights.extend(plan_weights)
        bounds.append(len(sizes))
    return (np.array(sizes, dtype=np.int64), np.array(counts, dtype=np.int64),
            np.array(weights, dtype=np.float64), np.array(bounds, dtype=np.int64))


def _numba_estimates(config: SimulationConfig, rewards: np.ndarray) -> np.ndarray:
    from .kernels import replicate_batch

    model = config.model
    m = rewards.shape[1]
    sizes, counts, weights, bounds = _plan_arrays(config, m)
    return replicate_batch(rewards, tail_count(m, model.tail_fraction), sizes, counts, weights,
                           bounds, model.scale_floor, 1.0 / model.tail_fraction, model.kappa,
                           SCORE_OFFSET, model.nodes, model.weights, model.tail_vector,
                           model.jacobian, model.threshold_density, model.true_gradient,
                           N_FEATURES if config.controls else 0)


def _torch_estimates(config: SimulationConfig, rewards: np.ndarray):
    from .kernels_torch import replicate_batch_torch

    return replicate_batch_torch(config, rewards, _plan_arrays(config, rewards.shape[1]))


def estimates_and_features(config: SimulationConfig, rewards: np.ndarray):
    """``([R, E, 3, 2], [R, S, F])``: estimates, conditional means and linearly controlled
    conditional means for the rows of ``rewards`` (see
    :mod:`tailext.validate.montecarlo.kernels`), and the control features of each of the
    ``S`` prefix fits (``F = 0`` without ``controls``)."""
    if config.backend == "numba":
        return _numba_estimates(config, rewards)
    if config.backend == "torch":
        return _torch_estimates(config, rewards)
    raise ValueError(f"unknown backend {config.backend!r}; use 'numba' or 'torch'.")


def estimates(config: SimulationConfig, rewards: np.ndarray) -> np.ndarray:
    """``[R, E, 3, 2]``: the first part of :func:`estimates_and_features`."""
    return estimates_and_features(config, rewards)[0]


def block_rewards(seed: int, group_size: int, block: int, block_size: int, out=None, *,
                  pilot: bool = False):
    """Rewards of one block: ``N(0, 1)`` of shape ``[block_size, m]`` from stream
    ``(m, block)`` of ``seed`` (``(m, block, 1)`` for a pilot block)."""
    stream = generator(seed, group_size, block, *((1,) if pilot else ()))
    if out is None:
        return stream.standard_normal((block_size, group_size))
    return stream.standard_normal(out=out)


def _chunk_blocks(config: SimulationConfig, m: int) -> int:
    if config.blocks_per_chunk:
        return config.blocks_per_chunk
    # about 4 million rewards (32 MB) per chunk
    return max(1, (1 << 22) // (config.block_size * m))


class Controls(NamedTuple):
    """Fitted polynomial control variates of one ``m``: per cross-fitted estimator the
    feature slots ``[lo, hi)``, the exact feature means and the frozen coefficients."""

    slots: list
    means: list
    coefficients: list


def _slot_means(config: SimulationConfig, m: int) -> np.ndarray:
    """Exact means of the features of every prefix fit (both directions summed)."""
    model = config.model
    sizes, counts, _, _ = _plan_arrays(config, m)
    return np.stack([2.0 * feature_means(int(n), int(k), model.threshold, model.tail_fraction,
                                         model.threshold_density)
                     for n, k in zip(sizes, counts)])


def _design(features, means, lo, hi):
    return (features[:, lo:hi] - means[lo:hi]).reshape(features.shape[0], -1)


def fit_controls(config: SimulationConfig, m: int) -> Controls:
    """Least-squares coefficients of the features of each cross-fitted estimator for its
    conditional mean, on the pilot replications (an intercept is fitted and dropped)."""
    bs = config.block_size
    rewards = np.concatenate([block_rewards(config.seed, m, j, bs, pilot=True)
                              for j in range(config.pilot_replications // bs)])
    out, features = estimates_and_features(config, rewards)
    means = _slot_means(config, m)
    bounds = _plan_arrays(config, m)[3]
    slots, coefficients = [], []
    for e in range(1, len(config.estimators)):
        lo, hi = int(bounds[e - 1]), int(bounds[e])
        design = _design(features, means, lo, hi)
        scale = design.std(axis=0) + 1e-300
        target = out[:, e, 1] - config.model.true_gradient
        solution = np.linalg.lstsq(np.column_stack([np.ones(len(design)), design / scale]),
                                   target, rcond=None)[0]
        slots.append((lo, hi))
        coefficients.append(solution[1:] / scale[:, None])
    return Controls(slots, [means] * len(slots), coefficients)


def controlled_values(config: SimulationConfig, out, features, controls: Controls | None):
    """``out`` with its last view filled: the conditional mean minus the fitted polynomial
    control variates (cross-fitted estimators), else the linearly controlled mean."""
    full = np.concatenate([out, out[:, :, 2:3]], axis=2)
    if controls is not None:
        for e, ((lo, hi), means, coef) in enumerate(zip(controls.slots, controls.means,
                                                        controls.coefficients), start=1):
            full[:, e, 3] = out[:, e, 1] - _design(features, means, lo, hi) @ coef
    return full


def simulate_cell(config: SimulationConfig, m: int, replications: int,
                  advance: Callable[[int], None] | None = None) -> CellStatistics:
    """Run all replications for one group size ``m`` and return per-block sums (after the
    pilot replications that fit the control variates, when ``config.controls``)."""
    bs = config.block_size
    n_blocks = replications // bs
    n_est = len(config.estimators)
    g_star = config.model.true_gradient
    controls = fit_controls(config, m) if config.controls else None
    sums = np.zeros((n_blocks, n_est, N_VIEWS, 2))
    squares = np.zeros((n_blocks, n_est, N_VIEWS, 2, 2))
    cubes = np.zeros((n_blocks, n_est, 2, 2, 2))
    quartics = np.zeros((n_blocks, n_est, 2, 2, 2, 2))
    per_chunk = _chunk_blocks(config, m)
    buffer = np.empty((per_chunk * bs, m))
    for start in range(0, n_blocks, per_chunk):
        stop = min(start + per_chunk, n_blocks)
        rewards = buffer[:(stop - start) * bs]
        for j in range(start, stop):
            block_rewards(config.seed, m, j, bs, out=rewards[(j - start) * bs:(j - start + 1) * bs])
        out, features = estimates_and_features(config, rewards)
        centred = controlled_values(config, out, features, controls) - g_star
        centred = centred.reshape(stop - start, bs, n_est, N_VIEWS, 2)
        sums[start:stop] = centred.sum(axis=1)
        squares[start:stop] = np.einsum("cbetx,cbety->cetxy", centred, centred)
        last = centred[:, :, :, -1]
        cubes[start:stop] = np.einsum("cbex,cbey,cbez->cexyz", last, last, last)
        quartics[start:stop] = np.einsum("cbex,cbey,cbez,cbew->cexyzw", last, last, last, last)
        if advance is not None:
            advance((stop - start) * bs)
    return CellStatistics(m, bs, sums, squares, cubes, quartics)


#: A bias is resolved only where its standard error is itself known to this relative
#: precision: ``√((κ − 1)/R) ≤ 0.1`` (the relative SD of a sample variance, κ the kurtosis
#: of the per-replication values), i.e. ``R ≥ 100 (κ − 1)`` replications.
SE_PRECISION = 0.1


class EstimatorSummary(NamedTuple):
    """Bias and variance of one estimator at one ``m`` (see :func:`summarize_cell`)."""

    bias_vector: np.ndarray
    bias_norm: float
    bias_se: float
    resolved: bool
    variance: float
    variance_se: float
    replications: int
    kurtosis: float | None = None
    bias_vector_se: np.ndarray | None = None


def projected_kurtosis(stats: CellStatistics, estimator: int, direction: np.ndarray) -> float:
    """Kurtosis ``E(x − Ex)⁴ / Var(x)²`` of ``x = uᵀ(value − g*)`` for the last view, from
    the per-block moment tensors."""
    count = stats.sums.shape[0] * stats.block_size
    u = direction
    raw = [float(np.einsum("x,x->", stats.sums[:, estimator, -1].sum(axis=0), u)) / count,
           float(np.einsum("xy,x,y->", stats.squares[:, estimator, -1].sum(axis=0), u, u))
           / count,
           float(np.einsum("xyz,x,y,z->", stats.cubes[:, estimator].sum(axis=0), u, u, u))
           / count,
           float(np.einsum("xyzw,x,y,z,w->", stats.quartics[:, estimator].sum(axis=0),
                           u, u, u, u)) / count]
    mean = raw[0]
    variance = raw[1] - mean ** 2
    fourth = raw[3] - 4 * mean * raw[2] + 6 * mean ** 2 * raw[1] - 3 * mean ** 4
    return fourth / variance ** 2 if variance > 0 else float("nan")


def summarize_cell(stats: CellStatistics, estimator: int,
                   bias_view: str = "polynomial_controlled") -> EstimatorSummary:
    r"""Bias ``‖E ĝ − g*‖`` with its SE, and variance ``E‖ĝ − E ĝ‖²`` with its SE.

    The bias is the mean of ``bias_view`` (one of :data:`VIEWS`, all with the same
    expectation ``E ĝ``; the default has the smallest variance); its SE is the delta-method SE of the norm, ``√(uᵀ Σ u / R)`` with
    ``u = b̂/‖b̂‖`` and ``Σ`` the covariance of the per-replication conditional means. A bias
    is *resolved* when it exceeds two SE and, for the last view, the kurtosis ``κ`` of
    ``uᵀ`` (value) satisfies ``√((κ − 1)/R) ≤`` :data:`SE_PRECISION`. The variance is the
    trace of the sample covariance of the estimates; its SE comes from the spread of the
    per-block variances (batch means).
    """
    n_blocks = stats.sums.shape[0]
    count = n_blocks * stats.block_size
    sums = stats.sums[:, estimator]
    squares = stats.squares[:, estimator]

    def moments(t):
        mean = sums[:, t].sum(axis=0) / count
        cov = (squares[:, t].sum(axis=0) / count - np.outer(mean, mean)) * count / (count - 1)
        return mean, cov

    bias, bias_cov = moments(VIEWS.index(bias_view))
    norm = float(np.linalg.norm(bias))
    direction = bias / norm if norm > 0 else np.array([1.0, 0.0])
    bias_se = math.sqrt(max(float(direction @ bias_cov @ direction), 0.0) / count)
    kurtosis = None
    resolved = norm > 2.0 * bias_se
    if bias_view == VIEWS[-1] and stats.cubes is not None:
        kurtosis = projected_kurtosis(stats, estimator, direction)
        resolved = resolved and math.sqrt(max(kurtosis - 1.0, 0.0) / count) <= SE_PRECISION
    mean, cov = moments(0)
    variance = float(np.trace(cov))
    bs = stats.block_size
    block_means = sums[:, 0] / bs
    block_vars = ((np.trace(squares[:, 0], axis1=1, axis2=2) / bs
                   - (block_means ** 2).sum(axis=1)) * bs / (bs - 1))
    variance_se = float(block_vars.std(ddof=1) / math.sqrt(n_blocks))
    return EstimatorSummary(bias, norm, bias_se, bool(resolved), variance, variance_se, count,
                            kurtosis, np.sqrt(np.maximum(np.diag(bias_cov), 0.0) / count))
