"""What happens to groups a rule cannot use, shared by the numpy and torch entry points.

Real trainers hand over groups that are too small for a rule (verl pads a batch with a
synthetic group of 1–4 rows; agent loops that return nothing shrink groups; evaluation may
use 2 generations), rollouts that must not count (a completion no reward function could
score, a response with no tokens), and rewards with only a few distinct values (0/1
correctness). The policy here is the same for every rule and both backends:

* invalid rollouts (``valid=False``) are left out of their group's statistics — a group of
  16 with 3 invalid rollouts is a group of 13 — and get advantage 0;
* a group with fewer valid rollouts than the rule's minimum is an error under
  ``small_groups="raise"`` (the numpy default) and gets advantage 0 under
  ``small_groups="zero"`` (the default of the torch adapter and every trainer integration),
  with a :class:`SmallGroupWarning` and the count in :class:`AdvantageResult`;
* a tail-fitting rule (TEA family) counts the groups whose top rewards are tied
  (:class:`DiscreteRewardWarning`; see ``docs/binary-rewards.md``).
"""

from __future__ import annotations

import sys
import warnings

from .._arguments import shown
from typing import NamedTuple

__all__ = ["SMALL_GROUP_POLICIES", "SmallGroupWarning", "DiscreteRewardWarning",
           "AdvantageResult", "small_group_error", "warn_small_groups", "warn_discrete"]

SMALL_GROUP_POLICIES = ("raise", "zero")

class SmallGroupWarning(UserWarning):
    """Some groups had fewer valid rollouts than the rule needs; their advantages are 0."""


class DiscreteRewardWarning(UserWarning):
    """A tail-fitting rule saw groups whose top rewards are tied (e.g. 0/1 rewards)."""


class AdvantageResult(NamedTuple):
    """Advantages with the counts a trainer can log (``return_info=True``).

    Attributes
    ----------
    advantages : ndarray or torch.Tensor
        As returned without ``return_info``.
    small_groups : int or torch.Tensor
        Groups with at least one but fewer than ``min_group_size`` valid rollouts, whose
        advantages were set to 0 (``small_groups="zero"``).
    invalid : int or torch.Tensor
        Rollouts marked invalid (``valid=False``, or a non-finite reward in the torch
        adapter with ``check_finite=False``); their advantages are 0.
    discrete_groups : int or torch.Tensor
        Groups whose top rewards take at most two distinct values with one of them
        repeated (counted by tail-fitting rules only, 0 otherwise).
    nonfinite : int or torch.Tensor
        Advantages that are not finite in the returned dtype. Always 0 where the result is
        checked (numpy, and torch with ``check_finite=True``, raise instead); with
        ``check_finite=False`` an advantage beyond the dtype's range (a float16 result above
        65504, say) is returned as ±inf and counted here.

    The torch adapter returns 0-dimensional int64 tensors on the rewards' device, so that
    reading them is the caller's choice of when to synchronize.
    """

    advantages: object
    small_groups: object
    invalid: object
    discrete_groups: object
    nonfinite: object = 0


#: Modules whose frames sit between tailext and its caller (torch.no_grad's wrapper).
_WRAPPER_MODULES = ("torch.utils._contextlib",)


def _user_stacklevel() -> int:
    """``stacklevel`` that points a warning at the first frame outside tailext."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and (
            frame.f_globals.get("__name__", "").split(".")[0] == "tailext"
            or frame.f_globals.get("__name__") in _WRAPPER_MODULES):
        level += 1
        frame = frame.f_back
    return level


def small_group_error(rule, options, size: int, minimum: int, where: str) -> ValueError:
    """The ``small_groups="raise"`` error for a group of ``size`` valid rollouts.

    ``options`` are the options as the caller gave them (shown as given, not as validated).
    """
    shown_options = ", ".join(f"{k}={shown(v)}" for k, v in options.items()
                              if not k == "seed")
    return ValueError(
        f"{where} has {size} valid rollout(s), too few for method {rule.name!r}"
        f"{' (' + shown_options + ')' if shown_options else ''}, which needs at least "
        f"{minimum}; use larger groups, or small_groups='zero' to give such groups "
        f"advantage 0.")


def warn_small_groups(rule, minimum: int) -> None:
    """One :class:`SmallGroupWarning` per call site: the text is fixed (the counts are in
    :class:`AdvantageResult`), and Python shows a warning once per text and location."""
    warnings.warn(f"method {rule.name!r} gave advantage 0 to groups with fewer than "
                  f"{minimum} valid rollouts (small_groups='zero'); return_info=True "
                  "reports how many per call.", SmallGroupWarning,
                  stacklevel=_user_stacklevel())


def warn_discrete(rule) -> None:
    """One :class:`DiscreteRewardWarning` per call site."""
    warnings.warn(f"method {rule.name!r} relies on a fit of each group's upper tail, but "
                  "some groups' top rewards are tied (binary or few-level rewards): the fit then gives "
                  "little or no signal. See the tailext docs on 0/1 rewards and pass@k "
                  "(docs/binary-rewards.md): for a pass@N target with m >= N, maxk_loo1 "
                  "with k=N is exact.", DiscreteRewardWarning,
                  stacklevel=_user_stacklevel())
