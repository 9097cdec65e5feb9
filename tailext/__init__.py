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
    prefix_tea_gradient,
    shaped_reward,
    tail_vector,
)
from .prefix import cancellation_weights, prefix_sizes, tail_count
from .rules import (AdvantageResult, AdvantageRule, DiscreteRewardWarning, SmallGroupWarning,
                    advantages, available_methods, get_rule, register_rule)
from .rules.bon_max import bon_max_mean, bon_max_second
from .rules.cat_bon import cat_bon
from .rules.chow import chow_bon_rl
from .rules.grpo import grpo, mean_centred, rloo
from .rules.max_at_k import bon_mean, maxk_loo1
from .rules.tea import prefix_tea_advantages, tea_advantages, tea_raw_advantages
from . import evaluation, oracle  # best-of-n evaluation and the oracle advantage

__all__ = [
    "__version__",
    "evaluation",
    "oracle",
    "AdvantageResult",
    "AdvantageRule",
    "DiscreteRewardWarning",
    "SmallGroupWarning",
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
    "kappa",
    "maxk_loo1",
    "mean_centred",
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
