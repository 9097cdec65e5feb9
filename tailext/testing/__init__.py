"""Property-testing tools for advantage rules (needs the ``dev`` extra: hypothesis).

``import tailext`` never imports this package, so hypothesis stays a development
dependency; ``import tailext.testing`` needs it.

- :mod:`tailext.testing.strategies`: hypothesis strategies for reward batches ``[B, m]``
  (ties, all-equal groups, heavy/light tails, extreme magnitudes, float32/float64), tail
  settings that yield valid fits, and matching score arrays ``[B, m, d]``.
"""

from . import strategies
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
