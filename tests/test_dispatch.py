"""The numpy entry point's fast paths: kernels that check finiteness, memoized options."""

from __future__ import annotations

import numpy as np
import pytest

import tailext
from tailext.rules import registry


@pytest.fixture(autouse=True)
def own_registry(monkeypatch):
    """Rules registered here stay here (other tests list every registered rule)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_memoized_options_still_reject_bad_types():
    r = np.random.default_rng(0).normal(size=(4, 16))
    tailext.advantages(r, method="grpo", eps=0.0)
    tailext.advantages(r, method="tea", scale_floor=1.0)
    with pytest.raises(TypeError, match=r"`eps` must be a real number, got False"):
        tailext.advantages(r, method="grpo", eps=False)
    with pytest.raises(TypeError, match=r"`scale_floor` must be None or a real number, got "
                                        r"True"):
        tailext.advantages(r, method="tea", scale_floor=True)
    with pytest.raises(TypeError, match=r"`eps` must be a real number, got \[0\.0\]"):
        tailext.advantages(r, method="grpo", eps=[0.0])  # unhashable: validated, not cached


def test_a_replaced_rule_gets_its_own_options():
    r = np.arange(6.0)

    @tailext.register_rule("scaled_demo", replace=True)
    def first(rewards, *, factor=1.0):
        return factor * (rewards - rewards.mean(axis=1, keepdims=True))

    np.testing.assert_allclose(tailext.advantages(r, method="scaled_demo"), r - 2.5)

    @tailext.register_rule("scaled_demo", replace=True)
    def second(rewards, *, factor=2.0):
        return factor * (rewards - rewards.mean(axis=1, keepdims=True))

    np.testing.assert_allclose(tailext.advantages(r, method="scaled_demo"), 2 * (r - 2.5))


def test_defaults_changed_in_place_are_not_served_from_the_cache():
    """A rule's part of the option cache key is computed once per rule object, and again
    when its default options no longer equal the ones it was computed from."""
    r = np.arange(6.0)

    @tailext.register_rule("mutable_demo", replace=True)
    def scaled(rewards, *, factor=1.0):
        return factor * (rewards - rewards.mean(axis=1, keepdims=True))

    rule = tailext.get_rule("mutable_demo")
    np.testing.assert_allclose(tailext.advantages(r, method="mutable_demo"), r - 2.5)
    rule.options["factor"] = 3.0
    np.testing.assert_allclose(tailext.advantages(r, method="mutable_demo"), 3 * (r - 2.5))


@pytest.mark.parametrize("method", ["tea", "grpo", "bon_mean", "mean_centred"])
def test_strided_and_fortran_inputs_match_contiguous(method):
    base = np.random.default_rng(1).normal(size=(6, 64))
    want = tailext.advantages(base, method=method)
    wide = np.zeros((6, 128))
    wide[:, ::2] = base
    np.testing.assert_array_equal(tailext.advantages(wide[:, ::2], method=method), want)
    np.testing.assert_array_equal(tailext.advantages(np.asfortranarray(base), method=method),
                                  want)
    np.testing.assert_array_equal(tailext.advantages(base.tolist(), method=method), want)


def test_overflow_names_the_group_of_the_callers_batch():
    """With a mask, groups are packed by valid size; the error still names the batch row."""
    rewards = np.random.default_rng(2).normal(size=(4, 16))
    rewards[2] = -1.7e308
    rewards[2, 5] = 1.7e308  # r − r̄ ≈ 3.2e308: beyond the float64 range
    valid = np.ones(rewards.shape, dtype=bool)
    valid[0, :3] = False  # group 0 packs apart from groups 1–3
    with pytest.raises(ValueError, match=r"method 'mean_centred' gave a non-finite advantage "
                                         r"in group 2, whose rewards span \[-?\d"):
        tailext.advantages(rewards, method="mean_centred", valid=valid)
    with pytest.raises(ValueError, match=r"in group 2,"):
        tailext.advantages(rewards, method="tea")


def test_user_rules_still_get_finite_rewards_and_checked_results():
    seen = {}

    @tailext.register_rule("inverse_demo", replace=True)
    def inverse(rewards):
        seen["finite"] = bool(np.isfinite(rewards).all())
        return 1.0 / (rewards - rewards.max(axis=1, keepdims=True))

    with pytest.raises(ValueError, match=r"non-finite reward nan in rewards\[1\]"):
        tailext.advantages(np.array([0.0, np.nan, 1.0]), method="inverse_demo")
    assert "finite" not in seen  # the kernel never saw the NaN
    with pytest.raises(ValueError, match=r"method 'inverse_demo' gave a non-finite advantage "
                                         r"in group 0"), np.errstate(divide="ignore"):
        tailext.advantages(np.array([0.0, 1.0]), method="inverse_demo")
    assert seen["finite"]
