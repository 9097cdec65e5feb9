"""Grouped on-policy post-training of the toy policy with a tailext advantage rule.

One step: draw ``B`` training prompts, sample ``m`` responses for each, score them with the
frozen reward model, turn the ``[B, m]`` rewards into advantages with
the rule's torch advantages (:func:`tailext.validate.rules.torch_advantages`), and take an AdamW step on the grouped
policy-gradient loss with a KL penalty to the initial policy (optionally after rescaling the
batch's advantages to unit root-mean-square, ``normalize_advantages``). Every ``validate_every`` steps
the policy is scored on fixed validation prompts (the paper's rule: mean of the top
``validation_top`` of ``validation_samples`` rewards per prompt) and the best checkpoint is
kept.

The whole training state (policy, optimizer, sampler RNG, best checkpoint, history) is saved
to one checkpoint file at every validation, so an interrupted run resumes exactly where the
last checkpoint left it; a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import NamedTuple

import torch

from tailext.torch import grouped_policy_loss

from ..rules import torch_advantages
from ..seeding import PosttrainStream
from ..seeding import generator as generator_of
from .config import TrainConfig
from .model import Policy, RewardModel, response_logprobs, sample_responses

__all__ = ["TrainResult", "train", "unit_rms", "sampled_selection_score"]


class TrainResult(NamedTuple):
    """Outcome of :func:`train`.

    ``policy`` holds the validation-selected weights; ``history`` has one entry per
    validation: ``{"step", "val_score", "train_reward"}`` (mean training reward since the
    previous validation); ``finished`` is False when ``stop_after`` ended the call early.
    """

    policy: Policy
    best_step: int
    best_score: float
    history: list
    finished: bool


@torch.no_grad()
def sampled_selection_score(policy: Policy, reward_model: RewardModel, prompts: torch.Tensor,
                            *, samples: int, top: int, max_len: int,
                            seed: int) -> torch.Tensor:
    """The checkpoint-selection metric, sampled: the mean over prompts of the mean of the
    ``top`` best of ``samples`` rewards (a 0-d tensor).

    Uses its own generator seeded with ``seed``, so every checkpoint (and every rule) is
    scored on the same sampler stream and the training stream is not disturbed.
    """
    generator = torch.Generator(device=prompts.device).manual_seed(seed)
    repeated = prompts.repeat_interleave(samples, dim=0)
    rollouts = sample_responses(policy, repeated, max_len=max_len, generator=generator)
    rewards = reward_model(repeated, rollouts.responses).view(prompts.shape[0], samples)
    return rewards.topk(top, dim=1).values.mean()


def unit_rms(advantages: torch.Tensor) -> torch.Tensor:
    """``A / sqrt(mean(A²))`` over the whole batch; all-zero advantages stay zero.

    One scale per batch (not per group), so the rule's weighting of groups against each
    other is kept and only its overall size — which, under a fixed KL coefficient, acts as
    an inverse KL strength — is taken out.
    """
    rms = advantages.square().mean().sqrt()
    return advantages / rms if bool(rms > 0) else advantages


def _state(config, step, policy, optimizer, generator, best, history):
    return {"config": dataclasses.asdict(config), "step": step,
            "policy": policy.state_dict(), "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(), "best": best, "history": history}


def _save_atomic(state, path):
    tmp = f"{path}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)           # a Ctrl-C during the save never leaves a torn checkpoint


def train(config: TrainConfig, initial: Policy, reward_model: RewardModel,
          train_prompts: torch.Tensor, val_prompts: torch.Tensor, *,
          checkpoint: str | None = None, stop_after: int | None = None,
          progress=None) -> TrainResult:
    """Post-train a copy of ``initial`` with ``config.rule``; resume from ``checkpoint`` if present.

    Parameters
    ----------
    config : TrainConfig
    initial : Policy
        The pretrained policy; it is also the frozen KL reference and is not modified.
    reward_model : RewardModel
        Frozen scorer.
    train_prompts, val_prompts : LongTensor ``[n, P]``
        On the policy's device.
    checkpoint : str, optional
        File holding the training state. If it exists (and was written for the same
        ``config``) training continues from it; it is rewritten at every validation.
    stop_after : int, optional
        Stop this call after this many steps (counted from the start of training), leaving
        the checkpoint to continue from; ``None`` runs to ``config.steps``. Checkpoints are
        written at validations only, so a run resumes from its last validation.
    progress : tqdm-like, optional
        Advanced by one per step.
    """
    device = next(initial.parameters()).device
    reference = initial
    policy = copy.deepcopy(initial).train().requires_grad_(True)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    start, best, history = 0, None, []
    if checkpoint is not None and os.path.exists(checkpoint):
        # on the CPU: the generator state must stay a CPU ByteTensor; load_state_dict copies
        # weights and optimizer moments to their parameters' device
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state["config"] != dataclasses.asdict(config):
            raise ValueError(f"checkpoint {checkpoint!r} was written for a different "
                             f"configuration ({state['config']}); remove it or use another "
                             f"output directory.")
        policy.load_state_dict(state["policy"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start, best, history = state["step"], state["best"], state["history"]
        if progress is not None:
            progress.update(start)

    end = config.steps if stop_after is None else min(config.steps, stop_after)
    B, m = config.prompts_per_step, config.group_size
    window = []
    for step in range(start, end):
        rows = torch.randint(0, train_prompts.shape[0], (B,), generator=generator,
                             device=device)
        prompts = train_prompts[rows].repeat_interleave(m, dim=0)
        rollouts = sample_responses(policy, prompts, max_len=config.max_len,
                                    generator=generator)
        rewards = reward_model(prompts, rollouts.responses).view(B, m)
        # a rule that draws (Prefix-TEA's random prefix order) gets a generator of its own
        # per step, from the run's seed: a resumed run draws what an uninterrupted one does
        adv = torch_advantages(rewards, config.rule,
                               **{"seed": generator_of(config.seed, PosttrainStream.RULE,
                                                       step),
                                  **config.rule_options}).reshape(-1)
        if config.normalize_advantages:
            adv = unit_rms(adv)
        logprobs = response_logprobs(policy, prompts, rollouts.responses)
        with torch.no_grad():
            ref_logprobs = response_logprobs(reference, prompts, rollouts.responses)
        loss = grouped_policy_loss(logprobs, rollouts.mask, adv, ref_logprobs=ref_logprobs,
                                   kl_coef=config.kl_coef)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
        optimizer.step()
        window.append(rewards.mean().detach())
        if progress is not None:
            progress.update(1)
        done = step + 1
        if done % config.validate_every == 0 or done == config.steps:
            score = float(sampled_selection_score(
                policy, reward_model, val_prompts, samples=config.validation_samples,
                top=config.validation_top, max_len=config.max_len,
                seed=config.validation_seed))
            train_reward = float(torch.stack(window).mean())
            history.append({"step": done, "val_score": score, "train_reward": train_reward})
            window = []
            if best is None or score > best["score"]:
                best = {"step": done, "score": score,
                        "policy": copy.deepcopy(policy.state_dict())}
            if progress is not None:
                progress.set_postfix(val=f"{score:.3f}", best=f"{best['score']:.3f}")
            if checkpoint is not None:
                _save_atomic(_state(config, done, policy, optimizer, generator, best,
                                    history), checkpoint)

    selected = copy.deepcopy(initial)
    if best is not None:
        selected.load_state_dict(best["policy"])
    finished = max(start, end) >= config.steps
    return TrainResult(selected.eval(), best["step"] if best else 0,
                       best["score"] if best else float("nan"), history, finished)
