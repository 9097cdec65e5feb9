"""TailextGRPOTrainer on the real TRL (pinned in requirements-integrations.txt).

A tiny randomly initialized Llama and a word-level tokenizer are built in the test (no
downloads, HF_HUB_OFFLINE=1); two GRPO steps must train on exactly the TEA advantages of the
rewards the reward function returned.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tailext  # noqa: E402

trl = pytest.importorskip("trl", reason="TRL not installed "
                          "(pip install -r requirements-integrations.txt)")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tailext.integrations.trl import TailextGRPOTrainer, word_tokenizer  # noqa: E402

pytestmark = pytest.mark.integration

WORDS = ["a", "b", "c", "d", "e", "f", "g", "h"]
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
    """Reward: share of "a" words plus 0.01 per word (ties are rare); keeps what it returned."""

    __name__ = "share_of_a"

    def __init__(self):
        self.returned = []

    def __call__(self, prompts, completions, **kwargs):
        rewards = []
        for text in completions:
            words = text.split()
            rewards.append(words.count("a") / max(len(words), 1) + 0.01 * len(words))
        self.returned.append(rewards)
        return rewards


class CaptureAdvantages:
    """Mixin for a GRPO trainer: keeps the advantages handed to the loss."""

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        self.captured = getattr(self, "captured", []) + [output["advantages"].clone()]
        return output


class CapturingTrainer(CaptureAdvantages, TailextGRPOTrainer):
    """TailextGRPOTrainer, capturing advantages."""


class CapturingStockTrainer(CaptureAdvantages, trl.GRPOTrainer):
    """TRL's own GRPOTrainer, capturing advantages."""


def make_trainer(tmp_path, reward_fn, config=None, trainer_class=CapturingTrainer, **kwargs):
    from datasets import Dataset

    tokenizer = tiny_tokenizer()
    dataset = Dataset.from_dict({"prompt": ["a b c", "d e f", "g h a", "b b a"] * 4})
    args = trl.GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=NUM_GENERATIONS,
        num_generations=NUM_GENERATIONS, max_completion_length=6, max_steps=2,
        learning_rate=0.05, beta=0.0, logging_steps=1, report_to="none", save_strategy="no",
        use_cpu=True, bf16=False, disable_tqdm=True, seed=0, dataloader_num_workers=0,
        **(config or {}))
    return trainer_class(model=tiny_model(tokenizer, seed=0), reward_funcs=reward_fn,
                            args=args, train_dataset=dataset, processing_class=tokenizer,
                            **kwargs)


def test_short_training_run_uses_tea_advantages(tmp_path):
    reward_fn = RecordingRewards()
    trainer = make_trainer(tmp_path, reward_fn, advantage_method="tea",
                           advantage_options=OPTIONS)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()

    assert len(trainer.captured) >= 1 and len(trainer.captured) == len(reward_fn.returned)
    for rewards, advantages in zip(reward_fn.returned, trainer.captured):
        # TRL evaluates rewards in float32; the rule then runs on those float32 values.
        grouped = np.asarray(rewards, dtype=np.float32).astype(np.float64)
        grouped = grouped.reshape(-1, NUM_GENERATIONS)
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


def test_grpo_with_trl_eps_equals_stock_trl_advantages(tmp_path):
    # Peer check (BASELINES.md): TRL's scale_rewards="group" is (r − mean)/(sample std + 1e-4).
    reward_fn = RecordingRewards()
    trainer = make_trainer(tmp_path, reward_fn, config={"scale_rewards": "group"},
                           trainer_class=CapturingStockTrainer)
    trainer.train()
    assert len(trainer.captured) == len(reward_fn.returned) >= 1
    for rewards, advantages in zip(reward_fn.returned, trainer.captured):
        grouped = np.asarray(rewards, dtype=np.float32).astype(np.float64)
        grouped = grouped.reshape(-1, NUM_GENERATIONS)
        ours = tailext.advantages(grouped, method="grpo", eps=1e-4).reshape(-1)
        # TRL works in float32: agreement to float32 rounding of unit-scale advantages.
        np.testing.assert_allclose(advantages.double().numpy(), ours, rtol=0,
                                   atol=1e-5 * max(np.abs(ours).max(), 1.0))


def test_bad_rule_or_options_fail_before_training(tmp_path):
    with pytest.raises(ValueError, match="unknown advantage method"):
        make_trainer(tmp_path, RecordingRewards(), advantage_method="no_such_rule")
    with pytest.raises(TypeError, match="unknown option"):
        make_trainer(tmp_path, RecordingRewards(), advantage_options={"k": 3})
    with pytest.raises(ValueError, match="needs multi_objective_aggregation="):
        make_trainer(tmp_path, RecordingRewards(),
                     config={"multi_objective_aggregation": "normalize_then_sum"})


def test_completion_without_reward_is_a_clear_error(tmp_path):
    def no_reward_for_first(prompts, completions, **kwargs):
        return [None] + [1.0 * i for i in range(1, len(completions))]

    trainer = make_trainer(tmp_path, no_reward_for_first)
    with pytest.raises(ValueError, match=r"1 completion\(s\) have no reward"):
        trainer.train()


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
