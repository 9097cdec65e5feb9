"""Advantage rules: the registry, the numpy entry point and the built-in rules.

Each built-in rule lives in one module of this package beside its torch implementation and
registers itself there (:func:`register_rule`); importing the package imports them all.

- :mod:`.registry` — :class:`AdvantageRule`, :func:`register_rule`, :func:`get_rule`,
  :func:`available_methods`;
- :mod:`.dispatch` — :func:`advantages`, masks and the small-group policy (:mod:`.policy`);
- :mod:`.tea` — ``tea``, ``tea_raw``, ``prefix_tea``;
- :mod:`.grpo` — ``grpo``, ``mean_centred``, ``rloo``;
- :mod:`.bon_max` — ``bon_max_mean``, ``bon_max_second``;
- :mod:`.max_at_k` — ``bon_mean``, ``maxk_loo1``;
- :mod:`.chow` — ``chow_bon_rl``; :mod:`.cat_bon` — ``cat_bon``;
- :mod:`.compose` — ``weighted_sum``, built from the rules above (imported last).
"""

from .dispatch import advantages
from .policy import AdvantageResult, DiscreteRewardWarning, SmallGroupWarning
from .registry import PROPERTIES, AdvantageRule, available_methods, get_rule, register_rule


def _import_rule_modules():
    """Import every module of this package but the machinery: each registers its rules.

    A new built-in rule is one module here (plus its tests); nothing else lists it.
    ``compose`` comes last: its rule is built from the others.
    """
    import importlib
    import pkgutil

    machinery = {"registry", "dispatch", "policy", "compose"}
    names = sorted(info.name for info in pkgutil.iter_modules(__path__)
                   if info.name not in machinery)
    for name in [*names, "compose"]:
        importlib.import_module(f"{__name__}.{name}")


_import_rule_modules()

__all__ = ["AdvantageRule", "AdvantageResult", "DiscreteRewardWarning", "PROPERTIES",
           "SmallGroupWarning", "advantages", "available_methods", "get_rule", "register_rule"]
