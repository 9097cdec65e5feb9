"""Tests of the post-training study ``tailext validate posttrain-risky``.

Pieces: the risky reward (its formula, the share of risky tokens, the pseudo-random normal
of a token sequence), the seeded Prefix-TEA order in training, the KL selection, the
comparisons and the generated verdict. Its resume is tested with every check's in
tests/test_validation_resume.py; the whole ``--quick`` run is marked slow.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tailext.cli import main  # noqa: E402
from tailext.validate.posttrain.model import EOS, build_reward_model  # noqa: E402
from tailext.validate.posttrain.risky import (  # noqa: E402
    _hash_constants, build_risky_reward, risky_share, sequence_normal)
from tailext.validate.posttrain.study import config_from_args, configure_parser  # noqa: E402
from tailext.validate.posttrain.study_config import RULES  # noqa: E402
from tailext.validate.posttrain.study_report import verdict  # noqa: E402


DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])]


def _tokens(n, length, seed):
    return torch.randint(0, 32, (n, length), generator=torch.Generator().manual_seed(seed))


def test_sequence_normal_is_a_deterministic_standard_normal():
    tokens = _tokens(40000, 17, 0)
    before = tokens.clone()
    z = sequence_normal(tokens, _hash_constants(3)).double().numpy()
    assert torch.equal(tokens, before)                                  # input not modified
    assert np.array_equal(z, sequence_normal(tokens, _hash_constants(3)).double().numpy())
    # N(0, 1): mean within 4 standard errors (1/sqrt(n) = 0.005), sd within 4 SE of the sd
    # (1/sqrt(2n) = 0.0035), P(z > 2) within 4 binomial SEs of 0.02275
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.std() - 1) < 4 / np.sqrt(2 * n)
    p = 0.02275
    assert abs((z > 2).mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    # changing one token gives an unrelated value: correlation within 4 SE of 0
    changed = tokens.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 32
    other = sequence_normal(changed, _hash_constants(3)).double().numpy()
    assert abs(np.corrcoef(z, other)[0, 1]) < 4 / np.sqrt(n)
    # another seed, other constants
    assert abs(np.corrcoef(z, sequence_normal(tokens, _hash_constants(4)).double().numpy())[
        0, 1]) < 4 / np.sqrt(n)


def test_risky_share_counts_content_tokens_before_eos():
    risky = torch.zeros(32, dtype=torch.bool)
    risky[[5, 7]] = True
    responses = torch.tensor([[5, 7, 3, 3, EOS, 5, 5, 5],    # 2 of 4 content tokens
                              [EOS] * 8,                     # empty: 0
                              [5] * 8,                       # no EOS: all 8 risky
                              [3, 5, EOS, EOS, EOS, EOS, EOS, EOS]])
    share = risky_share(responses, risky)
    assert share.tolist() == [0.5, 0.0, 1.0, 0.5]


@pytest.mark.parametrize("device", DEVICES)
def test_risky_reward_is_base_plus_spread_minus_cost(device):
    base = build_reward_model(1, device)
    reward = build_risky_reward(base, gamma=2.0, rho=0.5, n_risky=6, seed=9)
    assert int(reward.risky.sum()) == 6 and not bool(reward.risky[:2].any())  # content ids
    prompts = _tokens(256, 4, 1).clamp_min(2).to(device)
    responses = _tokens(256, 12, 2).to(device)
    if device != "cpu":  # the hash is exact integer arithmetic: the same on every device
        cpu = build_risky_reward(build_reward_model(1, "cpu"), gamma=2.0, rho=0.5,
                                 n_risky=6, seed=9)
        torch.testing.assert_close(reward.parts(prompts, responses)["noise"].cpu(),
                                   cpu.parts(prompts.cpu(), responses.cpu())["noise"])
    parts = reward.parts(prompts, responses)
    torch.testing.assert_close(parts["base"], base(prompts, responses))
    torch.testing.assert_close(reward(prompts, responses),
                               parts["base"] + (2.0 * parts["noise"] - 0.5) * parts["share"])
    assert float(parts["share"].std()) > 0
    # γ = ρ = 0 is the control task's reward
    plain = build_risky_reward(base, gamma=0.0, rho=0.0, n_risky=6, seed=9)
    torch.testing.assert_close(plain(prompts, responses), base(prompts, responses))


def test_prefix_tea_training_is_reproducible(tmp_path):
    # Prefix-TEA's random prefix order draws from a seeded stream per step, so two
    # trainings from the same seeds are identical
    from tailext.validate.posttrain.config import TrainConfig
    from tailext.validate.posttrain.model import build_policy
    from tailext.validate.posttrain.training import train

    policy, reward = build_policy(0, "cpu"), build_reward_model(1, "cpu")
    prompts = _tokens(32, 4, 3).clamp_min(2)
    config = TrainConfig(rule="Prefix-TEA", rule_options={"n_target": 128}, steps=3,
                         prompts_per_step=2, validate_every=3, validation_samples=8,
                         validation_top=2)
    first = train(config, policy, reward, prompts, prompts[:4])
    second = train(config, policy, reward, prompts, prompts[:4])
    assert first.history == second.history
    for a, b in zip(first.policy.parameters(), second.policy.parameters()):
        assert torch.equal(a, b)


def _args(*argv):
    import argparse

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.parse_args(["--out", "/tmp/unused", *argv])


def test_configuration_from_the_command_line():
    config = config_from_args(_args())
    assert config.rules == RULES and config.seeds == (0, 1, 2)
    assert config.training.group_size == 16 and config.eval_samples == 256
    assert config.kl_coefs == (0.01, 0.05, 0.2)
    quick = config_from_args(_args("--quick", "--rules", "TEA", "GRPO", "--steps", "3",
                                   "--gamma", "1.5"))
    assert quick.rules == ("GRPO", "TEA") and quick.training.steps == 3
    assert quick.gamma == 1.5 and quick.seeds == (0,)
    from tailext.validate.arguments import UsageError
    with pytest.raises(UsageError, match="reference rule GRPO"):
        config_from_args(_args("--rules", "TEA"))
    with pytest.raises(UsageError, match="distinct"):
        config_from_args(_args("--seeds", "1", "1"))


def test_the_simulators_prediction_uses_the_studys_rules():
    from tailext.validate.simulator.posttrain_prediction import RULES as PREDICTED

    assert PREDICTED == RULES


def _comparison(diff, low, high, per_seed):
    return {"256": {"diff": diff, "ci_low": low, "ci_high": high, "win": 150, "tie": 10,
                    "loss": 32, "per_seed": per_seed,
                    "seeds_ahead": int(sum(d > 0 for d in per_seed))}}


def _record(risky, control):
    cells = {f"eval/{task}/raw/{rule}": {"seeds": {"0": {"unbiased_best_of_n": {"256": v}}}}
             for task, values in (("risky", (3.0, 5.0)), ("control", (3.5, 3.4)))
             for rule, v in zip(("GRPO", "TEA"), values)}
    return {"configuration": {"scales": ["raw"], "rules": ["GRPO", "TEA"], "gamma": 2.0},
            "results": {"ns": [1, 256], "cells": cells,
                        "comparisons": {"risky/raw": {"TEA": risky},
                                        "control/raw": {"TEA": control}}}}


def test_verdict_states_the_answer_with_its_numbers():
    text = verdict(_record(_comparison(2.0, 1.5, 2.5, [1.8, 2.1, 2.1]),
                           _comparison(-0.1, -0.2, 0.05, [-0.1, -0.2, 0.0])))
    assert "TEA's high-n gain appears on the autoregressive policy" in text
    assert "+2.000 [+1.500, +2.500]" in text and "TEA ahead in 3 of 3" in text
    assert "Control task: the gain is absent" in text and "-0.100 [-0.200, +0.050]" in text
    assert "Highest mean bo256 among the rules: raw: TEA 5.00" in text
    # a CI above 0 with a seed that disagrees is not called a gain
    text = verdict(_record(_comparison(0.5, 0.1, 0.9, [1.0, 0.6, -0.1]),
                           _comparison(0.5, 0.1, 0.9, [0.5, 0.5, 0.5])))
    assert "does not appear" in text and "TEA ahead in 2 of 3" in text
    assert "Control task: the gain is not absent — TEA is ahead here too" in text
    assert "risky / control ratio at bo256: 1.0×" in text
    # γ = 0 is named a clean control, not the regime of the simulator's gain
    record = _record(_comparison(0.5, 0.1, 0.9, [0.5, 0.5, 0.5]),
                     _comparison(0.5, 0.1, 0.9, [0.5, 0.5, 0.5]))
    record["configuration"]["gamma"] = 0.0
    assert "Risky task with γ = 0 (no spread" in verdict(record)


@pytest.mark.slow
def test_quick_run_writes_a_verdict_and_monotone_frontiers(tmp_path):
    from tailext.validate.records import read_record

    assert main(["validate", "posttrain-risky", "--out", str(tmp_path), "--quick",
                 "--no-progress"]) == 0
    record = read_record(tmp_path / "posttrain_risky.json")
    assert record["completeness"]["complete"]
    report = (tmp_path / "posttrain_risky.md").read_text()
    assert "## Verdict" in report and "TEA − GRPO at bo64" in report
    assert (tmp_path / "posttrain_risky_frontier.png").stat().st_size > 0
    cells = record["results"]["cells"]
    comparisons = record["results"]["comparisons"]
    assert set(comparisons) == {f"{t}/{s}" for t in ("control", "risky")
                                for s in ("raw", "unit-rms")}
    P = 8  # quick: one seed × 8 held-out prompts
    for group, entries in comparisons.items():
        assert set(entries) == {"base", *RULES} - {"GRPO"}
        for name, vs in entries.items():
            for n, e in vs.items():
                assert e["win"] + e["tie"] + e["loss"] == P
                assert e["ci_low"] <= e["diff"] <= e["ci_high"]
                assert e["per_seed"] == pytest.approx([e["diff"]])  # one seed: the mean
    for key, cell in cells.items():
        if key.startswith("eval/"):
            assert cell["selected_kl"] in record["configuration"]["kl_coefs"]
            assert cell["selected_kl"] == record["configuration"]["kl_coefs"][
                int(np.argmax(cell["mean_val_score_by_kl"]))]
            for seed in cell["seeds"].values():
                bo = [seed["unbiased_best_of_n"][str(n)] for n in record["results"]["ns"]]
                assert np.all(np.diff(bo) >= -1e-12), key      # E[max of n] grows with n
                assert seed["unbiased_best_of_n"]["1"] == pytest.approx(seed["mean_reward"])
                assert seed["kl_to_base"] > 0 and 0 <= seed["risky_share"] <= 1


def test_the_docs_state_the_committed_runs_verdict():
    # the verdict on the post-training page is the one generated from the committed record
    from pathlib import Path

    from tailext.validate.records import read_record

    root = Path(__file__).resolve().parents[1]
    record = read_record(root / "docs/results/posttrain/study/posttrain_risky.json")
    assert record["completeness"]["complete"] and record["completeness"]["mode"] == "full"
    text = verdict(record)
    assert text in (root / "docs/posttrain.md").read_text()
    assert text in (root / "docs/results/posttrain/study/posttrain_risky.md").read_text()
