"""The post-training task run through TRL: ``TailextGRPOTrainer`` on a tiny Llama built in code.

Same prompts, corpus and frozen reward model as the torch run
(:mod:`tailext.validate.posttrain.evaluation`); the policy is a
randomly initialised ``transformers.LlamaForCausalLM`` whose vocabulary *is* the task's (a
word-level tokenizer maps token id ``i`` to the word ``w{i}``; ``<eos>`` and ``<sep>`` keep ids
``EOS`` and ``SEP``), fitted to the same corpus with the same :func:`pretrain`, then trained by
``tailext.integrations.trl.TailextGRPOTrainer`` with one tailext rule. The base and trained
models are evaluated with the same sampler and best-of-n code as the torch run, through
:class:`CausalLMPolicy`. No downloads (``HF_HUB_OFFLINE=1``).

TRL seeds the global RNGs (``transformers.set_seed``) inside ``train()``; the run restores
the torch global RNG state afterwards.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from .model import EOS, SEP, VOCAB

__all__ = ["CausalLMPolicy", "task_tokenizer", "tiny_llama", "prompt_text", "TaskReward",
           "run_trl"]


class CausalLMPolicy(nn.Module):
    """A Hugging Face causal LM behind :class:`~tailext.validate.posttrain.model.Policy`'s
    interface.

    ``forward(tokens, state) -> (logits, state)`` where ``state`` is the token prefix seen so
    far (no KV cache: sequences are ~17 tokens, recomputing them is cheaper than the cache
    bookkeeping), so :func:`~tailext.validate.posttrain.model.sample_responses`,
    ``response_logprobs`` and ``pretrain`` work unchanged.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens, state=None):
        seen = tokens if state is None else torch.cat([state, tokens], dim=1)
        logits = self.model(input_ids=seen).logits[:, -tokens.shape[1]:]
        return logits, seen


def _word(token: int) -> str:
    return {EOS: "<eos>", SEP: "<sep>"}.get(token, f"w{token}")


def task_tokenizer():
    """Word-level tokenizer whose ids are the task's token ids (``<eos>`` doubles as pad)."""
    from tailext.integrations.trl import word_tokenizer

    return word_tokenizer([_word(i) for i in range(VOCAB)], eos_token="<eos>",
                          pad_token="<eos>", unk_token="<sep>")


def tiny_llama(seed: int):
    """A 2-layer, 32-wide ``LlamaForCausalLM`` over the task vocabulary, seeded init."""
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=EOS, eos_token_id=EOS, bos_token_id=None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transformers.LlamaForCausalLM(config)


def prompt_text(prompt) -> str:
    """``"w5 w9 w3 w7 <sep>"``: the prompt followed by the separator, as TRL's prompt."""
    return " ".join(_word(int(t)) for t in prompt) + " <sep>"


class TaskReward:
    """TRL reward function: the frozen reward model on ``(prompt ids, completion ids)``."""

    __name__ = "toy_reward_model"

    def __init__(self, reward_model, *, max_len: int):
        self.reward_model = reward_model
        self.max_len = max_len

    def __call__(self, prompts, completions, completion_ids, **kwargs):
        device = self.reward_model.calibration.device
        parsed = [[int(w[1:]) for w in text.split() if w.startswith("w")] for text in prompts]
        responses = torch.full((len(completion_ids), self.max_len), EOS, dtype=torch.long)
        for row, ids in enumerate(completion_ids):
            ids = [int(t) for t in ids][: self.max_len]
            responses[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return self.reward_model(torch.tensor(parsed, device=device),
                                 responses.to(device)).tolist()


def run_trl(*, label: str, options: dict, task, config, out: str, evaluate) -> dict:
    """Pretrain a tiny Llama, train it with ``TailextGRPOTrainer`` and rule ``label``,
    evaluate both.

    ``evaluate(name, policy, reference)`` is the torch run's held-out evaluation (it caches
    ``trl_base`` and ``trl_<label>``); the returned dict holds the per-step TRL log.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import copy

    import transformers
    import trl
    from datasets import Dataset

    from tailext.integrations.trl import TailextGRPOTrainer

    from .. import rules
    from ..seeding import PosttrainStream, torch_seed
    from .corpus import pretrain

    device = torch.device(config.device)
    training = config.training
    llama = tiny_llama(torch_seed(config.seed, PosttrainStream.TRL_INIT)).to(device)
    pretrain(CausalLMPolicy(llama), task.corpus_prompts, task.corpus,
             steps=config.pretrain_steps, batch_size=config.pretrain_batch,
             lr=config.pretrain_lr, seed=torch_seed(config.seed, PosttrainStream.TRL_PRETRAIN))
    base = CausalLMPolicy(copy.deepcopy(llama)).eval().requires_grad_(False)
    # TRL builds its KL reference model from the policy's path: hand it a local directory
    base_path = os.path.join(out, "trl", "base_model")
    llama.save_pretrained(base_path)
    dataset = Dataset.from_dict({"prompt": [prompt_text(p)
                                            for p in task.splits["train"].tolist()]})
    args = trl.GRPOConfig(
        output_dir=os.path.join(out, "trl"), num_generations=training.group_size,
        per_device_train_batch_size=config.trl_prompts_per_step * training.group_size,
        max_completion_length=training.max_len, max_steps=config.trl_steps,
        learning_rate=training.learning_rate, beta=training.kl_coef, temperature=1.0,
        logging_steps=1, report_to="none", save_strategy="no",
        use_cpu=device.type == "cpu", bf16=False,
        seed=torch_seed(config.seed, PosttrainStream.TRL_TRAINING) % 2 ** 31,
        dataloader_num_workers=0)
    method, resolved = rules.method(label), rules.options(label, **options)
    trainer = TailextGRPOTrainer(
        model=base_path, reward_funcs=TaskReward(task.reward_model, max_len=training.max_len),
        args=args, train_dataset=dataset, processing_class=task_tokenizer(),
        advantage_method=method, advantage_options=resolved)
    with torch.random.fork_rng(devices=[]):
        trainer.train()
    trained = CausalLMPolicy(trainer.model).eval().requires_grad_(False)
    log = [{k: v for k, v in entry.items() if k in ("step", "reward", "reward_std", "kl",
                                                    "loss")}
           for entry in trainer.state.log_history if "reward" in entry]
    evaluate("trl_base", base, base)
    evaluate(f"trl_{label}", trained, base)
    return {"rule": label, "method": method, "options": resolved, "steps": config.trl_steps,
            "trl_version": trl.__version__, "transformers_version": transformers.__version__,
            "log": log}
