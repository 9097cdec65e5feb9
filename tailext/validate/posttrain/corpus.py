"""Synthetic prompts and "pretraining" corpus for the post-training validation.

A random *teacher* process writes responses: a peaked bigram chain over content tokens,
steered by the prompt (each prompt token adds a bias vector) and stopped by a hazard of
``EOS`` that grows with position. Fitting the policy to a fixed corpus drawn from it gives a
base model that is diverse (many plausible responses per prompt) but far from uniform,
like a pretrained LM before post-training. Everything is drawn from explicit seeds.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .model import EOS, FIRST_CONTENT, VOCAB, Policy, response_logits, response_mask

__all__ = ["PromptSplits", "Teacher", "draw_prompt_splits", "make_teacher",
           "teacher_next_logits", "teacher_corpus", "pretrain"]


class PromptSplits(NamedTuple):
    """Disjoint prompt sets ``[n, prompt_len]`` (content tokens)."""

    train: torch.Tensor
    validation: torch.Tensor
    test: torch.Tensor


class Teacher(NamedTuple):
    """Parameters of the teacher process (see module docstring)."""

    bigram: torch.Tensor        # [VOCAB, VOCAB] logits of the next token given the previous
    prompt_bias: torch.Tensor   # [VOCAB, VOCAB] bias added per prompt token
    eos_base: float
    eos_slope: float


def draw_prompt_splits(n_train: int, n_validation: int, n_test: int, *, prompt_len: int,
                       seed: int) -> PromptSplits:
    """Distinct random prompts, split into disjoint train / validation / test sets."""
    generator = torch.Generator().manual_seed(seed)
    n = n_train + n_validation + n_test
    # draw with surplus and keep first occurrences: prompts are distinct by construction
    draws = torch.randint(FIRST_CONTENT, VOCAB, (2 * n + 64, prompt_len), generator=generator)
    seen, unique = set(), []
    for row in draws.tolist():
        if tuple(row) not in seen:
            seen.add(tuple(row))
            unique.append(row)
    if len(unique) < n:
        raise ValueError(f"cannot draw {n} distinct prompts of length {prompt_len}.")
    prompts = torch.tensor(unique[:n])
    return PromptSplits(prompts[:n_train], prompts[n_train:n_train + n_validation],
                        prompts[n_train + n_validation:])


def make_teacher(seed: int, *, sharpness: float = 2.0, steering: float = 1.0,
                 eos_base: float = -3.5, eos_slope: float = 0.5) -> Teacher:
    """Random teacher: bigram logits ``sharpness·N(0,1)``, prompt bias ``steering·N(0,1)``.

    At response position ``t`` the teacher stops with probability
    ``sigmoid(eos_base + eos_slope·t)`` (the ``EOS`` logit is set relative to the content
    tokens' log-sum-exp), so typical responses have about 3–9 content tokens; ``SEP`` is
    never produced.
    """
    generator = torch.Generator().manual_seed(seed)
    bigram = sharpness * torch.randn(VOCAB, VOCAB, generator=generator)
    prompt_bias = steering * torch.randn(VOCAB, VOCAB, generator=generator)
    return Teacher(bigram, prompt_bias, eos_base, eos_slope)


def teacher_next_logits(teacher: Teacher, prompts, previous, position: int) -> torch.Tensor:
    """Teacher logits ``[n, VOCAB]`` of the token at response ``position``."""
    logits = teacher.bigram[previous] + teacher.prompt_bias[prompts].sum(1)
    logits[:, :FIRST_CONTENT] = float("-inf")
    content = torch.logsumexp(logits[:, FIRST_CONTENT:], dim=-1)
    logits[:, EOS] = content + teacher.eos_base + teacher.eos_slope * position
    return logits


def teacher_corpus(teacher: Teacher, prompts: torch.Tensor, *, max_len: int,
                   seed: int) -> torch.Tensor:
    """Responses ``[n, max_len]`` written by the teacher for each prompt row (EOS-padded)."""
    generator = torch.Generator().manual_seed(seed)
    previous = prompts[:, -1]
    finished = torch.zeros(prompts.shape[0], dtype=torch.bool)
    tokens = []
    for position in range(max_len):
        probs = torch.softmax(teacher_next_logits(teacher, prompts, previous, position), -1)
        token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        token = torch.where(finished, torch.full_like(token, EOS), token)
        finished |= token == EOS
        tokens.append(token)
        previous = token
    return torch.stack(tokens, dim=1)


def pretrain(policy: Policy, prompts: torch.Tensor, responses: torch.Tensor, *, steps: int,
             batch_size: int, lr: float, seed: int, progress=None) -> list[float]:
    """Fit ``policy`` to the corpus ``(prompts, responses)`` by next-token cross-entropy.

    Minibatches are drawn with a seeded generator; returns the loss of every step.
    """
    device = next(policy.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        rows = torch.randint(0, prompts.shape[0], (batch_size,), generator=generator)
        p, r = prompts[rows].to(device), responses[rows].to(device)
        logp = torch.log_softmax(response_logits(policy, p, r), dim=-1)
        nll = -logp.gather(-1, r.unsqueeze(-1)).squeeze(-1)
        mask = response_mask(r)
        loss = (nll * mask).sum() / mask.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
        if progress is not None:
            progress.update(1)
    return torch.stack(losses).tolist() if losses else []
