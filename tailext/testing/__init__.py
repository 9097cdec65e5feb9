"""Property-testing tools for advantage rules (needs the ``dev`` extra: hypothesis).

``import tailext`` never imports this package, so hypothesis stays a development
dependency; ``import tailext.testing`` needs it.

- :mod:`tailext.testing.strategies`: hypothesis strategies for reward batches ``[B, m]``
  (ties, all-equal groups, heavy/light tails, extreme magnitudes, float32/float64), tail
  settings that yield valid fits, and matching score arrays ``[B, m, d]``.
- :func:`check_rule`: property-based conformance checks of any advantage rule (finite
  output, shape/dtype, no input mutation, zero-sum, shift/scale invariance, permutation
  equivariance, monotonicity, determinism, batch independence) with minimal failing
  examples.
"""

from . import strategies
from .conformance import (
    ALWAYS_CHECKED,
    CHECKABLE,
    DEFAULT_RTOL,
    ConformanceReport,
    PropertyResult,
    check_rule,
)
from .strategies import (
    TailProblem,
    group_sizes,
    n_targets,
    reward_batches,
    rewards_and_scores,
    score_arrays,
    tail_fractions,
    tail_problems,
)

__all__ = [
    "ALWAYS_CHECKED",
    "CHECKABLE",
    "DEFAULT_RTOL",
    "ConformanceReport",
    "PropertyResult",
    "check_rule",
    "strategies",
    "TailProblem",
    "group_sizes",
    "n_targets",
    "reward_batches",
    "rewards_and_scores",
    "score_arrays",
    "tail_fractions",
    "tail_problems",
]
