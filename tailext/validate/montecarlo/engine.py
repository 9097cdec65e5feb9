"""Streamed Monte Carlo of the Gaussian-tail diagnostic: bias and variance of the estimators.

For each group size ``m`` the replications are drawn in fixed-size *blocks*, block ``j`` of
size ``m`` from its own generator ``PCG64(SeedSequence(seed, spawn_key=(m, j)))`` (the
suite's seeding scheme, :mod:`tailext.validate.seeding`). Blocks are
grouped into chunks only for speed, so the numbers depend on the seed and the block size,
never on the chunk size, the backend's threading or which other ``m`` are run. Per block the
sums of the centred estimates ``ĝ − g*`` and of their outer products are kept; the summary
derives bias, variance and their standard errors from them (variance SE by batch means over
blocks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from tailext import prefix_plan, tail_count

from ..seeding import generator
from .model import SCORE_OFFSET, DiagnosticModel

__all__ = ["EstimatorSpec", "SimulationConfig", "CellStatistics", "simulate_cell",
           "summarize_cell", "EstimatorSummary", "DEFAULT_ESTIMATORS", "estimates",
           "block_rewards"]


#: What each replication reports per estimator (``t`` axis): the estimate, its conditional
#: mean given the fits (Rao–Blackwellized) and that mean minus a zero-mean control variate.
VIEWS = ("estimate", "conditional_mean", "controlled_mean")
N_VIEWS = len(VIEWS)


class EstimatorSpec(NamedTuple):
    """An estimator of the diagnostic: TEA (``order is None``) or Prefix-TEA ``(L, J)``."""

    name: str
    label: str
    order: int | None = None
    n_prefixes: int | None = None


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

    def __post_init__(self):
        if self.estimators[0].order is not None:
            raise ValueError("the first estimator must be the direct (TEA) estimator.")
        if len(self.group_sizes) != len(self.replications):
            raise ValueError("`replications` needs one count per group size.")
        for m, count in zip(self.group_sizes, self.replications):
            if count % self.block_size or count < 2 * self.block_size:
                raise ValueError(f"replications ({count} at m={m}) must be a multiple of "
                                 f"block_size={self.block_size} and at least two blocks.")


class CellStatistics(NamedTuple):
    """Per-block sums for one ``m``: ``sums[b, e, t, :]`` and ``squares[b, e, t, :, :]``.

    ``t`` indexes :data:`VIEWS`; values are centred at ``g*`` before summing.
    """

    group_size: int
    block_size: int
    sums: np.ndarray
    squares: np.ndarray


def _plan_arrays(config: SimulationConfig, m: int):
    beta = config.model.tail_fraction
    sizes, counts, weights, bounds = [], [], [], [0]
    for spec in config.estimators[1:]:
        plan = prefix_plan(m // 2, tail_fraction=beta, order=spec.order,
                           n_prefixes=spec.n_prefixes)
        sizes.extend(int(n) for n in plan.sizes)
        counts.extend(tail_count(int(n), beta) for n in plan.sizes)
        weights.extend(float(w) for w in plan.weights)
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
                           model.jacobian, model.threshold_density, model.true_gradient)


def _torch_estimates(config: SimulationConfig, rewards: np.ndarray) -> np.ndarray:
    from .kernels_torch import replicate_batch_torch

    return replicate_batch_torch(config, rewards, _plan_arrays(config, rewards.shape[1]))


def estimates(config: SimulationConfig, rewards: np.ndarray) -> np.ndarray:
    """``[R, E, 3, 2]`` estimates, conditional means and control-variate-adjusted conditional
    means for the rows of ``rewards`` (see :mod:`tailext.validate.montecarlo.kernels`)."""
    if config.backend == "numba":
        return _numba_estimates(config, rewards)
    if config.backend == "torch":
        return _torch_estimates(config, rewards)
    raise ValueError(f"unknown backend {config.backend!r}; use 'numba' or 'torch'.")


def block_rewards(seed: int, group_size: int, block: int, block_size: int, out=None):
    """Rewards of one block: ``N(0, 1)`` of shape ``[block_size, m]`` from stream
    ``(m, block)`` of ``seed``."""
    stream = generator(seed, group_size, block)
    if out is None:
        return stream.standard_normal((block_size, group_size))
    return stream.standard_normal(out=out)


def _chunk_blocks(config: SimulationConfig, m: int) -> int:
    if config.blocks_per_chunk:
        return config.blocks_per_chunk
    # about 4 million rewards (32 MB) per chunk
    return max(1, (1 << 22) // (config.block_size * m))


def simulate_cell(config: SimulationConfig, m: int, replications: int,
                  advance: Callable[[int], None] | None = None) -> CellStatistics:
    """Run all replications for one group size ``m`` and return per-block sums."""
    bs = config.block_size
    n_blocks = replications // bs
    n_est = len(config.estimators)
    g_star = config.model.true_gradient
    sums = np.zeros((n_blocks, n_est, N_VIEWS, 2))
    squares = np.zeros((n_blocks, n_est, N_VIEWS, 2, 2))
    per_chunk = _chunk_blocks(config, m)
    buffer = np.empty((per_chunk * bs, m))
    for start in range(0, n_blocks, per_chunk):
        stop = min(start + per_chunk, n_blocks)
        rewards = buffer[:(stop - start) * bs]
        for j in range(start, stop):
            block_rewards(config.seed, m, j, bs, out=rewards[(j - start) * bs:(j - start + 1) * bs])
        centred = estimates(config, rewards) - g_star
        centred = centred.reshape(stop - start, bs, n_est, N_VIEWS, 2)
        sums[start:stop] = centred.sum(axis=1)
        squares[start:stop] = np.einsum("cbetx,cbety->cetxy", centred, centred)
        if advance is not None:
            advance((stop - start) * bs)
    return CellStatistics(m, bs, sums, squares)


class EstimatorSummary(NamedTuple):
    """Bias and variance of one estimator at one ``m`` (see :func:`summarize_cell`)."""

    bias_vector: np.ndarray
    bias_norm: float
    bias_se: float
    resolved: bool
    variance: float
    variance_se: float
    replications: int


def summarize_cell(stats: CellStatistics, estimator: int,
                   bias_view: str = "controlled_mean") -> EstimatorSummary:
    r"""Bias ``‖E ĝ − g*‖`` with its SE, and variance ``E‖ĝ − E ĝ‖²`` with its SE.

    The bias is the mean of ``bias_view`` (one of :data:`VIEWS`, all with the same
    expectation ``E ĝ``; the default has the smallest variance); its SE is the delta-method SE of the norm, ``√(uᵀ Σ u / R)`` with
    ``u = b̂/‖b̂‖`` and ``Σ`` the covariance of the per-replication conditional means. A bias
    below two SE is *not resolved*. The variance is the trace of the sample covariance of
    the estimates; its SE comes from the spread of the per-block variances (batch means).
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
    mean, cov = moments(0)
    variance = float(np.trace(cov))
    bs = stats.block_size
    block_means = sums[:, 0] / bs
    block_vars = ((np.trace(squares[:, 0], axis1=1, axis2=2) / bs
                   - (block_means ** 2).sum(axis=1)) * bs / (bs - 1))
    variance_se = float(block_vars.std(ddof=1) / math.sqrt(n_blocks))
    return EstimatorSummary(bias, norm, bias_se, bool(norm > 2.0 * bias_se), variance,
                            variance_se, count)
