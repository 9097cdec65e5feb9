"""Policy-gradient training of the exact bandit with any registered advantage rule.

One *cell* is one rule at one group size ``m``; its runs (seeds × KL coefficients) are
stacked along a leading axis and trained together in numpy. Per step and run: a batch of
training prompts, ``m`` sampled responses per prompt, advantages of the rule
(:func:`tailext.validate.rules.advantages`), the exact score ``φ − E_π φ``, the
exact KL gradient, and an Adam ascent step. Every ``validate_every`` steps the exact
top-``k``-of-``n`` mean on the validation prompts is computed and the best checkpoint kept
(the paper's top-10-of-32 selection, here without sampling noise).

Common random numbers: for a given seed and ``m`` every rule sees the same prompt batches
and the same uniforms for inverse-CDF sampling (stream ``(TRAINING, seed, m)`` of
:mod:`tailext.validate.seeding`), so differences between rules are paired.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import rules
from ..seeding import SimulatorStream, generator
from .bandit import PromptSet, cdf, kl_gradient, policy, sample_candidates, top_k_of_n_mean
from .config import TrainConfig

__all__ = ["Adam", "rule_options", "exact_selection_score", "policy_gradient", "CellResult",
           "train_cell"]


class Adam:
    """Adam (Kingma & Ba 2015) for a stack of parameter vectors, as gradient *ascent*."""

    def __init__(self, shape, learning_rate, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.b1, self.b2), self.eps = learning_rate, betas, eps
        self.m1, self.m2, self.t = np.zeros(shape), np.zeros(shape), 0

    def step(self, params, grad):
        self.t += 1
        self.m1 = self.b1 * self.m1 + (1 - self.b1) * grad
        self.m2 = self.b2 * self.m2 + (1 - self.b2) * grad * grad
        m1_hat = self.m1 / (1 - self.b1 ** self.t)
        m2_hat = self.m2 / (1 - self.b2 ** self.t)
        return params + self.lr * m1_hat / (np.sqrt(m2_hat) + self.eps)


def rule_options(label, n_target, rng):
    """Options passed to rule ``label``: ``n_target`` and a ``seed`` Generator, for the rules
    that take them."""
    return rules.options(label, n_target=n_target, seed=rng)


def exact_selection_score(theta, prompts: PromptSet, config: TrainConfig):
    """The checkpoint-selection metric, exactly: the mean over prompts of the expected mean
    of the top ``validation_top`` of ``validation_samples`` draws, per row of ``theta[R, d]``."""
    probs, _ = policy(theta, prompts.features)  # [P, R, K]
    return top_k_of_n_mean(prompts.rewards[:, None], cdf(probs), config.validation_samples,
                           config.validation_top).mean(axis=0)


def policy_gradient(theta, features, rewards, uniforms, label, options):
    """Stochastic policy gradient of each run plus the exact policy statistics it used.

    ``theta[S, L, d]`` (runs: seeds × KL values), ``features[S, B, K, d]`` and sorted
    ``rewards[S, B, K]`` of each seed's prompt batch, ``uniforms[S, B, m]``. Returns
    ``(gradient[S, L, d], probs[S, B, L, K], mean_features[S, B, L, d])``.
    """
    S, L, _ = theta.shape
    B, m = uniforms.shape[1:]
    probs, mean_phi = policy(theta[:, None], features)
    picks = sample_candidates(cdf(probs), np.broadcast_to(uniforms[:, :, None], (S, B, L, m)))
    sampled_rewards = np.take_along_axis(rewards[:, :, None], picks, axis=-1)
    scores = (np.take_along_axis(features[:, :, None], picks[..., None], axis=-2)
              - mean_phi[..., None, :])
    adv = rules.advantages(sampled_rewards.reshape(S * B * L, m), label, **options)
    grad = np.einsum("sblm,sblmd->sld", adv.reshape(S, B, L, m), scores) / (B * m)
    return grad, probs, mean_phi


class CellResult(NamedTuple):
    """Trained runs of one (rule, m) cell, runs ordered seed-major then KL.

    ``selected_theta[R, d]`` (best validation checkpoint), ``best_validation[R]``,
    ``selected_step[R]``, ``validation_curve[R, n_evals]`` with ``eval_steps``.
    """

    selected_theta: np.ndarray
    best_validation: np.ndarray
    selected_step: np.ndarray
    validation_curve: np.ndarray
    eval_steps: np.ndarray


def train_cell(train: PromptSet, validation: PromptSet, label: str, m: int, seeds,
               config: TrainConfig, *, n_target: int, master_seed: int) -> CellResult:
    """Train ``len(seeds) × len(config.kl_coefs)`` runs of rule ``label`` at group size ``m``."""
    seeds, kls = list(seeds), np.asarray(config.kl_coefs, dtype=np.float64)
    S, L, d, B = len(seeds), len(kls), train.features.shape[2], config.prompts_per_step
    streams = [generator(master_seed, SimulatorStream.TRAINING, s, m) for s in seeds]
    rule_rng = generator(master_seed, SimulatorStream.RULE, rules.index(label), m)
    options = rule_options(label, n_target, rule_rng)
    theta = np.zeros((S, L, d))
    adam = Adam(theta.shape, config.learning_rate, config.adam_betas, config.adam_eps)
    eval_steps = [0]
    curve = [exact_selection_score(theta.reshape(-1, d), validation, config)]
    best_val = curve[0].copy()
    best_theta, best_step = theta.reshape(-1, d).copy(), np.zeros(S * L, dtype=int)
    for step in range(1, config.steps + 1):
        draws = [(g.choice(len(train), size=B, replace=False), g.random((B, m)))
                 for g in streams]
        index = np.stack([i for i, _ in draws])  # [S, B]: the same batch for every KL value
        uniforms = np.stack([u for _, u in draws])
        features, rewards = train.features[index], train.rewards[index]
        grad, probs, mean_phi = policy_gradient(theta, features, rewards, uniforms, label,
                                                options)
        kl_grad = kl_gradient(theta[:, None], features, probs, mean_phi)  # [S, B, L, d]
        theta = adam.step(theta, grad - kls[None, :, None] * kl_grad.mean(axis=1))
        if step % config.validate_every == 0 or step == config.steps:
            flat = theta.reshape(-1, d)
            score = exact_selection_score(flat, validation, config)
            eval_steps.append(step)
            curve.append(score)
            better = score > best_val
            best_val = np.where(better, score, best_val)
            best_theta[better] = flat[better]
            best_step[better] = step
    return CellResult(best_theta, best_val, best_step, np.stack(curve, axis=1),
                      np.array(eval_steps))
