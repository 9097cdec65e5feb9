"""tailext: Tail-Extrapolated Advantage (TEA) and Prefix-TEA for best-of-N post-training.

Fit the upper tail of ``m`` rollout rewards per prompt and extrapolate the best-of-N policy
gradient from it. See :func:`advantages` for the one-call entry point.
"""

from ._version import __version__
from .constants import expected_max_normal, kappa, tail_moments
from .estimators import (
    PrefixPlan,
    TailVector,
    crossfit_gradient,
    direct_gradient,
    prefix_plan,
    prefix_tea_advantages,
    prefix_tea_gradient,
    shaped_reward,
    tail_vector,
    tea_advantages,
    tea_raw_advantages,
)
from .prefix import cancellation_weights, prefix_sizes, tail_count
from .rules import AdvantageRule, advantages, available_methods, get_rule, register_rule
from .baselines import (  # importing registers the baseline rules
    bon_max_mean,
    bon_max_second,
    bon_mean,
    cat_bon,
    chow_bon_rl,
    grpo,
    grpo_z,
    maxk_loo1,
    rloo,
)
from . import evaluation, oracle  # best-of-n evaluation (MATH §7) and oracle A* (MATH §8)

__all__ = [
    "__version__",
    "evaluation",
    "oracle",
    "AdvantageRule",
    "PrefixPlan",
    "TailVector",
    "advantages",
    "available_methods",
    "bon_max_mean",
    "bon_max_second",
    "bon_mean",
    "cat_bon",
    "chow_bon_rl",
    "cancellation_weights",
    "crossfit_gradient",
    "direct_gradient",
    "expected_max_normal",
    "get_rule",
    "grpo",
    "grpo_z",
    "kappa",
    "maxk_loo1",
    "prefix_plan",
    "prefix_sizes",
    "prefix_tea_advantages",
    "prefix_tea_gradient",
    "register_rule",
    "rloo",
    "shaped_reward",
    "tail_count",
    "tail_moments",
    "tail_vector",
    "tea_advantages",
    "tea_raw_advantages",
]
