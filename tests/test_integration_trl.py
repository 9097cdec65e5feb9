"""TailextGRPOTrainer on the real TRL (1.16.0 pinned in requirements-integrations.txt; CI runs
this file again on 1.15.0).

A tiny randomly initialized Llama and a word-level tokenizer are built in the test (no
downloads, HF_HUB_OFFLINE=1). The advantage step is checked through TRL's real
``_generate_and_score_completions`` in train and eval mode on every supported version; on
1.16.0 short ``train()`` and ``evaluate()`` runs check what the loss and the logs receive.
"""

import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tailext  # noqa: E402

trl = pytest.importorskip("trl", reason="TRL not installed "
                          "(pip install -r requirements-integrations.txt)")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from packaging.specifiers import SpecifierSet  # noqa: E402  (a TRL dependency)
from packaging.version import Version  # noqa: E402

from tailext.integrations.trl import (SUPPORTED_TRL, TailextGRPOTrainer,  # noqa: E402
                                      _trl_version_iv, word_tokenizer)

pytestmark = pytest.mark.integration

# TRL 1.15.0's GRPO loss always goes through a fused LM head whose kernel is triton-only
# (trl/trainer/utils.py: ChunkedLogProbFunction is None without triton, and 1.15.0 launches the
# triton kernel even when it imports); 1.16.0 added a CPU path. The advantage step itself
# (_generate_and_score_completions with beta=0) runs on CPU in both.
needs_cpu_loss = pytest.mark.skipif(
    Version(trl.__version__) < Version("1.16.0"),
    reason=f"trl {trl.__version__}: the GRPO loss needs triton (no CPU path before 1.16.0), "
           "so train()/evaluate() cannot run here; the advantage step is tested directly")

WORDS = ["a", "b", "c", "d", "e", "f", "g", "h"]
PROMPTS = ["a b c", "d e f", "g h a", "b b a"]
NUM_GENERATIONS = 8
OPTIONS = {"tail_fraction": 0.25, "n_target": 64}


def tiny_tokenizer():
    return word_tokenizer(["<pad>", "<unk>", "<bos>", "<eos>"] + WORDS, pad_token="<pad>",
                          unk_token="<unk>", bos_token="<bos>", eos_token="<eos>")


def tiny_model(tokenizer, seed):
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id)
    with torch.random.fork_rng():  # seeded init without touching the global RNG state
        torch.manual_seed(seed)
        return transformers.LlamaForCausalLM(config)


class RecordingRewards:
    """Reward: share of "a" words plus 0.01 per word (ties are rare); keeps what it returned.

    ``unscorable``: positions (within each call) that get ``None``; ``binary``: reward 1 if
    the completion holds an "a", else 0.
    """

    __name__ = "share_of_a"

    def __init__(self, unscorable=(), binary=False):
        self.unscorable, self.binary = set(unscorable), binary
        self.returned = []

    def __call__(self, prompts, completions, **kwargs):
        rewards = []
        for i, text in enumerate(completions):
            words = text.split()
            if i in self.unscorable:
                rewards.append(None)
            elif self.binary:
                rewards.append(float("a" in words))
            else:
                rewards.append(words.count("a") / max(len(words), 1) + 0.01 * len(words))
        self.returned.append(rewards)
        return rewards


def as_scores(returned):
    """TRL's view of the rewards: float32, NaN for None."""
    values = [math.nan if r is None else r for r in returned]
    return np.asarray(values, dtype=np.float32).astype(np.float64)


class CaptureAdvantages:
    """Mixin for a GRPO trainer: keeps the advantages handed to the loss."""

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        self.captured = getattr(self, "captured", []) + [output["advantages"].clone()]
        return output


class CapturingTrainer(CaptureAdvantages, TailextGRPOTrainer):
    """TailextGRPOTrainer, capturing advantages."""


class StockAdvantages(trl.GRPOTrainer):
    """Stock TRL below TailextGRPOTrainer in the MRO: keeps TRL's own advantages."""

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        self.stock = getattr(self, "stock", []) + [output["advantages"].clone()]
        return output


class OursOverStock(CaptureAdvantages, TailextGRPOTrainer, StockAdvantages):
    """TailextGRPOTrainer over stock TRL: both advantages of the very same rewards."""


def grpo_config(tmp_path, **overrides):
    settings = dict(
        output_dir=str(tmp_path), per_device_train_batch_size=NUM_GENERATIONS,
        per_device_eval_batch_size=NUM_GENERATIONS, num_generations=NUM_GENERATIONS,
        max_completion_length=6, max_steps=2, learning_rate=0.05, beta=0.0, logging_steps=1,
        report_to="none", save_strategy="no", use_cpu=True, bf16=False, disable_tqdm=True,
        seed=0, dataloader_num_workers=0)
    settings.update(overrides)
    return trl.GRPOConfig(**settings)


def make_trainer(tmp_path, reward_fn, config=None, trainer_class=CapturingTrainer, **kwargs):
    from datasets import Dataset

    tokenizer = tiny_tokenizer()
    dataset = Dataset.from_dict({"prompt": PROMPTS * 4})
    return trainer_class(model=tiny_model(tokenizer, seed=0), reward_funcs=reward_fn,
                         args=grpo_config(tmp_path, **(config or {})), train_dataset=dataset,
                         eval_dataset=dataset, processing_class=tokenizer, **kwargs)


def score_one_batch(trainer, mode):
    """TRL's real advantage step on one batch of its own dataloader, in ``mode``."""
    trainer.model.train(mode == "train")
    loader = trainer.get_train_dataloader() if mode == "train" else trainer.get_eval_dataloader()
    return trainer._generate_and_score_completions(next(iter(loader)))


def test_supported_versions_and_a_clear_error_for_others():
    assert Version(trl.__version__) in SpecifierSet(SUPPORTED_TRL)
    for supported in ("1.15.0", "1.16.0", "1.16.1"):
        _trl_version_iv(supported)
    for other in ("0.24.0", "1.14.2", "1.17.0", "1.17.0.dev0", "2.0.0"):
        with pytest.raises(ImportError, match=rf"supports trl>=1\.15\.0,<1\.17 .*found trl "
                                              rf"{other.replace('.', '[.]')}"):
            _trl_version_iv(other)


@needs_cpu_loss
def test_short_training_run_uses_tea_advantages(tmp_path):
    reward_fn = RecordingRewards()
    trainer = make_trainer(tmp_path, reward_fn, advantage_method="tea",
                           advantage_options=OPTIONS)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()

    assert len(trainer.captured) >= 1 and len(trainer.captured) == len(reward_fn.returned)
    for rewards, advantages in zip(reward_fn.returned, trainer.captured):
        # TRL evaluates rewards in float32; the rule then runs on those float32 values.
        grouped = as_scores(rewards).reshape(-1, NUM_GENERATIONS)
        expected = tailext.advantages(grouped, method="tea", **OPTIONS).reshape(-1)
        scale = max(np.abs(expected).max(), 1.0)
        np.testing.assert_allclose(advantages.double().numpy(), expected, rtol=0,
                                   atol=1e-5 * scale)
        # not TRL's z-scored advantages (which are ~unit scale for any non-constant group)
        centred = grouped - grouped.mean(axis=1, keepdims=True)
        trl_like = (centred / (grouped.std(axis=1, ddof=1, keepdims=True) + 1e-4)).reshape(-1)
        assert not np.allclose(advantages.double().numpy(), trl_like, atol=1e-3)
    assert any(np.abs(a.numpy()).max() > 0 for a in trainer.captured)
    changed = [not torch.equal(b, p.detach()) for b, p in zip(before,
                                                              trainer.model.parameters())]
    assert any(changed), "no parameter moved in two GRPO steps"
    logged = [entry for entry in trainer.state.log_history if "tailext/small_groups" in entry]
    assert len(logged) == 2 and all(entry["tailext/small_groups"] == 0.0
                                    and entry["tailext/invalid_rollouts"] == 0.0
                                    for entry in logged)


def test_unscorable_completions_are_invalid_rollouts(tmp_path):
    # Completion 0 of every batch gets None from the only reward function: like TRL, it is
    # left out of its group and gets 0; its group is TEA of the other 7.
    reward_fn = RecordingRewards(unscorable={0})
    trainer = make_trainer(tmp_path, reward_fn, advantage_method="tea",
                           advantage_options=OPTIONS)
    output = score_one_batch(trainer, "train")
    scores = as_scores(reward_fn.returned[-1]).reshape(-1, NUM_GENERATIONS)
    valid = np.isfinite(scores)
    assert valid.sum() == scores.size - 1
    expected = tailext.advantages(scores, method="tea", valid=valid, **OPTIONS).reshape(-1)
    got = output["advantages"].double().numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * max(np.abs(expected).max(), 1))
    assert got[0] == 0.0 and np.abs(got[1:NUM_GENERATIONS]).max() > 0
    assert list(trainer._logs["advantages"])[-len(got):] == pytest.approx(got.tolist(), abs=0)
    metrics = trainer._metrics["train"]
    assert metrics["tailext/invalid_rollouts"] == [1.0]
    assert metrics["tailext/small_groups"] == [0.0]


def test_grpo_is_stock_trl_grpo_in_train_and_eval_mode(tmp_path):
    # "grpo" without an explicit eps takes TRL's 1e-4: the same numbers as stock TRL on the
    # same rewards, with an unscorable completion in each batch, in training (groups of 8)
    # and in evaluation with num_generations_eval=2 (the group holding the unscorable one
    # has a single scored completion: 0 in both).
    reward_fn = RecordingRewards(unscorable={1})
    trainer = make_trainer(tmp_path, reward_fn, config={"num_generations_eval": 2},
                           trainer_class=OursOverStock, advantage_method="grpo")
    assert trainer.advantage_options == {"ddof": 1, "eps": 1e-4}
    for mode in ("train", "eval"):
        score_one_batch(trainer, mode)
        ours, stock = trainer.captured[-1].double().numpy(), trainer.stock[-1].double().numpy()
        assert np.abs(stock).max() > 0.5
        # TRL works in float32: agreement to float32 rounding of unit-scale advantages.
        np.testing.assert_allclose(ours, stock, rtol=0, atol=1e-5 * np.abs(stock).max(),
                                   err_msg=mode)
        assert ours[1] == 0.0
    assert trainer._metrics["eval"]["tailext/small_groups"] == [1.0]  # the 1-scored pair


def test_eval_groups_below_the_rules_minimum_get_zero(tmp_path):
    # TEA(0.25) needs 5 completions; evaluating with 2 per prompt is allowed: every eval
    # group gets 0, once warned, counted in the eval metrics; training is unaffected.
    reward_fn = RecordingRewards()
    trainer = make_trainer(tmp_path, reward_fn, config={"num_generations_eval": 2},
                           advantage_method="tea", advantage_options=OPTIONS)
    with pytest.warns(tailext.SmallGroupWarning, match="fewer than 5 valid rollouts"):
        output = score_one_batch(trainer, "eval")
    assert output["advantages"].shape == (NUM_GENERATIONS,)
    assert torch.count_nonzero(output["advantages"]) == 0
    assert trainer._metrics["eval"]["tailext/small_groups"] == [NUM_GENERATIONS / 2]
    output = score_one_batch(trainer, "train")
    scores = as_scores(reward_fn.returned[-1]).reshape(-1, NUM_GENERATIONS)
    expected = tailext.advantages(scores, method="tea", **OPTIONS).reshape(-1)
    np.testing.assert_allclose(output["advantages"].double().numpy(), expected, rtol=0,
                               atol=1e-5 * max(np.abs(expected).max(), 1.0))
    assert trainer._metrics["train"]["tailext/small_groups"] == [0.0]


def test_configuration_errors_are_raised_before_the_model_loads(tmp_path):
    # model="no/such-model" (offline): only a check made before TRL loads the model can
    # raise these errors.
    def fails(error, match, config=None, **kwargs):
        with pytest.raises(error, match=match):
            TailextGRPOTrainer(model="no/such-model", reward_funcs=RecordingRewards(),
                               args=grpo_config(tmp_path, **(config or {})), **kwargs)

    fails(ValueError, r"num_generations=4 is too small for advantage_method='tea' "
                      r"\(tail_fraction=0\.25.*at least 5 completions",
          config={"num_generations": 4, "per_device_train_batch_size": 4})
    fails(ValueError, r"num_generations=8 is too small for advantage_method='prefix_tea'",
          advantage_method="prefix_tea")
    fails(ValueError, r"needs scale_rewards='group' .*got scale_rewards='batch'\.$",
          config={"scale_rewards": "batch"})
    fails(ValueError, r"got scale_rewards='none'\. .*advantage_method='mean_centred'",
          config={"scale_rewards": False})
    fails(ValueError, "needs multi_objective_aggregation=",
          config={"multi_objective_aggregation": "normalize_then_sum"})
    fails(ValueError, r"unknown advantage method 'TEA'. Did you mean 'tea'\?",
          advantage_method="TEA")
    fails(TypeError, "unknown option.*'k'", advantage_options={"k": 3})
    fails(TypeError, "`advantage_options` must be a mapping", advantage_options=[0.25])
    fails(ValueError, r"`eval_best_of` budgets must be <= num_generations_eval = 2.*got 4",
          config={"num_generations_eval": 2}, eval_best_of=(1, 4))
    fails(TypeError, "`eval_best_of` must be a sequence", eval_best_of=4)


def test_eval_best_of_metric_per_prompt(tmp_path):
    # The eval batch's per-prompt unbiased best-of-k (pass@k for the 0/1 rewards).
    reward_fn = RecordingRewards(binary=True)
    trainer = make_trainer(tmp_path, reward_fn, config={"num_generations_eval": 4},
                           advantage_method="tea", advantage_options=OPTIONS,
                           eval_best_of=(1, 2, 4))
    score_one_batch(trainer, "eval")
    scores = as_scores(reward_fn.returned[-1]).reshape(-1, 4)
    metrics = trainer._metrics["eval"]
    for k in (1, 2, 4):
        successes = scores.sum(axis=1).astype(int)
        pass_at_k = [1 - math.comb(4 - c, k) / math.comb(4, k) for c in successes]
        assert metrics[f"tailext/best@{k}"] == pytest.approx(pass_at_k, abs=1e-12)
        assert metrics[f"tailext/pass@{k}"] == pytest.approx(pass_at_k, abs=1e-12)
    assert "tailext/best@1" not in trainer._metrics["train"]


@needs_cpu_loss
def test_evaluate_reports_best_of_k(tmp_path):
    # trainer.evaluate() returns eval_tailext/best@k = the mean over all eval prompts of
    # their unbiased best-of-k; non-binary rewards have no pass@k.
    reward_fn = RecordingRewards()
    trainer = make_trainer(tmp_path, reward_fn, config={"num_generations_eval": 4},
                           advantage_method="tea", advantage_options=OPTIONS,
                           eval_best_of=(2, 4))
    result = trainer.evaluate()
    scores = np.concatenate([as_scores(r) for r in reward_fn.returned]).reshape(-1, 4)
    assert scores.shape[0] == len(PROMPTS) * 4  # every eval prompt, once
    expected = tailext.evaluation.best_of_n(scores, [2, 4]).mean
    assert result["eval_tailext/best@2"] == pytest.approx(expected[0], rel=1e-6)
    assert result["eval_tailext/best@4"] == pytest.approx(expected[1], rel=1e-6)
    assert result["eval_tailext/best@4"] > result["eval_tailext/best@2"]
    assert not any("pass@" in key for key in result)
    # averaged over the eval batches like TRL's metrics: 2 groups of 4 (< 5) per batch
    assert result["eval_tailext/small_groups"] == NUM_GENERATIONS / 4


def test_word_tokenizer_ids_are_word_positions():
    tokenizer = tiny_tokenizer()
    ids = {w: i for i, w in enumerate(["<pad>", "<unk>", "<bos>", "<eos>"] + WORDS)}
    assert tokenizer("c a h", add_special_tokens=False)["input_ids"] == [
        ids["c"], ids["a"], ids["h"]]
    assert tokenizer("a zz", add_special_tokens=False)["input_ids"] == [ids["a"], ids["<unk>"]]
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id) == (0, 3, 2)
    assert tokenizer.decode([ids["b"], ids["a"], ids["<eos>"]],
                            skip_special_tokens=True) == "b a"


def test_word_tokenizer_bad_vocabulary_is_a_clear_error():
    with pytest.raises(ValueError, match="non-empty words without whitespace"):
        word_tokenizer([], eos_token="<eos>")
    with pytest.raises(ValueError, match="non-empty words without whitespace"):
        word_tokenizer(["<eos>", "a b"], eos_token="<eos>")
    with pytest.raises(ValueError, match=r"repeated words \['a'\]"):
        word_tokenizer(["<eos>", "a", "a"], eos_token="<eos>")
    with pytest.raises(ValueError, match="pad_token='<pad>' is not in the vocabulary"):
        word_tokenizer(["<eos>", "a"], eos_token="<eos>", pad_token="<pad>")
