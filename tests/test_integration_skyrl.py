"""tailext rules registered in the real SkyRL (skyrl 0.1.0, pinned in requirements-skyrl.txt).

Every call goes through SkyRL's own registry and call site
(``ppo_utils.compute_advantages_and_returns`` with the arguments SkyRL's trainer passes); the
Ray test runs it in a Ray worker that receives the estimators through SkyRL's registry actor.
skyrl 0.4.0 (Python >= 3.12) has the same registry code as 0.1.0 apart from its extra
built-in ``maxrl`` (see docs/integrations/skyrl.md).
"""

import os
import sys
import warnings

import numpy as np
import pytest

import tailext

ppo_utils = pytest.importorskip(
    "skyrl.backends.skyrl_train.utils.ppo_utils",
    reason="skyrl not installed (pip install -r requirements-skyrl.txt, then "
           "pip install --no-deps skyrl==0.1.0 skyrl-gym==0.4.0)")
torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray")
cloudpickle = pytest.importorskip("cloudpickle")
from skyrl.train.config import AlgorithmConfig  # noqa: E402

from tailext.integrations.skyrl import (  # noqa: E402
    TailextEstimator, estimator_name, register, register_variant)
from tailext.rules import registry as tailext_registry  # noqa: E402

pytestmark = pytest.mark.integration

REGISTRY = ppo_utils.AdvantageEstimatorRegistry
BUILTIN = {member.value for member in ppo_utils.AdvantageEstimator}
MIX = {"components": [{"method": "grpo", "weight": 0.3},
                      {"method": "tea", "weight": 0.7, "options": {"n_target": 64}}]}
# float32 scores against the float64 numpy rule: relative to the group's advantage scale.
RTOL = 1e-5


def _only_skyrl_builtins():
    for name in set(REGISTRY.list_available()) - BUILTIN:
        REGISTRY.unregister(name)


@pytest.fixture(autouse=True)
def skyrl_registry():
    """Each test starts from SkyRL's built-in estimators alone (its registry is global:
    docs/integrations/skyrl.md, run by tests/test_docs.py, registers too)."""
    _only_skyrl_builtins()
    yield
    _only_skyrl_builtins()


def skyrl_batch(sizes, *, pad=0, response_length=6, seed=0):
    """A batch as SkyRL's trainer hands it to the estimator: rollouts of len(sizes) prompts
    in shuffled order, the reward on the last response token, ``uids`` a list of str; then
    ``pad`` padding rows as 0.1.0's ``RayPPOTrainer.pad_batch`` makes them (copies of the
    first rows under ids ``pad0, pad1, ...``; 0.4.0 copies row 0): groups of one whose
    response mask is not zero. Returns (token_level_rewards, response_mask, uids, scores)."""
    rng = np.random.default_rng(seed)
    uids = np.concatenate([[f"prompt-{g}"] * size for g, size in enumerate(sizes)])
    uids = uids[rng.permutation(len(uids))].tolist()
    scores = rng.normal(size=len(uids)).astype(np.float32)
    lengths = rng.integers(1, response_length + 1, size=len(uids))
    mask = (np.arange(response_length)[None, :] < lengths[:, None]).astype(np.int64)
    rewards = np.zeros((len(uids), response_length), dtype=np.float32)
    rewards[np.arange(len(uids)), lengths - 1] = scores
    rewards, mask = np.concatenate([rewards, rewards[:pad]]), np.concatenate([mask, mask[:pad]])
    uids = uids + [f"pad{i}" for i in range(pad)]
    scores = np.concatenate([scores, scores[:pad]])
    return torch.from_numpy(rewards), torch.from_numpy(mask), uids, scores.astype(np.float64)


def skyrl_call(name, rewards, mask, uids):
    """SkyRL's call site with the arguments its trainer passes (trainer.py, 0.1.0 and 0.4.0)."""
    config = AlgorithmConfig(advantage_estimator=name)
    return ppo_utils.compute_advantages_and_returns(
        token_level_rewards=rewards, response_mask=mask, index=uids, adv_estimator=name,
        config=config, values=None, gamma=config.gamma, lambd=config.lambd,
        grpo_norm_by_std=config.grpo_norm_by_std)


def numpy_grouped(scores, uids, method, **options):
    """The numpy rule group by group; groups too small for it get 0 (small_groups='zero')."""
    uids = np.asarray(uids)
    out = np.zeros_like(scores)
    minimum = tailext.get_rule(method).min_group_size(
        **tailext.get_rule(method).resolve(options))
    for uid in np.unique(uids):
        rows = np.flatnonzero(uids == uid)
        if len(rows) >= minimum:
            out[rows] = tailext.advantages(scores[rows], method=method, **options)
    return out


def assert_skyrl_output(advantages, returns, mask, expected):
    assert torch.equal(advantages, returns) and not advantages.requires_grad
    per_sample = advantages[:, 0]  # the first response token is valid in every row
    assert torch.equal(advantages, per_sample[:, None] * mask)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(per_sample.double().numpy(), expected, rtol=0, atol=RTOL * scale)


# --- registration ----------------------------------------------------------------------------

def test_register_names_keep_skyrl_builtins_and_are_idempotent():
    assert {"grpo", "rloo", "gae", "reinforce++"} <= BUILTIN
    assert set(REGISTRY.list_available()) == BUILTIN
    names = register()
    assert set(names) == set(tailext.available_methods())
    for method, name in names.items():
        assert name == (f"tailext_{method}" if method in BUILTIN else method)
        assert estimator_name(method) == name
    assert names["tea"] == "tea" and names["grpo"] == "tailext_grpo"
    assert names["weighted_sum"] == "weighted_sum"
    assert REGISTRY.get("grpo") is ppo_utils.compute_grpo_outcome_advantage
    assert isinstance(REGISTRY.get("tailext_grpo"), TailextEstimator)
    held = {name: REGISTRY.get(name) for name in REGISTRY.list_available()}
    assert register() == names  # the same again: nothing changes
    assert {name: REGISTRY.get(name) for name in REGISTRY.list_available()} == held
    assert all(REGISTRY.get(name) is held[name] for name in held)
    # a copy as the registry actor hands it to a worker equals the original (so a worker
    # that registers again changes nothing either), without the last call's counts
    mix = REGISTRY.get("weighted_sum")
    skyrl_call("weighted_sum", *skyrl_batch([8, 8])[:3])
    copy = cloudpickle.loads(cloudpickle.dumps(mix))
    assert copy == mix and copy is not mix and mix.last_info is not None
    assert copy.last_info is None


def test_register_refuses_foreign_estimators_and_changed_options():
    def foreign(token_level_rewards, response_mask, index, **kwargs):
        return token_level_rewards, token_level_rewards

    REGISTRY.register("tea", foreign)
    with pytest.raises(ValueError, match="SkyRL already has an advantage estimator named "
                                         "'tea' .*foreign.*tailext will not replace it"):
        register()
    assert "prefix_tea" not in REGISTRY.list_available()  # all or nothing
    REGISTRY.unregister("tea")
    register(["tea"])
    with pytest.raises(ValueError, match=r"'tea' is already TailextEstimator\('tea', \{\}\), "
                                         r"not TailextEstimator\('tea', \{'n_target': 64\}\)"
                                         r".*unregister\('tea'\)"):
        register(["tea"], options={"tea": {"n_target": 64}})
    register_variant("tea_n64", "tea", {"n_target": 64})
    assert register_variant("tea_n64", "tea", {"n_target": 64}) == "tea_n64"


@pytest.mark.parametrize("call, error, message", [
    (lambda: register(["tae"]), ValueError, r"unknown advantage method 'tae'. Did you mean "
                                            r"'tea'\?"),
    (lambda: register(["tea"], options={"tea": {"n_targt": 64}}), TypeError,
     r"method 'tea' got unknown option\(s\) 'n_targt'.*Did you mean 'n_target'\?"),
    (lambda: register(["tea"], options={"tae": {}}), ValueError,
     r"`options` has options for 'tae', which is not being registered.*Did you mean 'tea'\?"),
    (lambda: register(options=["tea"]), TypeError, r"`options` must map rule names"),
    (lambda: register(["tea"], options={"tea": 64}), TypeError,
     r"options of 'tea' must be a mapping"),
    (lambda: register(["tea"], options={"tea": {"tail_fraction": 1.5}}), ValueError,
     r"tail_fraction"),
    (lambda: register_variant("mix", "weighted_sum", {"components": [("gpro", 1.0)]}),
     ValueError, r"`components\[0\].method`: unknown advantage method 'gpro'"),
    (lambda: register_variant("grpo", "tea"), ValueError,
     r"`name` 'grpo' is a SkyRL built-in estimator"),
    (lambda: register_variant(" tea ", "tea"), ValueError, r"without surrounding spaces"),
    (lambda: register_variant(3, "tea"), TypeError, r"`name` must be a string, got 3"),
])
def test_bad_registrations_are_clear_errors_and_register_nothing(call, error, message):
    with pytest.raises(error, match=message):
        call()
    assert set(REGISTRY.list_available()) == BUILTIN


# --- numbers through SkyRL's call site (this process) ----------------------------------------

@pytest.mark.parametrize("method, options", [
    ("tea", {"n_target": 64}), ("prefix_tea", {"ordering": "given"}), ("grpo", {}), ("mean_centred", {}),
    ("weighted_sum", MIX)])
def test_estimator_gives_the_numpy_rule_and_zero_for_padding(method, options):
    name = register_variant(f"test_{method}", method, options)
    rewards, mask, uids, scores = skyrl_batch([16, 16, 13], pad=3, seed=1)
    before = rewards.clone(), mask.clone(), list(uids)
    expected = numpy_grouped(scores, uids, method, **options)
    rule = tailext.get_rule(method)
    # the 3 padding rows are groups of one: too small for every rule here but mean_centred
    # (whose group of one gets r - r = 0)
    small = 3 if rule.min_group_size(**rule.resolve(options)) > 1 else 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        advantages, returns = skyrl_call(name, rewards, mask, uids)
    assert any(issubclass(w.category, tailext.SmallGroupWarning) for w in caught) == bool(small)
    assert_skyrl_output(advantages, returns, mask, expected)
    assert not advantages[-3:].any()
    info = REGISTRY.get(name).last_info
    assert int(info.small_groups) == small and int(info.invalid) == 0
    assert torch.equal(rewards, before[0]) and torch.equal(mask, before[1]) and uids == before[2]


def test_step_wise_index_array_and_grpo_norm_by_std():
    names = register(["tea"])
    rewards, mask, uids, scores = skyrl_batch([8, 8], seed=2)
    index = np.array(uids)  # step-wise mode passes a numpy array of uids
    advantages, _ = ppo_utils.compute_advantages_and_returns(
        token_level_rewards=rewards, response_mask=mask, index=index,
        adv_estimator=names["tea"], config=AlgorithmConfig(), grpo_norm_by_std=True)
    assert_skyrl_output(advantages, advantages, mask, numpy_grouped(scores, uids, "tea"))
    with pytest.warns(UserWarning, match="grpo_norm_by_std=False does not apply"):
        ppo_utils.compute_advantages_and_returns(
            token_level_rewards=rewards, response_mask=mask, index=index,
            adv_estimator=names["tea"], config=AlgorithmConfig(), grpo_norm_by_std=False)


# --- the Ray registry actor: registered in the driver, computed in a worker ------------------

def test_registry_actor_gives_workers_the_estimators(monkeypatch):
    # a rule of the user's own, registered only in this (driver) process
    monkeypatch.setattr(tailext_registry, "_REGISTRY", dict(tailext_registry._REGISTRY))

    @tailext.register_rule("doubled_centred", replace=True)
    def doubled_centred(rewards):
        return 2.0 * (rewards - rewards.mean(axis=-1, keepdims=True))

    names = register(["tea", "grpo"], options={"tea": {"n_target": 64}})  # before Ray: local
    register_variant("grpo_tea", "weighted_sum", MIX)
    register_variant("mine", "doubled_centred")
    rewards, mask, uids, scores = skyrl_batch([16, 12, 16], pad=2, seed=3)
    wanted = {names["tea"]: ("tea", {"n_target": 64}), names["grpo"]: ("grpo", {}),
              "grpo_tea": ("weighted_sum", MIX), "mine": ("doubled_centred", {})}

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
    try:
        ppo_utils.sync_registries()  # what SkyRL's initialize_ray does after ray.init
        actor = ray.get_actor("advantage_estimator_registry")
        assert set(wanted) <= set(ray.get(actor.list_available.remote()))
        register_variant("late", "rloo")  # after ray.init: straight into the actor
        assert "late" in ray.get(actor.list_available.remote())

        @ray.remote
        def in_worker(names, rewards, mask, uids):
            # a fresh process: SkyRL's class-level registry holds only its built-ins until
            # get() syncs from the actor
            from skyrl.backends.skyrl_train.utils.ppo_utils import AdvantageEstimatorRegistry

            local = sorted(set(names) & set(AdvantageEstimatorRegistry._functions))
            results = {}
            for name in names:
                advantages, returns = skyrl_call(name, rewards, mask, uids)
                info = AdvantageEstimatorRegistry.get(name).last_info
                results[name] = (advantages, returns, int(info.small_groups))
            return os.getpid(), local, results

        pid, local, results = ray.get(in_worker.remote(sorted(wanted), rewards, mask, uids))
        REGISTRY.unregister("late")
        assert "late" not in ray.get(actor.list_available.remote())
    finally:
        ray.shutdown()
    assert pid != os.getpid() and local == []
    for name, (method, options) in wanted.items():
        advantages, returns, small = results[name]
        assert_skyrl_output(advantages, returns, mask,
                            numpy_grouped(scores, uids, method, **options))
        assert small == (2 if method != "doubled_centred" else 0)  # the two padding rows
