"""Composed rules (tailext.rules.compose): numbers, options, derived properties, conformance."""

import numpy as np
import pytest
from hypothesis import settings

import tailext
from tailext import advantages, get_rule, register_rule
from tailext.rules import registry
from tailext.rules.compose import Component, plain_options
from tailext.testing import check_rule

# Examples per property, as in test_conformance.py (a quarter of the hypothesis profile).
EXAMPLES = max(5, settings().max_examples // 4)

MIX = [{"method": "grpo", "weight": 0.3},
       {"method": "tea", "weight": 0.7, "options": {"n_target": 64}}]


@pytest.fixture
def own_registry(monkeypatch):
    """Rules registered by a test stay out of the registry other tests see."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def centred(rewards):
    return rewards - rewards.mean(axis=-1, keepdims=True)


def _masked_centred_torch(x, valid):
    if valid is None:
        return x - x.mean(dim=1, keepdim=True)
    weights = valid.to(x.dtype)
    mean = (x * weights).sum(dim=1, keepdim=True) / weights.sum(dim=1, keepdim=True).clamp(min=1)
    return x - mean


def _z_exact(rewards):
    """z-score without ε (exactly scale-invariant); 0 for an all-equal group."""
    varies = np.ptp(rewards, axis=-1, keepdims=True) > 0
    return np.divide(centred(rewards), rewards.std(axis=-1, keepdims=True),
                     out=np.zeros_like(rewards), where=varies)


def register_test_rules():
    """Rules the built-ins lack: exactly scale-invariant; torch that handles masks; a wrong
    claim; no torch implementation."""
    register_rule("z_exact", min_group_size=2, replace=True, properties={
        "zero_sum", "shift_invariant", "scale_invariant", "permutation_equivariant",
        "monotone", "deterministic"})(_z_exact)
    register_rule("centred_masks", torch=_masked_centred_torch, torch_masks=True, replace=True,
                  properties={"zero_sum", "shift_invariant", "scale_equivariant",
                              "permutation_equivariant", "monotone",
                              "deterministic"})(centred)

    def claims_monotone(rewards):
        return -centred(rewards)  # decreasing in the reward: the claim is wrong

    register_rule("claims_monotone", replace=True,
                  properties={"zero_sum", "monotone", "deterministic"})(claims_monotone)
    register_rule("torch_no_masks", torch=lambda x, valid: x - x.mean(dim=1, keepdim=True),
                  replace=True, properties={"zero_sum", "deterministic"})(centred)
    register_rule("host_only", replace=True,
                  properties={"zero_sum", "shift_invariant", "scale_equivariant",
                              "deterministic"})(lambda rewards: 2.0 * centred(rewards))


# --- numbers -------------------------------------------------------------------------------

def test_weighted_sum_is_the_weighted_sum_of_its_components():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(5, 24))
    valid = rng.random((5, 24)) > 0.2
    got = advantages(rewards, method="weighted_sum", components=MIX, valid=valid)
    expected = (0.3 * advantages(rewards, method="grpo", valid=valid)
                + 0.7 * advantages(rewards, method="tea", n_target=64, valid=valid))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # the same rule twice with other options, a negative weight, and a nested sum
    nested = [("tea", 1.0, {"n_target": 16}), ("tea", -0.5, {"n_target": 256}),
              ("weighted_sum", 2.0, {"components": MIX})]
    got = advantages(rewards, method="weighted_sum", components=nested)
    expected = (advantages(rewards, method="tea", n_target=16)
                - 0.5 * advantages(rewards, method="tea", n_target=256)
                + 2.0 * (0.3 * advantages(rewards, method="grpo")
                         + 0.7 * advantages(rewards, method="tea", n_target=64)))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_default_components_and_the_rule_table_entry():
    rule = get_rule("weighted_sum")
    assert rule.options == {"components": (("mean_centred", 0.5), ("tea", 0.5))}
    rewards = np.random.default_rng(1).normal(size=(3, 16))
    np.testing.assert_allclose(
        advantages(rewards, method="weighted_sum"),
        0.5 * advantages(rewards, method="mean_centred") + 0.5 * advantages(rewards, method="tea"),
        rtol=0, atol=1e-12)


def test_torch_adapter_equals_numpy_with_masks_and_host_components(own_registry):
    torch = pytest.importorskip("torch")
    import tailext.torch as tt

    register_test_rules()
    rng = np.random.default_rng(2)
    rewards = rng.normal(size=(6, 20))
    valid = rng.random((6, 20)) > 0.25
    valid[0, 3:] = False  # a group below the minimum: 0 in both
    for components in (MIX, [("host_only", 1.0), ("grpo", 0.5)],
                       [("centred_masks", 1.0), ("centred_masks", 0.5)]):
        expected = advantages(rewards, method="weighted_sum", components=components,
                              valid=valid, small_groups="zero")
        scale = max(1.0, np.abs(expected).max())
        # float32: a few ulps of the advantages' scale per component
        for dtype, rtol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
            got = tt.advantages(torch.tensor(rewards, dtype=dtype), method="weighted_sum",
                                components=components, valid=torch.from_numpy(valid))
            assert got.dtype == dtype
            np.testing.assert_allclose(got.double().numpy(), expected, rtol=0,
                                       atol=rtol * scale)


def test_small_groups_follow_the_largest_component_minimum():
    rewards = np.arange(8.0).reshape(2, 4)  # tea needs 5 (tail_fraction 0.25), grpo 2
    assert get_rule("weighted_sum").min_group_size(**get_rule("weighted_sum").resolve(
        {"components": MIX})) == 5
    with pytest.raises(ValueError, match=r"4 valid rollout\(s\), too few for method "
                                         r"'weighted_sum'.*at least 5"):
        advantages(rewards, method="weighted_sum", components=MIX)
    with pytest.warns(tailext.SmallGroupWarning):
        result = advantages(rewards, method="weighted_sum", components=MIX,
                            small_groups="zero", return_info=True)
    assert result.small_groups == 2 and not result.advantages.any()


def test_tied_tails_are_counted_once_per_group_if_a_component_fits_a_tail():
    binary = np.array([[0.0] * 12 + [1.0] * 4, [0.0] * 8 + [1.0] * 8])
    with pytest.warns(tailext.DiscreteRewardWarning):
        result = advantages(binary, method="weighted_sum", return_info=True,
                            components=[("tea", 0.5), ("prefix_tea", 0.5)])
    assert result.discrete_groups == 2
    result = advantages(binary, method="weighted_sum", components=[("grpo", 1), ("rloo", 1)],
                        return_info=True)
    assert result.discrete_groups == 0 and not get_rule("weighted_sum").specialized(
        get_rule("weighted_sum").resolve({"components": [("grpo", 1)]})).tail_fit


def test_inputs_are_not_modified():
    rewards = np.random.default_rng(3).normal(size=(2, 16))
    before = rewards.copy()
    components = [["tea", 0.5, {"n_target": 32}]]
    advantages(rewards, method="weighted_sum", components=components)
    assert np.array_equal(rewards, before) and components == [["tea", 0.5, {"n_target": 32}]]


# --- options ---------------------------------------------------------------------------------

@pytest.mark.parametrize("components, error, message", [
    ([("gpro", 1.0)], ValueError,
     r"`components\[0\].method`: unknown advantage method 'gpro'. Did you mean 'grpo'\?"),
    ([{"method": "tea", "wieght": 1.0}], TypeError,
     r"`components\[0\]` has unknown key 'wieght'.*Did you mean 'weight'\?"),
    ([{"weight": 1.0}], TypeError, r"`components\[0\]` lacks 'method'"),
    ([("tea", float("nan"))], ValueError, r"`components\[0\].weight` must be finite, got nan"),
    ([("tea", True)], TypeError, r"`components\[0\].weight` must be a real number, got True"),
    ([("tea", "0.5")], TypeError, r"`components\[0\].weight` must be a real number, got '0.5'"),
    ([("grpo", 1.0), ("tea", 1.0, {"n_targt": 64})], TypeError,
     r"`components\[1\]` \('tea'\): method 'tea' got unknown option\(s\) 'n_targt'.*"
     r"Did you mean 'n_target'\?"),
    ([("tea", 1.0, {"tail_fraction": 2.0})], ValueError, r"`components\[0\]` \('tea'\):.*"
                                                          r"tail_fraction"),
    ([("tea", 1.0, 64)], TypeError, r"`components\[0\].options` must be a mapping"),
    ([("tea",)], TypeError, r"`components\[0\]` must be a mapping .* or a \(method, "
                            r"weight\[, options\]\) pair, got \('tea',\)"),
    ([], ValueError, r"`components` must name at least one rule"),
    ([("tea", 0.0), ("grpo", 0)], ValueError, r"only zero weights"),
    ("tea", TypeError, r"`components` must be a list of components"),
    ({"tea": 0.5}, TypeError, r"`components` must be a list of components"),
])
def test_bad_components_are_clear_errors(components, error, message):
    with pytest.raises(error, match=message):
        advantages(np.zeros((1, 16)), method="weighted_sum", components=components)


def test_resolved_components_resolve_again_and_turn_back_into_plain_data():
    rule = get_rule("weighted_sum")
    resolved = rule.resolve({"components": MIX})
    parts = resolved["components"]
    assert all(isinstance(part, Component) for part in parts)
    assert [part.method for part in parts] == ["grpo", "tea"]
    assert parts[1].options["n_target"] == 64 and parts[1].options["tail_fraction"] == 0.25
    assert rule.resolve(resolved) == resolved  # idempotent
    assert "Component('tea', weight=0.7, options={" in repr(parts)
    plain = plain_options(resolved)
    assert plain["components"][0] == {"method": "grpo", "weight": 0.3,
                                      "options": {"eps": 1e-6, "ddof": 1}}
    assert rule.resolve(plain) == resolved


def test_omegaconf_containers_and_yaml_dotlists_are_accepted():
    omegaconf = pytest.importorskip("omegaconf")
    # what a verl/Hydra command line or a YAML file gives the verl adapter
    config = omegaconf.OmegaConf.from_dotlist([
        "tailext.components=[{method: grpo, weight: 0.3}, "
        "{method: tea, weight: 0.7, options: {n_target: 64}}]"])
    rewards = np.random.default_rng(4).normal(size=(2, 16))
    np.testing.assert_array_equal(
        advantages(rewards, method="weighted_sum", components=config.tailext.components),
        advantages(rewards, method="weighted_sum", components=MIX))


# --- derived properties and their conformance -----------------------------------------------

COMMON = {"zero_sum", "shift_invariant", "permutation_equivariant", "deterministic"}


@pytest.mark.parametrize("components, properties", [
    # all scale-equivariant, non-negative weights: everything they share
    ([("mean_centred", 0.5), ("tea", 0.5)], COMMON | {"monotone", "scale_equivariant"}),
    # z-scored grpo (no scale property: its ε) with tea: no scale property at all
    ([("grpo", 0.5), ("tea", 0.5)], COMMON | {"monotone"}),
    # a negative weight: no monotonicity
    ([("mean_centred", 1.0), ("rloo", -2.0)], COMMON | {"scale_equivariant"}),
    # prefix_tea's random prefixes, fixed by a seed: not monotone, and a random component
    # (its draws depend on the batch) is not claimed deterministic
    ([("rloo", 1.0), ("prefix_tea", 1.0, {"seed": 0})],
     {"zero_sum", "shift_invariant", "scale_equivariant", "permutation_equivariant"}),
    # a random rule (given a seed) is not claimed deterministic, nor is the sum
    ([("chow_bon_rl", 0.5, {"seed": 3}), ("mean_centred", 0.5)],
     {"shift_invariant", "scale_equivariant"}),
    # exactly scale-invariant components
    ([("z_exact", 1.0), ("z_exact", 0.25)], COMMON | {"monotone", "scale_invariant"}),
    # scale-invariant + scale-equivariant: neither
    ([("z_exact", 1.0), ("mean_centred", 1.0)], COMMON | {"monotone"}),
])
def test_derived_properties_hold_and_are_what_check_rule_checks(components, properties,
                                                                own_registry):
    register_test_rules()
    rule = get_rule("weighted_sum")
    assert rule.specialized(rule.resolve({"components": components})).properties == properties
    report = check_rule("weighted_sum", options={"components": components},
                        max_examples=EXAMPLES)
    assert report.claimed == properties
    assert set(properties) <= set(report.results)
    assert report.ok, str(report)


def test_an_unseeded_random_component_keeps_only_zero_sum():
    # without a seed prefix_tea draws new prefixes on every call, so two calls (which every
    # conformance check but zero_sum compares) differ: only zero_sum is claimed
    rule = get_rule("weighted_sum")
    components = [("rloo", 1.0), ("prefix_tea", 1.0)]
    resolved = rule.resolve({"components": components})
    assert rule.specialized(resolved).properties == {"zero_sum"}
    rewards = np.random.default_rng(2).normal(size=(3, 32))
    A = advantages(rewards, method="weighted_sum", components=components)
    np.testing.assert_allclose(A.sum(axis=1), 0.0, atol=1e-12 * np.abs(A).max())
    assert not np.array_equal(A, advantages(rewards, method="weighted_sum",
                                            components=components))


def test_properties_a_composition_loses_are_detected_as_failing(own_registry):
    register_test_rules()
    mixed = check_rule("weighted_sum", properties=["scale_equivariant", "scale_invariant"],
                       options={"components": [("z_exact", 1.0), ("mean_centred", 1.0)]},
                       max_examples=EXAMPLES)
    assert mixed["scale_equivariant"].holds is False
    assert mixed["scale_invariant"].holds is False
    negative = check_rule("weighted_sum", properties=["monotone"], max_examples=EXAMPLES,
                          options={"components": [("mean_centred", 1.0), ("rloo", -2.0)]})
    assert negative["monotone"].holds is False


def test_a_wrong_claim_of_a_component_is_caught_through_the_composition(own_registry):
    register_test_rules()
    options = {"components": [("claims_monotone", 1.0), ("mean_centred", 0.5)]}
    report = check_rule("weighted_sum", options=options, max_examples=EXAMPLES)
    assert "monotone" in report.claimed
    assert report["monotone"].holds is False and not report.ok
    assert report["zero_sum"].holds is True


def test_derived_torch_masks_and_tail_fit(own_registry):
    register_test_rules()
    rule = get_rule("weighted_sum")

    def specialized(components):
        return rule.specialized(rule.resolve({"components": components}))

    assert specialized([("centred_masks", 1.0), ("centred_masks", 2.0)]).torch_masks
    assert specialized([("centred_masks", 1.0), ("grpo", 1.0)]).torch_masks
    assert not specialized([("centred_masks", 1.0), ("torch_no_masks", 1.0)]).torch_masks
    assert not specialized([("host_only", 1.0)]).torch_masks
    assert specialized([("grpo", 1.0), ("tea_raw", 1.0)]).tail_fit
    assert not specialized([("grpo", 1.0), ("rloo", 1.0)]).tail_fit


def test_check_rule_rejects_bad_options_of_a_composed_rule():
    with pytest.raises(ValueError, match="unknown advantage method 'gpro'"):
        check_rule("weighted_sum", options={"components": [("gpro", 1.0)]})


def test_derive_must_return_known_attributes(own_registry):
    with pytest.raises(ValueError, match=r"derive\(\) returned unknown attributes \['torch'\]"):
        register_rule("bad_derive", derive=lambda: {"torch": None})(centred)
    with pytest.raises(ValueError, match=r"derive\(\) returned unknown properties "
                                         r"\['monotonic'\].*Did you mean 'monotone'\?"):
        register_rule("bad_derive", derive=lambda: {"properties": {"monotonic"}})(centred)
    with pytest.raises(TypeError, match="`derive` must be None or a callable"):
        register_rule("bad_derive", derive=1)


# --- the trainer integrations take it by name and plain options ------------------------------

@pytest.mark.integration
def test_verl_estimator_reads_components_from_the_algorithm_config():
    core_algos = pytest.importorskip("verl.trainer.ppo.core_algos", reason="verl not installed")
    torch = pytest.importorskip("torch")
    from omegaconf import OmegaConf

    from tailext.integrations.verl import register

    names = register(["weighted_sum"])
    rng = np.random.default_rng(5)
    uids = np.array(["a"] * 16 + ["b"] * 12, dtype=object)
    scores = rng.normal(size=28).astype(np.float32)
    token_rewards = torch.zeros(28, 3)
    token_rewards[:, -1] = torch.from_numpy(scores)
    config = OmegaConf.from_dotlist([
        "adv_estimator=weighted_sum",
        "tailext.components=[{method: grpo, weight: 0.3}, "
        "{method: tea, weight: 0.7, options: {n_target: 64}}]"])
    got, _ = core_algos.get_adv_estimator_fn(names["weighted_sum"])(
        token_level_rewards=token_rewards, response_mask=torch.ones(28, 3), index=uids,
        config=config)
    for uid in ("a", "b"):
        rows = uids == uid
        expected = advantages(scores[rows].astype(np.float64), method="weighted_sum",
                              components=MIX)
        np.testing.assert_allclose(got[rows, 0].double().numpy(), expected, rtol=0,
                                   atol=1e-5 * max(1.0, np.abs(expected).max()))
