"""The post-training task and its held-out evaluation.

:func:`build_task` makes everything from the run seed (prompts, teacher corpus, frozen reward
model, pretrained base policy); :func:`evaluate_policy` draws ``M`` responses per held-out
prompt; :func:`summarize` turns the evaluations into best-of-n frontiers and paired
comparisons; :func:`advantage_statistics` shows how each rule weights base-policy groups.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import torch

from .. import rules
from ..seeding import PosttrainStream, generator, torch_seed
from .config import REFERENCE_RULE, RULE_OPTIONS, PosttrainConfig
from .corpus import draw_prompt_splits, make_teacher, pretrain, teacher_corpus
from .model import (build_policy, build_reward_model, response_lengths, sample_responses,
                    sequence_kl)

__all__ = ["Task", "build_task", "evaluate_policy", "summarize", "per_policy_summary",
           "advantage_statistics", "best_of_n_sizes"]


def best_of_n_sizes(samples: int) -> list[int]:
    """Powers of two up to ``samples`` (they divide ``M = 256`` for the grouped estimate)."""
    return [2 ** j for j in range(int(np.log2(samples)) + 1)]


class Task(NamedTuple):
    """Prompts (on the device), corpus, frozen reward model and pretrained base policy."""

    splits: dict
    corpus_prompts: torch.Tensor
    corpus: torch.Tensor
    reward_model: torch.nn.Module
    base: torch.nn.Module
    info: dict


def build_task(config: PosttrainConfig, out: str, progress) -> Task:
    """Prompts, frozen reward model and the pretrained base policy (cached in
    ``out/checkpoints/base.pt``); ``progress(total, desc)`` makes a progress bar."""
    from ..records import atomic_path

    device = torch.device(config.device)
    seed = config.seed
    splits = draw_prompt_splits(config.n_train, config.n_validation, config.n_test,
                                prompt_len=config.prompt_len,
                                seed=torch_seed(seed, PosttrainStream.PROMPTS))
    teacher = make_teacher(torch_seed(seed, PosttrainStream.TEACHER))
    pick = torch.Generator().manual_seed(torch_seed(seed, PosttrainStream.CORPUS_PROMPTS))
    corpus_prompts = splits.train[torch.randint(0, config.n_train, (config.corpus_size,),
                                                generator=pick)]
    corpus = teacher_corpus(teacher, corpus_prompts, max_len=config.training.max_len,
                            seed=torch_seed(seed, PosttrainStream.CORPUS))
    reward_model = build_reward_model(torch_seed(seed, PosttrainStream.REWARD_MODEL), device)
    reward_model.calibrate(corpus_prompts.to(device), corpus.to(device))

    base = build_policy(torch_seed(seed, PosttrainStream.POLICY_INIT), device)
    path = os.path.join(out, "checkpoints", "base.pt")
    if os.path.exists(path):
        state = torch.load(path, map_location=device, weights_only=False)
        base.load_state_dict(state["policy"])
        losses = state["losses"]
    else:
        with progress(config.pretrain_steps, "pretrain") as bar:
            losses = pretrain(base, corpus_prompts, corpus, steps=config.pretrain_steps,
                              batch_size=config.pretrain_batch, lr=config.pretrain_lr,
                              seed=torch_seed(seed, PosttrainStream.PRETRAIN), progress=bar)
        with atomic_path(path) as tmp:
            torch.save({"policy": base.state_dict(), "losses": losses}, tmp)
    base.eval().requires_grad_(False)
    info = {"corpus_mean_length": float(response_lengths(corpus).double().mean()),
            "pretrain_loss_first": losses[0], "pretrain_loss_last": float(np.mean(losses[-20:]))}
    on_device = {k: v.to(device) for k, v in splits._asdict().items()}
    return Task(on_device, corpus_prompts, corpus, reward_model, base, info)


def evaluate_policy(policy, reference, reward_model, prompts, *, samples: int, max_len: int,
                    seed: int, progress=None, statistics=None,
                    kl_samples: int | None = None) -> dict:
    """``samples`` responses per prompt: rewards, lengths and KL to ``reference``, ``[P, M]``.

    The sampler is seeded identically for every policy (common random numbers), so the
    paired comparisons across rules carry less sampling noise. ``statistics`` maps further
    names to functions ``(prompts, responses) -> [bs]`` evaluated on the same responses
    (another task's reward, the risky share). ``kl_samples``: the KL to ``reference`` is
    computed on the first ``kl_samples`` responses of each prompt only (``[P, kl_samples]``;
    default all) — its two teacher-forced forward passes cost about twice the sampling.
    """
    statistics = statistics or {}
    sampler = torch.Generator(device=prompts.device).manual_seed(seed)
    out = {"rewards": [], "lengths": [], "kl": [], **{name: [] for name in statistics}}
    for p in prompts.split(max(1, 4096 // samples)):
        repeated = p.repeat_interleave(samples, dim=0)
        rollouts = sample_responses(policy, repeated, max_len=max_len, generator=sampler)
        shape = (p.shape[0], samples)
        out["rewards"].append(reward_model(repeated, rollouts.responses).view(shape))
        out["lengths"].append(rollouts.lengths.view(shape))
        kl_shape = (p.shape[0], samples if kl_samples is None else min(kl_samples, samples))
        kl_rows = torch.arange(p.shape[0] * samples, device=p.device).view(shape)
        kl_rows = kl_rows[:, :kl_shape[1]].reshape(-1)
        out["kl"].append(sequence_kl(policy, reference, repeated[kl_rows],
                                     rollouts.responses[kl_rows]).view(kl_shape))
        for name, function in statistics.items():
            out[name].append(function(repeated, rollouts.responses).view(shape))
        if progress is not None:
            progress.update(p.shape[0])
    return {k: torch.cat(v).double().cpu().numpy() for k, v in out.items()}


def per_policy_summary(evaluation: dict, ns) -> dict:
    """One policy's numbers that need no other policy: means and its best-of-n frontier."""
    from tailext.evaluation import best_of_n

    unbiased = best_of_n(evaluation["rewards"], ns)
    grouped = best_of_n(evaluation["rewards"], ns, method="grouped")
    return {"mean_reward": float(evaluation["rewards"].mean()),
            "mean_length": float(evaluation["lengths"].mean()),
            "kl_to_base": float(evaluation["kl"].mean()),
            "unbiased_best_of_n": dict(zip(map(str, ns), unbiased.mean.tolist())),
            "unbiased_best_of_n_se": dict(zip(map(str, ns), unbiased.standard_error.tolist())),
            "grouped_best_of_n": dict(zip(map(str, ns), grouped.mean.tolist()))}


def summarize(evaluations: dict, config: PosttrainConfig, reference: str = REFERENCE_RULE,
              base: str = "base") -> dict:
    """Paired comparisons: each policy against ``reference`` (best-of-n, win/tie/loss) and
    against ``base`` (mean reward: did training move it?), by the paired prompt bootstrap.

    Policies missing from ``evaluations`` are left out; without ``reference`` there are no
    comparisons against it.
    """
    from tailext.evaluation import best_of_n, paired_bootstrap, win_tie_loss

    ns = best_of_n_sizes(config.eval_samples)
    unbiased = {name: best_of_n(ev["rewards"], ns) for name, ev in evaluations.items()}
    summary = {}
    for name, ev in evaluations.items():
        entry = {}
        if name != base and base in evaluations:
            moved = paired_bootstrap(
                ev["rewards"].mean(1), evaluations[base]["rewards"].mean(1),
                n_resamples=config.bootstrap,
                seed=generator(config.seed, PosttrainStream.BOOTSTRAP_BASE))
            entry["mean_reward_vs_base"] = {"diff": moved.mean_difference,
                                            "ci_low": moved.ci_low, "ci_high": moved.ci_high}
        if name != reference and reference in evaluations:
            against = unbiased[reference].per_prompt
            boot = paired_bootstrap(unbiased[name].per_prompt, against,
                                    n_resamples=config.bootstrap,
                                    seed=generator(config.seed, PosttrainStream.BOOTSTRAP))
            wtl = win_tie_loss(unbiased[name].per_prompt, against, tol=config.tie_tolerance)
            entry["vs_reference"] = {
                str(n): {"diff": float(boot.mean_difference[j]),
                         "ci_low": float(boot.ci_low[j]), "ci_high": float(boot.ci_high[j]),
                         "win": int(wtl.wins[j]), "tie": int(wtl.ties[j]),
                         "loss": int(wtl.losses[j])}
                for j, n in enumerate(ns)}
        summary[name] = entry
    return summary


def advantage_statistics(rewards, config: PosttrainConfig) -> dict:
    """How each rule weights groups of ``m`` base-policy rewards (held-out samples).

    Per rule: root-mean-square advantage, share of non-zero advantages, and the mean
    within-group correlation with GRPO's ``r − r̄`` — a large scale with a low correlation
    means a noisy gradient at this ``m``. The correlation is None when no group varies.
    """
    m = config.training.group_size
    groups = rewards[:, : rewards.shape[1] // m * m].reshape(-1, m)
    reference = rules.advantages(groups, REFERENCE_RULE)
    stats = {}
    for rule in config.rules:
        A = rules.advantages(groups, rule, **RULE_OPTIONS[rule])
        varying = (A.std(axis=1) > 0) & (reference.std(axis=1) > 0)
        corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(A[varying], reference[varying])]
        stats[rule] = {"rms": float(np.sqrt((A ** 2).mean())),
                       "nonzero_share": float((A != 0).mean()),
                       "corr_with_grpo": float(np.mean(corr)) if corr else None}
    return stats
