"""tailext: Tail-Extrapolated Advantage (TEA) and Prefix-TEA for best-of-N post-training.

Fit the upper tail of ``m`` rollout rewards per prompt and extrapolate the best-of-N policy
gradient from it. See :func:`advantages` for the one-call entry point.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

# Public names are imported on first use (PEP 562): `import tailext` — and so every verl
# process that loads tailext's plugin — costs no numba JIT setup and no scipy (≈ 0.9 s and
# 0.7 s of import). The map is name -> submodule; the imports below are for static tools.
_EXPORTS = {
    **dict.fromkeys(["expected_max_normal", "kappa", "tail_moments"], "constants"),
    **dict.fromkeys(["PrefixPlan", "TailVector", "crossfit_gradient", "direct_gradient",
                     "prefix_plan", "prefix_tea_gradient", "shaped_reward", "tail_vector"],
                    "estimators"),
    **dict.fromkeys(["cancellation_weights", "prefix_sizes", "tail_count"], "prefix"),
    **dict.fromkeys(["AdvantageResult", "AdvantageRule", "DiscreteRewardWarning",
                     "SmallGroupWarning", "advantages", "available_methods", "get_rule",
                     "register_rule"], "rules"),
    **dict.fromkeys(["bon_max_mean", "bon_max_second"], "rules.bon_max"),
    "cat_bon": "rules.cat_bon",
    "chow_bon_rl": "rules.chow",
    **dict.fromkeys(["grpo", "mean_centred", "rloo"], "rules.grpo"),
    **dict.fromkeys(["bon_mean", "maxk_loo1"], "rules.max_at_k"),
    **dict.fromkeys(["prefix_tea_advantages", "tea_advantages", "tea_raw_advantages"],
                    "rules.tea"),
}
_SUBMODULES = ("evaluation", "oracle")  # best-of-n evaluation and the oracle advantage

if TYPE_CHECKING:  # pragma: no cover
    from . import evaluation, oracle
    from .constants import expected_max_normal, kappa, tail_moments
    from .estimators import (PrefixPlan, TailVector, crossfit_gradient, direct_gradient,
                             prefix_plan, prefix_tea_gradient, shaped_reward, tail_vector)
    from .prefix import cancellation_weights, prefix_sizes, tail_count
    from .rules import (AdvantageResult, AdvantageRule, DiscreteRewardWarning,
                        SmallGroupWarning, advantages, available_methods, get_rule,
                        register_rule)
    from .rules.bon_max import bon_max_mean, bon_max_second
    from .rules.cat_bon import cat_bon
    from .rules.chow import chow_bon_rl
    from .rules.grpo import grpo, mean_centred, rloo
    from .rules.max_at_k import bon_mean, maxk_loo1
    from .rules.tea import prefix_tea_advantages, tea_advantages, tea_raw_advantages


def __getattr__(name: str):
    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


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
