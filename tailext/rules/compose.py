"""Rules built from registered rules: ``weighted_sum``, ``A = Σ_k w_k · A_k``.

A composed rule takes its components as plain data — a list of ``{"method", "weight",
"options"}`` mappings or ``(method, weight[, options])`` pairs — so that every entry point
can pass it: ``tailext.advantages(r, method="weighted_sum", components=[...])``, the torch
adapter, TRL's ``advantage_options``, a verl or SkyRL config (lists and mappings that YAML
and OmegaConf express). Its attributes are derived from the components (:func:`derived`):
the properties they all share (``monotone`` only with non-negative weights), the largest
minimum group size, the torch implementation the weighted sum of theirs.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from .._arguments import did_you_mean, real_iv, shown
from .dispatch import NonFiniteRows, check_status, checks_finite
from .registry import AdvantageRule, get_rule, register_rule

__all__ = ["Component", "weighted_sum", "derived", "plain_options"]

#: Properties a weighted sum keeps whenever all its components have them, whatever the
#: weights: each is preserved by sums and by multiplication with a constant.
_LINEAR = frozenset({"zero_sum", "shift_invariant", "scale_equivariant", "scale_invariant",
                     "permutation_equivariant", "deterministic"})
_KEYS = ("method", "weight", "options")


class Component(NamedTuple):
    """One term ``weight · A`` of a composed rule, validated.

    Attributes
    ----------
    rule : AdvantageRule
        The component's rule under ``options`` (:meth:`AdvantageRule.specialized`).
    weight : float
        Its finite weight (any sign).
    options : dict
        Its complete, validated options (:meth:`AdvantageRule.resolve`).
    """

    rule: AdvantageRule
    weight: float
    options: dict

    @property
    def method(self) -> str:
        """The component rule's name."""
        return self.rule.name

    def __repr__(self):
        return f"Component({self.rule.name!r}, weight={self.weight!r}, options={self.options!r})"


def _component_iv(item, where: str) -> Component:
    if isinstance(item, Component):
        method, weight, options = item.rule, item.weight, item.options
    elif isinstance(item, Mapping):
        keys = [str(key) for key in item]
        unknown = [key for key in keys if key not in _KEYS]
        if unknown:
            raise TypeError(f"`{where}` has unknown key {unknown[0]!r}; a component has the "
                            f"keys 'method', 'weight' and (optional) 'options'."
                            f"{did_you_mean(unknown[0], _KEYS)}")
        missing = [key for key in ("method", "weight") if key not in keys]
        if missing:
            raise TypeError(f"`{where}` lacks {' and '.join(map(repr, missing))}; a component "
                            f"is {{'method': name, 'weight': w[, 'options': {{...}}]}}, got "
                            f"{shown(item)}.")
        method, weight, options = item["method"], item["weight"], item.get("options")
    elif (isinstance(item, Sequence) and not isinstance(item, (str, bytes))
          and len(item) in (2, 3)):
        method, weight, options = (*item, None)[:3]
    else:
        raise TypeError(f"`{where}` must be a mapping {{'method': name, 'weight': w[, "
                        f"'options': {{...}}]}} or a (method, weight[, options]) pair, got "
                        f"{shown(item)}.")
    weight = real_iv(weight, f"{where}.weight")
    options = {} if options is None else options
    if not isinstance(options, Mapping):
        raise TypeError(f"`{where}.options` must be a mapping of the rule's options, got "
                        f"{shown(options)}.")
    try:
        rule = get_rule(method)
    except (TypeError, ValueError) as error:
        raise type(error)(f"`{where}.method`: {error}") from None
    try:
        resolved = rule.resolve({str(key): value for key, value in options.items()})
    except (TypeError, ValueError) as error:
        raise type(error)(f"`{where}` ({rule.name!r}): {error}") from None
    specialized = rule.specialized(resolved)
    if "seed" in rule.options:
        # A random component (check_rule seeds a top-level rule itself, not a component):
        # its draws depend on the batch it is called on, so the sum is not claimed
        # deterministic (nor batch-independent); without a seed it draws afresh on every
        # call, so only what holds within one call (zero_sum) is kept.
        kept = specialized.properties - {"deterministic"}
        if options.get("seed") is None:
            kept &= {"zero_sum"}
        specialized = dataclasses.replace(specialized, properties=kept)
    return Component(specialized, weight, resolved)


def _weighted_sum_options(*, components):
    if isinstance(components, (str, bytes, Mapping)) or not isinstance(components, Sequence):
        raise TypeError("`components` must be a list of components ({'method': name, "
                        "'weight': w[, 'options': {...}]} or (method, weight[, options])), "
                        f"got {shown(components)}.")
    if not components:
        raise ValueError("`components` must name at least one rule, got an empty list.")
    parts = tuple(_component_iv(item, f"components[{i}]") for i, item in enumerate(components))
    if all(part.weight == 0.0 for part in parts):
        raise ValueError("`components` has only zero weights: the weighted sum would be 0 "
                         "for every rollout; give at least one component a non-zero weight.")
    return {"components": parts}


def derived(*, components) -> dict:
    """Properties, ``torch_masks`` and ``tail_fit`` of ``Σ_k w_k A_k`` (validated components).

    - ``zero_sum``, ``shift_invariant``, ``permutation_equivariant``, ``deterministic``,
      ``scale_equivariant``, ``scale_invariant``: if every component has it (a sum of
      scale-equivariant and scale-invariant rules has neither); a component with a ``seed``
      option (``chow_bon_rl``, ``prefix_tea``) has no ``deterministic``, and without a
      seed only ``zero_sum`` (see :func:`_component_iv`);
    - ``monotone``: if every component is monotone and every weight is ``>= 0``;
    - ``torch_masks``: if every component has a torch implementation that handles masks;
    - ``tail_fit``: if any component fits a tail (its tied-tail groups are counted).

    Components with weight 0 count too: they are computed (and their domain applies).
    """
    shared = frozenset.intersection(*(part.rule.properties for part in components))
    properties = shared & _LINEAR
    if "monotone" in shared and all(part.weight >= 0.0 for part in components):
        properties |= {"monotone"}
    return {"properties": properties,
            "torch_masks": all(part.rule.torch is not None and part.rule.torch_masks
                               for part in components),
            "tail_fit": any(part.rule.tail_fit for part in components)}


def _min_group_size(*, components) -> int:
    return max(int(part.rule.min_group_size(**part.options)) for part in components)


def _component_numpy(part, rewards):
    out, flags = part.rule.numpy(rewards, **part.options), None
    if part.rule.tail_fit:
        out, flags = out
        flags = np.asarray(flags, dtype=bool)
    out = np.asarray(out, dtype=np.float64)
    if out.shape != rewards.shape:
        raise ValueError(f"component rule {part.method!r} returned shape {out.shape} for "
                         f"rewards of shape {rewards.shape}.")
    return out, flags


def _component_torch(part, x, valid):
    """A component on ``x`` with torch: its own implementation, else its numpy kernel
    after a host round trip (the composed rule then has ``torch_masks=False``, so ``x`` is
    whole valid groups and ``valid`` is ``None``)."""
    import torch

    if part.rule.torch is not None:
        out = part.rule.torch(x, valid, **part.options)
        return out if part.rule.tail_fit else (out, None)
    out, flags = _component_numpy(part, np.ascontiguousarray(x.detach().cpu().double().numpy()))
    flags = None if flags is None else torch.from_numpy(flags).to(x.device)
    return torch.from_numpy(out).to(device=x.device, dtype=x.dtype), flags


def _weighted_sum_torch(x, valid, *, components):
    import torch

    total, tied = torch.zeros_like(x), None
    for part in components:
        out, flags = _component_torch(part, x, valid)
        total = total + part.weight * out
        if flags is not None:
            tied = flags if tied is None else tied | flags
    if any(part.rule.tail_fit for part in components):
        return total, tied
    return total


@register_rule(
    "weighted_sum", torch=_weighted_sum_torch, check_options=_weighted_sum_options,
    min_group_size=_min_group_size, derive=derived, label="Weighted sum",
    formula=r"A_i = \sum_k w_k\, A^{(k)}_i")
@checks_finite
def weighted_sum(rewards, *, components=(("mean_centred", 0.5), ("tea", 0.5))):
    r"""Weighted sum of registered rules: ``A = Σ_k w_k · A_k``, e.g. ``λ A_GRPO + (1−λ) A_TEA``.

    .. math::

        A_i = \sum_k w_k\, A^{(k)}_i,\qquad A^{(k)} = \mathrm{rule}_k(r;\ \mathrm{options}_k)

    Parameters
    ----------
    rewards : array_like, shape ``(m,)`` or ``(B, m)``
        Every component sees the same group; ``m`` must suit all of them.
    components : list, default ``[("mean_centred", 0.5), ("tea", 0.5)]``
        Each a mapping ``{"method": name, "weight": w, "options": {...}}`` (``options``
        optional) or a pair/triple ``(method, weight[, options])``; ``name`` any registered
        rule (a composed one too), ``w`` a finite number of any sign, not all zero.

    Returns
    -------
    ndarray, float64, same shape as ``rewards``

    Raises
    ------
    TypeError
        ``components`` not a list, a component of the wrong form or with an unknown key,
        an option its rule does not accept (the message names the component).
    ValueError
        An unknown rule name (with a "did you mean"), a non-finite weight, all weights
        zero, an empty list, a bad option value.

    Notes
    -----
    Its attributes come from the components (:func:`derived`): the properties all of them
    have (``monotone`` only with non-negative weights; a mix of a scale-equivariant rule
    such as ``tea`` and a scale-invariant one has no scale property), the largest of their
    minimum group sizes, ``torch_masks`` if all have it, tied-tail groups counted if any
    component fits a tail (a group counts once). Components work in their own units: TEA
    and ``mean_centred`` advantages are in reward units, ``grpo``'s in standard deviations,
    so a weight trades different scales unless the components share one.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext import advantages
    >>> r = np.random.default_rng(0).normal(size=(2, 16))
    >>> mix = [{"method": "grpo", "weight": 0.3}, {"method": "tea", "weight": 0.7,
    ...        "options": {"n_target": 64}}]
    >>> A = advantages(r, method="weighted_sum", components=mix)
    >>> expected = (0.3 * advantages(r, method="grpo")
    ...             + 0.7 * advantages(r, method="tea", n_target=64))
    >>> bool(np.allclose(A, expected))
    True
    """
    from .._baseline_kernels import add_weighted

    # Finiteness is checked by the components' kernels (every built-in one) and by the
    # accumulation, so the dispatcher makes no passes of its own over rewards and result.
    if not all(getattr(part.rule.numpy, "checks_finite", False) for part in components):
        finite = np.isfinite(rewards).all(axis=1)
        if not finite.all():
            from .._kernels import BAD_INPUT

            raise NonFiniteRows(np.where(finite, 0, BAD_INPUT).astype(np.uint8))
    total = np.zeros_like(rewards)
    status = np.zeros(rewards.shape[0], dtype=np.uint8)
    tied = np.zeros(rewards.shape[0], dtype=bool)
    for part in components:
        out, flags = _component_numpy(part, rewards)
        add_weighted(total, out, float(part.weight), status)
        if flags is not None:
            tied |= flags
    check_status(status)
    if any(part.rule.tail_fit for part in components):
        return total, tied
    return total


def plain_options(options: Mapping) -> dict:
    """``options`` as plain data: every :class:`Component` back to a mapping, containers
    (OmegaConf's too) to ``dict`` and ``list``, recursively.

    ``{"components": (Component('tea', 0.5, {...}),)}`` → ``{"components": [{"method":
    "tea", "weight": 0.5, "options": {...}}]}``: what a config file holds, for comparing,
    showing and pickling the options of a composed rule.
    """
    def plain(value):
        if isinstance(value, Component):
            return {"method": value.method, "weight": value.weight,
                    "options": plain(value.options)}
        if isinstance(value, Mapping):
            return {str(key): plain(item) for key, item in value.items()}
        if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            return [plain(item) for item in value]
        return value

    return plain(dict(options))
