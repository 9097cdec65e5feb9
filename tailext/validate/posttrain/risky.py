"""The "risky" reward of the post-training study: the policy controls the spread of its rewards.

``r(x, y) = r₀(x, y) + γ c(y) z(x, y) − ρ c(y)`` (docs/posttrain.md#the-risky-task), with

- ``r₀`` the frozen reward model of the control task
  (:class:`~tailext.validate.posttrain.model.RewardModel`);
- ``c(y) ∈ [0, 1]`` the share of the response's content tokens that are *risky* (a fixed set
  of token ids; 0 for an empty response): the policy sets it through its tokens;
- ``z(x, y)`` a deterministic pseudo-random standard normal of the whole token sequence
  (:func:`sequence_normal`): part of the response, like the simulator's per-candidate noise
  ``ε`` (:mod:`tailext.validate.simulator.bandit`), but nothing the policy sees predicts it;
- ``γ`` the spread and ``ρ`` the mean cost of risk.

Under a policy that keeps its responses diverse, ``E[z] = 0``: risk costs ``ρ c`` of mean
reward, so mean-seeking training avoids it, while the best of ``n`` responses gains about
``γ c √(2 log n)`` from it, without a ceiling. This is the simulator's risky feature
(``γ`` widens the noise, ``ρ`` its mean cost) expressed in tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from .model import EOS, FIRST_CONTENT, VOCAB, context, response_mask

__all__ = ["MODULUS", "RiskyReward", "build_risky_reward", "risky_share", "sequence_normal"]

#: The Mersenne prime 2³¹ − 1: every product of two residues fits in int64 exactly.
MODULUS = 2 ** 31 - 1


def _hash_constants(seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(2, MODULUS - 1, (4,), generator=generator, dtype=torch.int64)


def sequence_normal(tokens: torch.Tensor, constants: torch.Tensor) -> torch.Tensor:
    """A standard normal per row of ``tokens`` (LongTensor ``[bs, L]``), deterministic.

    ``h = Σ_t (tok_t + 1) A^(L−1−t) mod p`` (Horner, ``p`` = :data:`MODULUS`), then two
    rounds of ``h ← (h² + C) · B mod p`` scramble it, and ``z = Φ⁻¹((h + ½)/p)`` in float64.
    Rows that differ in any token get unrelated values (up to hash collisions, probability
    ~1/p); float32 is returned.
    """
    A, B, C, _ = (int(c) for c in constants)
    h = torch.zeros(tokens.shape[0], dtype=torch.int64, device=tokens.device)
    for t in range(tokens.shape[1]):
        h = (h * A + tokens[:, t].to(torch.int64) + 1) % MODULUS
    for _ in range(2):
        h = ((h * h + C) % MODULUS) * B % MODULUS
    u = (h.to(torch.float64) + 0.5) / MODULUS
    return torch.special.ndtri(u).to(torch.float32)


def risky_share(responses: torch.Tensor, risky: torch.Tensor) -> torch.Tensor:
    """``c(y)``: the share of content tokens (before the first ``EOS``) whose id is risky;
    0 for an empty response. ``risky`` is a bool ``[VOCAB]`` table."""
    content = response_mask(responses) * (responses != EOS)
    hits = (risky[responses].to(content.dtype) * content).sum(1)
    return hits / content.sum(1).clamp_min(1.0)


class RiskyReward(nn.Module):
    """``r₀ + γ c z − ρ c`` (see the module docstring); frozen, deterministic.

    Parameters
    ----------
    base : RewardModel
        ``r₀``, the control task's frozen reward model.
    risky_tokens : sequence of int
        The risky content-token ids.
    gamma, rho : float
        Spread ``γ ≥ 0`` and mean cost ``ρ`` of risk.
    hash_seed : int
        Seed of the constants of :func:`sequence_normal`.
    """

    def __init__(self, base: nn.Module, risky_tokens, *, gamma: float, rho: float,
                 hash_seed: int):
        super().__init__()
        self.base, self.gamma, self.rho = base, float(gamma), float(rho)
        device = base.calibration.device
        table = torch.zeros(VOCAB, dtype=torch.bool)
        table[torch.as_tensor(list(risky_tokens), dtype=torch.long)] = True
        self.register_buffer("risky", table.to(device))
        self.register_buffer("constants", _hash_constants(hash_seed).to(device))

    @torch.no_grad()
    def parts(self, prompts, responses) -> dict:
        """``{"base": r₀, "share": c, "noise": z}``, each ``[bs]``."""
        tokens = torch.cat([context(prompts), responses], dim=1)
        return {"base": self.base(prompts, responses),
                "share": risky_share(responses, self.risky),
                "noise": sequence_normal(tokens, self.constants)}

    @torch.no_grad()
    def forward(self, prompts, responses):
        p = self.parts(prompts, responses)
        return p["base"] + (self.gamma * p["noise"] - self.rho) * p["share"]


def build_risky_reward(base: nn.Module, *, gamma: float, rho: float, n_risky: int,
                       seed: int) -> RiskyReward:
    """A :class:`RiskyReward` on ``base`` whose ``n_risky`` risky ids are drawn from ``seed``
    among the content tokens (the hash constants come from the same seed)."""
    generator = torch.Generator().manual_seed(seed)
    content = torch.arange(FIRST_CONTENT, VOCAB)
    risky = content[torch.randperm(content.numel(), generator=generator)[:n_risky]]
    return RiskyReward(base, sorted(risky.tolist()), gamma=gamma, rho=rho,
                       hash_seed=int(torch.randint(0, 2 ** 62, (1,), generator=generator)))
