"""tailext rules registered in the real verl 0.9.1 (pins in requirements-integrations.txt).

Every check goes through verl's own code: its registry (``get_adv_estimator_fn``), the
trainer-side ``compute_advantage`` (legacy trainer) and ``compute_advantage_for_multi_trajectories``
(the default v1 trainer) on a ``DataProto`` with the rows verl's trainers produce, verl's
padding template, its validation metrics and trainer registry, and ``import verl`` in a fresh
process for the plugin. Peer rules are compared with verl's built-in estimators.
"""

import logging
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

import tailext

core_algos = pytest.importorskip(
    "verl.trainer.ppo.core_algos",
    reason="verl not installed (pip install -r requirements-integrations.txt)")
torch = pytest.importorskip("torch")
from omegaconf import OmegaConf  # noqa: E402  (a verl dependency)

from tailext.integrations.verl import (CONFIG_KEY, COUNT_KEYS, consume_counts,  # noqa: E402
                                       estimator_name, register, unbiased_val_metrics)

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


def test_rloo_equals_verl_rloo():
    # verl's rloo: r_i − mean of the other rollouts of the group; tailext's rloo is the same
    # rule. A group of one: verl gives it its raw reward (no baseline); tailext gives 0 (too
    # small for a leave-one-out baseline: counted and warned).
    names = register()
    token_rewards, mask, uids, _ = grouped_batch([8, 5, 16, 2, 1], seed=17)
    with pytest.warns(tailext.SmallGroupWarning):
        ours = run_estimator(names["rloo"], token_rewards, mask, uids, None)
    verl_adv, _ = core_algos.compute_rloo_outcome_advantage(token_rewards.clone(), mask, uids)
    theirs = verl_adv[:, 0].double().numpy()
    single = uids == "prompt-4"
    assert_close_per_group(ours[~single], theirs[~single], uids[~single])
    scores = token_rewards.sum(dim=-1).double().numpy()
    assert ours[single].tolist() == [0.0] and theirs[single].tolist() == scores[single].tolist()


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


# --- the trainer-side path: DataProto -> compute_advantage -------------------------------

def padding_rows(count, response_length):
    """The v1 trainer's synthetic padding group (verl.trainer.ppo.padding_utils): ``count``
    rows built from verl's own template, all with one fresh uid ``pad<hex>``, right-padded
    to ``response_length`` as ``to_padded_tensor`` does. → (rm_scores, response_mask, uid)."""
    from verl.trainer.ppo.padding_utils import construct_minimal_padding_template

    source = {"prompts": torch.arange(5), "responses": torch.arange(response_length),
              "input_ids": torch.arange(5 + response_length),
              "attention_mask": torch.ones(5 + response_length, dtype=torch.int64),
              "response_mask": torch.ones(response_length, dtype=torch.int64),
              "rm_scores": torch.ones(response_length), "uid": "prompt-0"}
    template, tag = construct_minimal_padding_template(source, {"seq_len": 5 + response_length},
                                                       eos_token_id=2)
    assert tag["is_padding"] and template["response_mask"].tolist() == [0]
    pad = response_length - len(template["response_mask"])
    scores = torch.nn.functional.pad(template["rm_scores"], (0, pad)).repeat(count, 1)
    mask = torch.nn.functional.pad(template["response_mask"], (0, pad)).repeat(count, 1)
    return scores, mask.to(torch.int64), f"pad{uuid.uuid4().hex}"


def trainer_batch(sizes, *, empty=0, pad_rows=0, response_length=6, seed):
    """A DataProto as verl's trainers hand it to compute_advantage: groups of ``sizes`` rows
    (shuffled; ``empty`` rows of the first group have an all-zero response mask, as empty
    responses) and a padding group of ``pad_rows``. → (data, batch_keys, scores, valid, uids)."""
    from verl import DataProto

    token_rewards, mask, uids, scores = grouped_batch(sizes, response_length=response_length,
                                                      seed=seed)
    empty_rows = np.flatnonzero(uids == "prompt-0")[:empty]
    mask[empty_rows] = 0
    token_rewards[empty_rows] = 0.0
    scores[empty_rows] = 0.0
    if pad_rows:
        pad_scores, pad_mask, pad_uid = padding_rows(pad_rows, response_length)
        token_rewards = torch.cat([token_rewards, pad_scores])
        mask = torch.cat([mask, pad_mask])
        uids = np.concatenate([uids, np.array([pad_uid] * pad_rows, dtype=object)])
        scores = np.concatenate([scores, np.zeros(pad_rows)])
    data = DataProto.from_dict(tensors={"token_level_rewards": token_rewards,
                                        "response_mask": mask},
                               non_tensors={"uid": uids})
    keys = [f"{uid}_{row}_0" for row, uid in enumerate(uids)]  # v1: {uid}_{session}_{index}
    return data, keys, scores, mask.numpy().any(axis=1), uids


def expected_advantages(scores, valid, uids, method, options):
    """tailext's numpy rule per group, invalid rows left out, small groups 0 → (A, counts)."""
    out = np.zeros_like(scores)
    small = 0
    minimum = tailext.get_rule(method).min_group_size(
        **tailext.get_rule(method).resolve(options))
    for uid in dict.fromkeys(uids):
        rows = np.flatnonzero(uids == uid)
        small += 0 < valid[rows].sum() < minimum
        if valid[rows].any():
            out[rows] = tailext.advantages(scores[rows], method=method, valid=valid[rows],
                                           small_groups="zero", **options)
    return out, small


def compute_through(entry, data, keys, name, options):
    from verl.trainer.ppo.ray_trainer import compute_advantage
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    config = OmegaConf.create({"adv_estimator": name, CONFIG_KEY: options})
    if entry == "legacy":
        return compute_advantage(data, adv_estimator=name, config=config)
    return compute_advantage_for_multi_trajectories(data, batch_keys=keys, adv_estimator=name,
                                                    config=config)


DATAPROTO_SIZES = [16, 16, 12, 1, 2, 3, 4]   # a shrunk group and groups of 1-4 rows
EMPTY_ROWS = 2                                 # empty responses in the first group of 16
# prefix_tea in the order given, so that it can be compared with the numpy rule group by
# group (its default ordering="random" draws one order per batch from its seed)
OPTIONS_OF = {"tea": {"n_target": 64}, "prefix_tea": {"n_target": 64, "ordering": "given"},
              "bon_mean": {"k": 4}, "cat_bon": {"n_target": 8}}


@pytest.mark.parametrize("entry", ["legacy", "v1"])
@pytest.mark.parametrize("method", tailext.available_methods())
def test_trainer_compute_advantage_on_padded_and_shrunk_groups(entry, method):
    names = register()
    options = OPTIONS_OF.get(method, {})
    data, keys, scores, valid, uids = trainer_batch(DATAPROTO_SIZES, empty=EMPTY_ROWS,
                                                    pad_rows=3, seed=31)
    rewards_before = data.batch["token_level_rewards"].clone()
    consume_counts()
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tailext.SmallGroupWarning)
            out = compute_through(entry, data, keys, names[method], options)
    advantages, returns = out.batch["advantages"], out.batch["returns"]
    mask = out.batch["response_mask"]
    assert torch.equal(advantages, returns)
    assert torch.equal(out.batch["token_level_rewards"], rewards_before)
    assert torch.equal(advantages, advantages[:, :1] * mask) or not valid.all()
    per_row = (advantages.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).double().numpy()
    assert np.all(per_row[~valid] == 0.0)  # padding rows and empty responses
    assert torch.count_nonzero(advantages[~torch.from_numpy(valid)]) == 0
    expected, small = expected_advantages(scores, valid, uids, method, options)
    counts = consume_counts()
    assert counts["tailext/invalid_rollouts"] == EMPTY_ROWS + 3
    assert counts["tailext/small_groups"] == small
    rule = tailext.get_rule(method)
    if rule.min_group_size(**rule.resolve(options)) > 1:
        assert small >= 1  # the group of 1 row at least
    if "seed" not in rule.options or options.get("ordering") == "given":  # else random
        assert_close_per_group(per_row, expected, uids)


def length_sorted(method, options, sizes, seed):
    """Advantages per row of a batch as given and after verl's length sort (the legacy
    trainer's _balance_batch orders rows by sequence length; DataProto.reorder is in place),
    the second in the first's row order → (before, after)."""
    names = register()
    data, keys, _, _, _ = trainer_batch(sizes, seed=seed)
    # The same training step twice, the second with the rows reordered: each through a fresh
    # estimator, so that a seeded rule's stream starts from its seed both times (the
    # registered estimator continues its stream from step to step).
    from tailext.integrations.verl import _make_estimator

    registered = core_algos.ADV_ESTIMATOR_REGISTRY[names[method]]
    try:
        core_algos.ADV_ESTIMATOR_REGISTRY[names[method]] = _make_estimator(method)
        before = compute_through("legacy", data, keys, names[method], options)
        first = before.batch["advantages"][:, 0].clone()
        order = torch.argsort(data.batch["response_mask"].sum(dim=1), stable=True)
        data.reorder(order)
        core_algos.ADV_ESTIMATOR_REGISTRY[names[method]] = _make_estimator(method)
        after = compute_through("legacy", data, keys, names[method], options)
    finally:
        core_algos.ADV_ESTIMATOR_REGISTRY[names[method]] = registered
    restored = torch.empty_like(first)
    restored[order] = after.batch["advantages"][:, 0]
    return first.numpy(), restored.numpy()


def test_length_sorted_rows_give_the_same_advantages_for_order_free_rules():
    # Every rule that claims permutation equivariance (a random rule: for a fixed seed)
    # gives each row the same advantage when verl sorts the rows by length. One group per
    # size, so that the sort cannot change which group comes first among equal sizes.
    equivariant = [m for m in tailext.available_methods()
                   if "permutation_equivariant" in tailext.get_rule(m).properties]
    assert {"tea", "grpo", "rloo", "maxk_loo1", "prefix_tea"} <= set(equivariant)
    for method in equivariant:
        options = {key: value for key, value in OPTIONS_OF.get(method, {}).items()
                   if key != "ordering"}
        if "seed" in tailext.get_rule(method).options:
            options["seed"] = 0
        before, after = length_sorted(method, options, [32, 16, 24], seed=40)
        # float32 sums in another order: agreement to float32 rounding of the group's scale
        np.testing.assert_allclose(after, before, rtol=0,
                                   atol=RTOL * max(np.abs(before).max(), 1.0), err_msg=method)


def test_length_sorted_rows_leave_prefix_tea_unchanged():
    # prefix_tea's default ordering="random" arranges each group in a random order keyed on
    # its rewards' ranks: the order verl hands the rows in does not matter (verl's length
    # sorting changed the given-order rule by up to 13.8). With seed=None each call draws
    # anew; a fixed seed makes it reproducible.
    before, after = length_sorted("prefix_tea", {"seed": 0}, [32, 24], seed=41)
    np.testing.assert_allclose(after, before, rtol=0, atol=RTOL * np.abs(before).max())
    given = length_sorted("prefix_tea", {"ordering": "given"}, [32, 24], seed=41)
    assert np.abs(given[1] - given[0]).max() > 0.1  # the given-order rule does change


def test_length_sorted_rows_leave_seeded_prefix_tea_unchanged_across_groups():
    before, after = length_sorted("prefix_tea", {"seed": 0}, [32, 32], seed=41)
    np.testing.assert_allclose(after, before, rtol=0, atol=RTOL * np.abs(before).max())


def test_counts_are_logged_warning_first_then_info(caplog):
    names = register()
    consume_counts()
    from tailext.integrations import verl as adapter

    adapter._STATE["logged"] = False
    token_rewards, mask, uids, _ = grouped_batch([8, 3], seed=12)
    caplog.set_level(logging.INFO, logger="tailext.integrations.verl")
    with pytest.warns(tailext.SmallGroupWarning):
        for _ in range(2):
            run_estimator(names["tea"], token_rewards, mask, uids, None)
    records = [r for r in caplog.records if r.name == "tailext.integrations.verl"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO]
    assert "'tailext_tea_estimator': 1 group(s) with fewer valid rows" in records[0].message
    assert consume_counts() == dict(zip(COUNT_KEYS, (2, 0, 0)))
    assert consume_counts() == {}  # nothing ran since


# --- validation metrics --------------------------------------------------------------

def test_unbiased_val_metrics_against_verls_bootstrap():
    # One correct answer in four: verl's best@4/mean (bootstrap with replacement) is 0.687;
    # the unbiased pass@4 of those four samples is 1, best@2 is 1/2 (verl: 0.453).
    from verl.trainer.ppo.metric_utils import process_validation_metrics

    rewards = [1.0, 0.0, 0.0, 0.0]
    theirs = process_validation_metrics(["ds"] * 4, ["p"] * 4, {"reward": rewards})
    assert theirs["ds"]["reward"]["best@4/mean"] == pytest.approx(0.687, abs=5e-4)
    assert theirs["ds"]["reward"]["best@2/mean"] == pytest.approx(0.453, abs=5e-4)
    ours = unbiased_val_metrics(["ds"] * 4, ["p"] * 4, {"reward": rewards})
    assert ours == {"val-aux/ds/reward/best@2/unbiased": 0.5, "val-aux/ds/reward/pass@2": 0.5,
                    "val-core/ds/reward/best@4/unbiased": 1.0, "val-core/ds/reward/pass@4": 1.0}


def test_unbiased_val_metrics_several_sources_variables_and_missing_values():
    rng = np.random.default_rng(5)
    reward = rng.normal(size=16)
    acc = (rng.random(16) < 0.3).astype(float)
    sources = ["gsm"] * 8 + ["math"] * 8
    uids = [f"u{i // 4}" for i in range(16)]
    infos = {"reward": list(reward), "acc": [None] + list(acc[1:]), "pred": ["x"] * 16}
    got = unbiased_val_metrics(sources, uids, infos)
    pools = {uid: [r for r, u in zip(reward, uids) if u == uid] for uid in dict.fromkeys(uids)}
    gsm = tailext.evaluation.best_of_n(np.array([pools["u0"], pools["u1"]]), [2, 4]).mean
    assert got["val-aux/gsm/reward/best@2/unbiased"] == pytest.approx(gsm[0])
    assert got["val-aux/gsm/reward/best@4/unbiased"] == pytest.approx(gsm[1])  # acc is core
    # acc of gsm/u0 has 3 values (one None): best@4 averages the other prompt only
    u1 = acc[4:8]
    assert got["val-core/gsm/acc/pass@4"] == pytest.approx(float(u1.max()))
    assert "val-aux/gsm/reward/pass@2" not in got and not any("pred" in k for k in got)
    assert {k.split("/")[1] for k in got} == {"gsm", "math"}


def test_tailext_sync_trainer_adds_unbiased_metrics_and_runs_as_sync():
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer
    from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls

    from tailext.integrations.verl_trainer import TailextMetrics, TailextPPOTrainerSync

    assert get_trainer_cls("tailext_sync") is TailextPPOTrainerSync
    assert issubclass(TailextPPOTrainerSync, PPOTrainerSync)
    legacy = type("TailextRayPPOTrainer", (TailextMetrics, RayPPOTrainer), {})
    for cls in (TailextPPOTrainerSync, legacy):
        # _val_metrics_update reads no trainer state (building a trainer needs a cluster)
        trainer = object.__new__(cls)
        got = cls._val_metrics_update(trainer, ["ds"] * 8, ["p"] * 4 + ["q"] * 4,
                                      {"reward": [1, 0, 0, 0, 0, 0, 0, 0]}, [])
        assert got["val-core/ds/reward/best@4/mean"] == pytest.approx(0.3435, abs=5e-4)
        assert got["val-core/ds/reward/pass@4"] == 0.5
        assert got["val-core/ds/reward/best@4/unbiased"] == 0.5
    trainer = object.__new__(TailextPPOTrainerSync)
    trainer.trainer_mode = "tailext_sync"  # what verl's __init__ assigns from the config
    assert trainer.trainer_mode == "sync"
    with pytest.raises(ValueError, match="is the sync trainer"):
        trainer.trainer_mode = "separate_async"


# --- the plugin ----------------------------------------------------------------------

def run_fresh(code, **env):
    """``code`` in a fresh interpreter with this tree first on the path."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), **env)
    result = subprocess.run([sys.executable, "-W", "ignore::UserWarning", "-c", code],
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_verl_imports_the_plugin_in_a_fresh_process():
    # What the TaskRunner and every verl worker do: import verl with the plugin (here named
    # in the environment; the installed `verl.plugins` entry point takes the same path),
    # then the trainer imports core_algos and the v1 trainers.
    code = ("import sys\nimport verl\n"
            "print('core_algos' , 'verl.trainer.ppo.core_algos' in sys.modules)\n"
            "from verl.trainer.ppo.core_algos import get_adv_estimator_fn as get\n"
            "print(get('tea').__name__, get('tailext_grpo').__name__)\n"
            "from verl.trainer.ppo.v1 import get_trainer_cls\n"
            "print(get_trainer_cls('tailext_sync').__name__)\n")
    result = run_fresh(code, VERL_USE_EXTERNAL_PLUGINS="none",
                       VERL_USE_EXTERNAL_MODULES="tailext.integrations.verl_plugin")
    assert result.stdout.split() == ["core_algos", "False", "tailext_tea_estimator",
                                     "tailext_grpo_estimator", "TailextPPOTrainerSync"]


def test_the_installed_entry_point_registers_the_estimators():
    from importlib.metadata import entry_points

    if "tailext" not in {ep.name for ep in entry_points(group="verl.plugins")}:
        pytest.skip("tailext is not installed (pip install -e .): no verl.plugins entry point")
    result = run_fresh("from verl.trainer.ppo.core_algos import get_adv_estimator_fn as get\n"
                       "print(get('prefix_tea').__name__)\n")
    assert result.stdout.split() == ["tailext_prefix_tea_estimator"]


def test_a_failing_registration_is_a_visible_warning():
    # verl logs a plugin that fails to import at DEBUG only; the plugin reports its own
    # failure as a RuntimeWarning on stderr. Made to fail here by blocking the adapter's
    # import (sys.modules[name] = None makes `import name` raise ImportError).
    code = ("import sys\nsys.modules['tailext.integrations.verl'] = None\n"
            "import verl.trainer.ppo.core_algos as core_algos\n"
            "print('tea' in core_algos.ADV_ESTIMATOR_REGISTRY)\n")
    result = run_fresh(code, VERL_USE_EXTERNAL_PLUGINS="none",
                       VERL_USE_EXTERNAL_MODULES="tailext.integrations.verl_plugin")
    assert result.stdout.split() == ["False"]
    assert "RuntimeWarning: tailext: the tailext advantage estimators were NOT registered " \
           "with verl (ModuleNotFoundError" in result.stderr


def test_a_configured_seed_starts_a_stream_that_later_steps_continue():
    # An int seed in the config must not repeat its draws every step: prefix_tea would put
    # the same reward ranks into its prefixes at every step.
    names = register()
    token_rewards, mask, uids, _ = grouped_batch([32, 32], seed=13)
    config = OmegaConf.create({CONFIG_KEY: {"seed": 5}})
    from tailext.integrations.verl import _make_estimator

    estimator = _make_estimator("prefix_tea")
    first = estimator(token_rewards, mask, uids, config)[0][:, 0]
    second = estimator(token_rewards, mask, uids, config)[0][:, 0]
    assert not torch.equal(first, second)
    replay = _make_estimator("prefix_tea")(token_rewards, mask, uids, config)[0][:, 0]
    assert torch.equal(first, replay)  # reproducible from the seed
    assert names["prefix_tea"] == "prefix_tea"
