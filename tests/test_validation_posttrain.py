"""Tests of the toy post-training validation (``tailext validate posttrain``).

Pieces: sampler log-probabilities, masks and lengths, KL, reward model, loss gradient sign,
exact resume. End to end: the ``--quick`` run writes a complete result file and actually
changes the policy (KL > 0, mean reward moved beyond its sampling noise).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tailext.cli import main  # noqa: E402
from tailext.torch import grouped_policy_loss  # noqa: E402
from tailext.validate.posttrain.command import config_from_args, configure_parser  # noqa: E402
from tailext.validate.posttrain.config import TrainConfig  # noqa: E402
from tailext.validate.posttrain.model import (  # noqa: E402
    EOS, build_policy, build_reward_model, response_logprobs, response_mask, sequence_kl)
from tailext.validate.posttrain.model import sample_responses as sample  # noqa: E402
from tailext.validate.posttrain.training import train, unit_rms  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])]


def _prompts(n, seed, device="cpu"):
    return torch.randint(2, 32, (n, 4), generator=torch.Generator().manual_seed(seed)).to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_sampled_logprobs_equal_model_logprobs(device):
    policy = build_policy(0, device)
    prompts = _prompts(64, 1, device)
    rollouts = sample(policy, prompts, max_len=12,
                      generator=torch.Generator(device=device).manual_seed(2))
    with torch.no_grad():
        forced = response_logprobs(policy, prompts, rollouts.responses) * rollouts.mask
    # float32 step-by-step vs whole-sequence GRU kernels: equal to rounding
    torch.testing.assert_close(rollouts.logprobs, forced, rtol=0, atol=1e-5)
    # mask covers the content tokens and the terminating EOS, nothing after it
    assert torch.equal(rollouts.mask, response_mask(rollouts.responses))
    assert torch.equal(rollouts.mask.sum(1).long(), torch.clamp(rollouts.lengths + 1, max=12))
    after_eos = rollouts.mask == 0
    assert bool((rollouts.responses[after_eos] == EOS).all())


def test_sampling_is_reproducible_from_its_generator():
    policy = build_policy(0, "cpu")
    prompts = _prompts(16, 1)
    a = sample(policy, prompts, max_len=12, generator=torch.Generator().manual_seed(5))
    b = sample(policy, prompts, max_len=12, generator=torch.Generator().manual_seed(5))
    c = sample(policy, prompts, max_len=12, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a.responses, b.responses)
    assert not torch.equal(a.responses, c.responses)


def test_sequence_kl_is_zero_against_itself_and_positive_otherwise():
    policy, other = build_policy(0, "cpu"), build_policy(1, "cpu")
    prompts = _prompts(32, 1)
    responses = sample(policy, prompts, max_len=12,
                       generator=torch.Generator().manual_seed(2)).responses
    assert torch.allclose(sequence_kl(policy, policy, prompts, responses),
                          torch.zeros(32), atol=1e-6)
    assert bool((sequence_kl(policy, other, prompts, responses) > 0).all())


def test_reward_model_is_deterministic_frozen_and_calibrated():
    prompts = _prompts(256, 1)
    responses = sample(build_policy(0, "cpu"), prompts, max_len=12,
                       generator=torch.Generator().manual_seed(2)).responses
    a, b, c = (build_reward_model(s, "cpu") for s in (7, 7, 8))
    a.calibrate(prompts, responses)
    r = a(prompts, responses)
    # the calibration is exact on its own sample (up to float32 rounding)
    assert abs(float(r.mean())) < 1e-5 and abs(float(r.std()) - 1.0) < 1e-5
    assert torch.equal(b.raw(prompts, responses), build_reward_model(7, "cpu").raw(
        prompts, responses))
    assert not torch.allclose(b.raw(prompts, responses), c.raw(prompts, responses))
    assert not any(p.requires_grad for p in a.parameters())


def test_policy_gradient_step_moves_logprobs_in_the_advantage_direction():
    policy = build_policy(0, "cpu")
    prompts = _prompts(2, 1)
    responses = sample(policy, prompts, max_len=12,
                       generator=torch.Generator().manual_seed(2)).responses
    mask = response_mask(responses)

    def total_logprob():
        with torch.no_grad():
            return (response_logprobs(policy, prompts, responses) * mask).sum(1)

    before = total_logprob()
    loss = grouped_policy_loss(response_logprobs(policy, prompts, responses), mask,
                               torch.tensor([1.0, -1.0]))
    loss.backward()
    with torch.no_grad():
        for p in policy.parameters():
            p -= 1e-2 * p.grad
    change = total_logprob() - before
    assert change[0] > 0 > change[1]


def _tiny_run(tmp_path, normalize_advantages=False, **kwargs):
    config = TrainConfig(rule="TEA", rule_options={"tail_fraction": 0.25, "n_target": 32},
                         steps=4, prompts_per_step=2, group_size=8, validate_every=2,
                         validation_samples=8, validation_top=2, seed=3, validation_seed=4,
                         normalize_advantages=normalize_advantages)
    initial = build_policy(0, "cpu")
    reward_model = build_reward_model(1, "cpu")
    return train(config, initial, reward_model, _prompts(16, 2), _prompts(2, 3), **kwargs)


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    straight = _tiny_run(tmp_path)
    checkpoint = str(tmp_path / "state.pt")
    first = _tiny_run(tmp_path, checkpoint=checkpoint, stop_after=2)
    assert not first.finished and len(first.history) == 1
    resumed = _tiny_run(tmp_path, checkpoint=checkpoint)
    assert resumed.finished and straight.finished
    assert resumed.history == straight.history
    assert resumed.best_step == straight.best_step
    for key, value in straight.policy.state_dict().items():
        assert torch.equal(value, resumed.policy.state_dict()[key]), key
    # training changed the weights at all
    assert any(not torch.equal(v, build_policy(0, "cpu").state_dict()[k])
               for k, v in straight.policy.state_dict().items())


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    checkpoint = str(tmp_path / "state.pt")
    _tiny_run(tmp_path, checkpoint=checkpoint, stop_after=2)
    config = TrainConfig(rule="GRPO", steps=4, prompts_per_step=2, group_size=8,
                         validate_every=2, validation_samples=8, validation_top=2, seed=3,
                         validation_seed=4)
    with pytest.raises(ValueError, match="written for a different configuration"):
        train(config, build_policy(0, "cpu"), build_reward_model(1, "cpu"), _prompts(16, 2),
              _prompts(2, 3), checkpoint=checkpoint)


def test_unit_rms_keeps_the_weighting_and_leaves_zeros_alone():
    adv = torch.tensor([3.0, -1.0, 0.0, -2.0], dtype=torch.float64)
    scaled = unit_rms(adv)
    assert float(scaled.square().mean()) == pytest.approx(1.0, rel=1e-12)
    torch.testing.assert_close(scaled * adv.square().mean().sqrt(), adv, rtol=1e-12, atol=0)
    zeros = torch.zeros(4)
    assert torch.equal(unit_rms(zeros), zeros)           # all-equal groups: no NaN


def _parse(argv):
    import argparse
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return config_from_args(parser.parse_args(argv))


def test_cli_training_overrides_reach_the_config(tmp_path):
    out = str(tmp_path / "x")
    default = _parse(["--out", out]).training
    assert (default.steps, default.learning_rate, default.kl_coef,
            default.normalize_advantages) == (600, 1e-3, 0.05, False)
    changed = _parse(["--out", out, "--steps", "7", "--learning-rate", "0.01", "--kl-coef",
                      "0.2", "--normalize-advantages"]).training
    assert (changed.steps, changed.learning_rate, changed.kl_coef,
            changed.normalize_advantages) == (7, 0.01, 0.2, True)


def test_normalized_advantages_change_training(tmp_path):
    raw = _tiny_run(tmp_path)
    scaled = _tiny_run(tmp_path, normalize_advantages=True)
    # TEA's advantages at this group size are not unit-RMS: the rescaling changes the steps
    assert raw.history != scaled.history


def test_quick_run_writes_results_and_changes_the_policy(tmp_path):
    from tailext.validate.posttrain.report import view
    from tailext.validate.records import read_record

    assert main(["validate", "posttrain", "--out", str(tmp_path), "--quick",
                 "--no-progress"]) == 0
    record = read_record(tmp_path / "posttrain.json")
    results = view(record)
    assert "## Verdicts against GRPO" in (tmp_path / "posttrain.md").read_text()
    assert (tmp_path / "posttrain_frontier.png").stat().st_size > 0
    import tailext
    assert record["version"] == tailext.__version__ and record["seed"] == 0
    assert record["completeness"]["mode"] == "quick" and record["completeness"]["complete"]
    config = results["config"]
    assert config["training"]["group_size"] == 16 and config["eval_samples"] == 256
    assert set(results["rules"]) == {"GRPO", "GRPO-Z", "CAT-BoN", "TEA", "Prefix-TEA"}
    assert results["ns"] == [2 ** j for j in range(9)]
    base = results["base"]
    P = config["n_test"]
    stats = results["advantage_statistics"]
    assert set(stats) == set(results["rules"])
    assert stats["GRPO"]["corr_with_grpo"] == pytest.approx(1.0)
    assert stats["GRPO-Z"]["corr_with_grpo"] == pytest.approx(1.0)   # a positive rescaling
    assert 0.0 < stats["TEA"]["nonzero_share"] <= 1.0
    for name, entry in results["rules"].items():
        assert entry["kl_to_base"] > 0, name
        # training moved the held-out mean reward: the paired prompt-bootstrap 95% CI of
        # (trained − base) excludes 0
        moved = entry["mean_reward_vs_base"]
        assert moved["diff"] == pytest.approx(entry["mean_reward"] - base["mean_reward"])
        assert moved["ci_low"] > 0 or moved["ci_high"] < 0, name
        bo = [entry["unbiased_best_of_n"][str(n)] for n in results["ns"]]
        assert entry["unbiased_best_of_n"]["1"] == pytest.approx(entry["mean_reward"])
        assert np.all(np.diff(bo) >= -1e-12), name              # E[max of n] grows with n
        # at n = M both estimators are the per-prompt maximum
        assert entry["grouped_best_of_n"]["256"] == pytest.approx(bo[-1])
        if name != "GRPO":
            for n, vs in entry["vs_grpo"].items():
                assert vs["win"] + vs["tie"] + vs["loss"] == P
                assert vs["ci_low"] <= vs["diff"] <= vs["ci_high"]


@pytest.mark.slow
@pytest.mark.integration
def test_quick_trl_run_trains_the_tiny_llama(tmp_path):
    pytest.importorskip("trl")
    pytest.importorskip("datasets")
    from tailext.validate.posttrain.report import view
    from tailext.validate.records import read_record

    assert main(["validate", "posttrain", "--out", str(tmp_path), "--quick", "--rules", "GRPO",
                 "--trl", "--no-progress"]) == 0
    trl = view(read_record(tmp_path / "posttrain.json"))["trl"]
    assert trl["rule"] == "TEA" and trl["method"] == "tea"
    assert trl["options"] == {"tail_fraction": 0.25, "n_target": 128}
    assert [entry["step"] for entry in trl["log"]] == list(range(1, trl["steps"] + 1))
    base, trained = trl["summary"]["trl_base"], trl["summary"]["trl_TEA"]
    assert base["kl_to_base"] == pytest.approx(0.0, abs=1e-6)
    # the exact KL of the trained Llama to its pretrained copy: the TRL steps changed it
    assert trained["kl_to_base"] > 1e-4
    assert "TRL integration" in (tmp_path / "posttrain.md").read_text()
