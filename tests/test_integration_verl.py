"""tailext rules registered in the real verl (pinned in requirements-integrations.txt).

Every check goes through verl's own registry (``get_adv_estimator_fn``) and, for the peer
rules, compares with verl's built-in estimators on the same batch.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import tailext

core_algos = pytest.importorskip(
    "verl.trainer.ppo.core_algos",
    reason="verl not installed (pip install -r requirements-integrations.txt)")
torch = pytest.importorskip("torch")
from omegaconf import OmegaConf  # noqa: E402  (a verl dependency)

from tailext.integrations.verl import CONFIG_KEY, estimator_name, register  # noqa: E402

pytestmark = pytest.mark.integration

# float32 scores against the float64 numpy rule: relative to the group's advantage scale.
RTOL = 1e-5


def grouped_batch(sizes, *, response_length=7, seed):
    """verl-style flat batch: rollouts of len(sizes) prompts, shuffled, reward on the last
    valid token, uid strings as index. Returns (token_level_rewards, mask, index, scores)."""
    rng = np.random.default_rng(seed)
    uids = np.concatenate([[f"prompt-{g}"] * size for g, size in enumerate(sizes)])
    order = rng.permutation(len(uids))
    uids = uids[order].astype(object)
    scores = rng.normal(size=len(uids)).astype(np.float32)
    lengths = rng.integers(1, response_length + 1, size=len(uids))
    mask = np.arange(response_length)[None, :] < lengths[:, None]
    token_rewards = np.zeros((len(uids), response_length), dtype=np.float32)
    token_rewards[np.arange(len(uids)), lengths - 1] = scores
    return (torch.from_numpy(token_rewards), torch.from_numpy(mask.astype(np.int64)), uids,
            scores.astype(np.float64))


def numpy_grouped(scores, uids, method, **options):
    """tailext's numpy rule applied group by group (rollout order kept within a group)."""
    out = np.empty_like(scores)
    for uid in np.unique(uids):
        rows = np.flatnonzero(uids == uid)
        out[rows] = tailext.advantages(scores[rows], method=method, **options)
    return out


def assert_close_per_group(actual, expected, uids):
    for uid in np.unique(uids):
        rows = np.flatnonzero(uids == uid)
        scale = max(np.abs(expected[rows]).max(), 1.0)
        np.testing.assert_allclose(actual[rows], expected[rows], rtol=0, atol=RTOL * scale,
                                   err_msg=f"group {uid}")


def run_estimator(name, token_rewards, mask, uids, config):
    advantages, returns = core_algos.get_adv_estimator_fn(name)(
        token_level_rewards=token_rewards, response_mask=mask, index=uids, config=config)
    assert advantages.shape == token_rewards.shape
    assert torch.equal(advantages, returns)
    assert not advantages.requires_grad
    # broadcast over the valid tokens, zero on padding
    per_sample = advantages[:, 0]  # the first token is valid in every response
    assert torch.equal(advantages, per_sample[:, None] * mask)
    return per_sample.double().numpy()


def test_register_names_and_idempotence():
    names = register()
    assert set(names) == set(tailext.available_methods())
    assert names["tea"] == "tea" and names["prefix_tea"] == "prefix_tea"
    # verl 0.9 has built-in `grpo` and `rloo`: ours get the prefix, verl's stay in place
    builtin = {member.value for member in core_algos.AdvantageEstimator}
    for method, name in names.items():
        assert name == (f"tailext_{method}" if method in builtin else method)
    assert core_algos.get_adv_estimator_fn("grpo") is core_algos.compute_grpo_outcome_advantage
    before = dict(core_algos.ADV_ESTIMATOR_REGISTRY)
    assert register() == names
    assert core_algos.ADV_ESTIMATOR_REGISTRY == before
    assert core_algos.get_adv_estimator_fn("tea").__name__ == "tailext_tea_estimator"


def test_register_refuses_to_replace_a_foreign_estimator():
    name = estimator_name("tea_raw")
    register(["tea_raw"])
    mine = core_algos.ADV_ESTIMATOR_REGISTRY.pop(name)
    try:
        core_algos.ADV_ESTIMATOR_REGISTRY[name] = lambda **kwargs: None
        with pytest.raises(ValueError, match="already has an advantage estimator named"):
            register(["tea_raw"])
    finally:
        core_algos.ADV_ESTIMATOR_REGISTRY[name] = mine


@pytest.mark.parametrize("method, options", [
    ("tea", {}),
    ("tea", {"tail_fraction": 0.5, "n_target": 64}),
    ("prefix_tea", {"n_target": 32, "ordering": "given"}),  # "random" draws per call
    ("tea_raw", {}),
])
def test_verl_registry_gives_tailext_numbers_on_unequal_groups(method, options):
    names = register()
    token_rewards, mask, uids, scores = grouped_batch([16, 24, 16, 32, 20], seed=11)
    config = OmegaConf.create({"adv_estimator": names[method], CONFIG_KEY: options})
    got = run_estimator(names[method], token_rewards, mask, uids, config)
    assert_close_per_group(got, numpy_grouped(scores, uids, method, **options), uids)


def test_verl_algo_config_without_options_uses_rule_defaults():
    from verl.trainer.config import AlgoConfig

    register()
    token_rewards, mask, uids, scores = grouped_batch([16, 16, 16], seed=3)
    got = run_estimator("tea", token_rewards, mask, uids, AlgoConfig(adv_estimator="tea"))
    assert_close_per_group(got, numpy_grouped(scores, uids, "tea"), uids)


def test_grpo_with_its_defaults_equals_verl_grpo():
    # verl's grpo: (r - mean) / (torch.std + 1e-6), torch.std being the sample std (ddof=1);
    # tailext's grpo has the same defaults.
    names = register()
    token_rewards, mask, uids, _ = grouped_batch([8, 5, 16, 2], seed=5)
    ours = run_estimator(names["grpo"], token_rewards, mask, uids, None)
    verl_adv, _ = core_algos.compute_grpo_outcome_advantage(
        token_rewards.clone(), mask, uids, epsilon=1e-6, norm_adv_by_std_in_grpo=True)
    theirs = verl_adv[:, 0].double().numpy()
    assert_close_per_group(ours, theirs, uids)


def test_grpo_group_of_one_convention():
    # A group of one: verl's grpo gives r / (1 + eps) (mean 0, std 1); tailext's grpo (sample
    # std, needs m >= 2) and mean_centred give it 0 (no baseline, no signal), with a warning.
    names = register()
    token_rewards, mask, uids, scores = grouped_batch([1, 4], seed=8)
    single = np.flatnonzero(uids == "prompt-0")
    verl_adv, _ = core_algos.compute_grpo_outcome_advantage(token_rewards.clone(), mask, uids)
    verl_single = verl_adv[single, 0].double().numpy()
    np.testing.assert_allclose(verl_single, scores[single] / (1 + 1e-6), rtol=1e-6)
    with pytest.warns(tailext.SmallGroupWarning, match="fewer than 2 valid rollouts"):
        ours = run_estimator(names["grpo"], token_rewards, mask, uids, None)
    assert ours[single].tolist() == [0.0]
    ours = run_estimator(names["mean_centred"], token_rewards, mask, uids, None)
    assert ours[single].tolist() == [0.0]


@pytest.mark.parametrize("normalize", [True, False])
def test_bon_max_second_equals_verl_grpo_passk(normalize):
    names = register()
    token_rewards, mask, uids, _ = grouped_batch([8, 5, 16, 2, 8], seed=21)
    ours = run_estimator(names["bon_max_second"], token_rewards, mask, uids,
                         OmegaConf.create({CONFIG_KEY: {"normalize": normalize, "eps": 1e-6}}))
    verl_adv, _ = core_algos.compute_grpo_passk_outcome_advantage(
        token_rewards.clone(), mask, uids, epsilon=1e-6,
        config=OmegaConf.create({"norm_adv_by_std_in_grpo": normalize}))
    theirs = verl_adv[:, 0].double().numpy()
    assert_close_per_group(ours, theirs, uids)
    assert np.count_nonzero(ours) == len(np.unique(uids))  # one winner per group


def test_bad_config_and_missing_index_are_clear_errors():
    names = register()
    token_rewards, mask, uids, _ = grouped_batch([4, 4], seed=1)
    estimator = core_algos.get_adv_estimator_fn(names["tea"])
    with pytest.raises(TypeError, match="unknown option"):
        estimator(token_rewards, mask, uids, OmegaConf.create({CONFIG_KEY: {"k": 2}}))
    with pytest.raises(TypeError, match="must be a mapping"):
        estimator(token_rewards, mask, uids, OmegaConf.create({CONFIG_KEY: 0.25}))
    with pytest.raises(ValueError, match="needs the group index"):
        estimator(token_rewards, mask, None, None)
    with pytest.raises(ValueError, match="unknown advantage method"):
        register(["no_such_rule"])


def test_inputs_are_not_modified():
    names = register()
    token_rewards, mask, uids, _ = grouped_batch([8, 8], seed=2)
    copies = token_rewards.clone(), mask.clone(), uids.copy()
    run_estimator(names["tea"], token_rewards, mask, uids, None)
    assert torch.equal(token_rewards, copies[0]) and torch.equal(mask, copies[1])
    assert (uids == copies[2]).all()


def test_verl_imports_the_plugin_in_a_fresh_process():
    # What a verl Ray worker does: import verl with the plugin module named in the
    # environment (the installed `verl.plugins` entry point takes the same path).
    env = dict(os.environ, VERL_USE_EXTERNAL_MODULES="tailext.integrations.verl_plugin",
               PYTHONPATH=os.pathsep.join(sys.path))
    code = ("from verl.trainer.ppo.core_algos import get_adv_estimator_fn as get\n"
            "print(get('tea').__name__, get('tailext_grpo').__name__)")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["tailext_tea_estimator", "tailext_grpo_estimator"]
