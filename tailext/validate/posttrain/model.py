"""The toy language model of the post-training validation: policy, sampler, reward model.

A sequence is ``[prompt (P tokens), SEP, response (T tokens)]`` over a vocabulary of
``VOCAB`` ids: ``EOS`` ends a response (everything after it is padding, also ``EOS``, masked
out), ``SEP`` separates prompt and response, and the remaining ids are content tokens.
Responses have a variable length (the number of content tokens before ``EOS``, at most
``T``), so "mean response length" is a meaningful statistic.

Everything is built from integer seeds through explicit ``torch.Generator`` objects and
lives on whatever device the caller chooses (no global RNG, no hard-coded device).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

__all__ = ["VOCAB", "EOS", "SEP", "FIRST_CONTENT", "Rollouts", "Policy", "build_policy",
           "context", "response_logits", "response_logprobs", "response_mask",
           "response_lengths", "sample_responses", "sequence_kl", "RewardModel",
           "build_reward_model"]

VOCAB = 32
EOS = 0
SEP = 1
FIRST_CONTENT = 2          # content tokens are FIRST_CONTENT .. VOCAB - 1


class Rollouts(NamedTuple):
    """Sampled responses.

    Attributes
    ----------
    responses : LongTensor ``[bs, T]``
        Response tokens; positions after the first ``EOS`` are ``EOS`` padding.
    mask : FloatTensor ``[bs, T]``
        1 for the tokens the policy chose (content tokens and the terminating ``EOS``).
    logprobs : FloatTensor ``[bs, T]``
        ``log π(token_t | prefix)`` of each chosen token at sampling time (0 where masked).
    lengths : LongTensor ``[bs]``
        Number of content tokens before ``EOS``.
    """

    responses: torch.Tensor
    mask: torch.Tensor
    logprobs: torch.Tensor
    lengths: torch.Tensor


class Policy(nn.Module):
    """Autoregressive GRU language model ``π(token_t | tokens_<t)``.

    ``logits = W · GRU(embed(tokens))``; a 2-layer GRU so that sampling is one cheap
    recurrent step per token (no attention cache needed).
    """

    def __init__(self, *, vocab=VOCAB, embed_dim=32, hidden=64, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens, state=None):
        """Next-token logits at every position: ``[bs, L] -> ([bs, L, vocab], state)``."""
        out, state = self.rnn(self.embed(tokens), state)
        return self.head(out), state


def build_policy(seed: int, device, **sizes) -> Policy:
    """A freshly initialised :class:`Policy`, deterministic from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)      # nn.Module init draws from the (forked) global CPU RNG
        policy = Policy(**sizes)
    return policy.to(device)


def context(prompts: torch.Tensor) -> torch.Tensor:
    """``[prompt, SEP]``: the tokens the response is conditioned on."""
    sep = torch.full((prompts.shape[0], 1), SEP, dtype=prompts.dtype, device=prompts.device)
    return torch.cat([prompts, sep], dim=1)


def response_logits(policy: Policy, prompts: torch.Tensor, responses: torch.Tensor):
    """Logits ``[bs, T, vocab]`` of each response token given its prefix (teacher forcing)."""
    tokens = torch.cat([context(prompts), responses[:, :-1]], dim=1)
    logits, _ = policy(tokens)
    return logits[:, prompts.shape[1]:]


def response_logprobs(policy: Policy, prompts, responses) -> torch.Tensor:
    """``log π(response_t | prompt, response_<t)`` for every position, ``[bs, T]``."""
    logp = torch.log_softmax(response_logits(policy, prompts, responses), dim=-1)
    return logp.gather(-1, responses.unsqueeze(-1)).squeeze(-1)


def response_mask(responses: torch.Tensor) -> torch.Tensor:
    """1 up to and including the first ``EOS``, 0 after it (float, ``[bs, T]``)."""
    is_eos = (responses == EOS).long()
    eos_before = torch.cumsum(is_eos, dim=1) - is_eos      # EOS tokens strictly before t
    return (eos_before == 0).to(torch.float32)


def response_lengths(responses: torch.Tensor) -> torch.Tensor:
    """Content tokens before the first ``EOS`` (``T`` if none)."""
    return ((responses != EOS).long().cumprod(dim=1)).sum(dim=1)


@torch.no_grad()
def sample_responses(policy: Policy, prompts: torch.Tensor, *, max_len: int,
                     generator: torch.Generator) -> Rollouts:
    """Sample one response per prompt row at temperature 1.

    Tokens after the first ``EOS`` are forced to ``EOS`` and masked, so the recorded
    log-probabilities are those of the tokens the policy actually chose; they equal
    :func:`response_logprobs` on the same sequences (up to float rounding).
    """
    logits, state = policy(context(prompts))
    step_logits = logits[:, -1]
    bs = prompts.shape[0]
    device = prompts.device
    finished = torch.zeros(bs, dtype=torch.bool, device=device)
    tokens, logprobs, masks = [], [], []
    for _ in range(max_len):
        logp = torch.log_softmax(step_logits, dim=-1)
        token = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
        token = torch.where(finished, torch.full_like(token, EOS), token)
        live = (~finished).to(torch.float32)
        tokens.append(token)
        logprobs.append(logp.gather(1, token.unsqueeze(1)).squeeze(1) * live)
        masks.append(live)
        finished = finished | (token == EOS)
        out, state = policy(token.unsqueeze(1), state)
        step_logits = out[:, -1]
    responses = torch.stack(tokens, dim=1)
    return Rollouts(responses, torch.stack(masks, dim=1), torch.stack(logprobs, dim=1),
                    response_lengths(responses))


@torch.no_grad()
def sequence_kl(policy: Policy, reference: Policy, prompts, responses) -> torch.Tensor:
    """Exact per-sequence ``Σ_t KL(π(·|prefix_t) ‖ π_ref(·|prefix_t))`` along the responses.

    Each term is an exact KL between two categorical distributions (so ≥ 0); averaged over
    responses sampled from ``policy`` it is an unbiased estimate of the sequence-level
    ``KL(π ‖ π_ref)``.
    """
    logp = torch.log_softmax(response_logits(policy, prompts, responses), dim=-1)
    logq = torch.log_softmax(response_logits(reference, prompts, responses), dim=-1)
    per_token = (logp.exp() * (logp - logq)).sum(-1)
    return (per_token * response_mask(responses)).sum(dim=1)


class RewardModel(nn.Module):
    """Frozen random network scoring ``(prompt, response)`` with a continuous reward.

    ``r = a · w · mean_{t in response} tanh(conv₃(embed(seq) + pos))_t + b``: a width-3
    convolution over the whole sequence (a response token's score depends on its neighbours
    and, near the start, on the prompt), averaged over the response's content tokens (so
    the reward is about content, not length; an empty response scores ``b``), then an affine
    calibration ``(a, b)`` fixed once from a calibration sample so that rewards are roughly
    standardised. Deterministic from its seed; no parameter requires a gradient.
    """

    def __init__(self, *, vocab=VOCAB, embed_dim=16, channels=32, max_len=64):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed_dim)
        self.position = nn.Parameter(torch.zeros(1, embed_dim, max_len))
        self.conv = nn.Conv1d(embed_dim, channels, kernel_size=3, padding=1)
        self.readout = nn.Linear(channels, 1)
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))

    def raw(self, prompts, responses):
        tokens = torch.cat([context(prompts), responses], dim=1)
        x = self.embed(tokens).transpose(1, 2) + self.position[..., :tokens.shape[1]]
        h = torch.tanh(self.conv(x)).transpose(1, 2)                 # [bs, L, channels]
        keep = response_mask(responses) * (responses != EOS)         # content tokens only
        pooled = (h[:, prompts.shape[1] + 1:] * keep.unsqueeze(-1)).sum(1)
        pooled = pooled / keep.sum(1, keepdim=True).clamp_min(1.0)
        return self.readout(pooled).squeeze(-1)

    @torch.no_grad()
    def forward(self, prompts, responses):
        scale, shift = self.calibration
        return scale * self.raw(prompts, responses) + shift

    @torch.no_grad()
    def calibrate(self, prompts, responses):
        """Fix ``(a, b)`` so that rewards of the given sample have mean 0 and sd 1."""
        raw = self.raw(prompts, responses)
        self.calibration.copy_(torch.stack([1.0 / raw.std(), -raw.mean() / raw.std()]))


def build_reward_model(seed: int, device) -> RewardModel:
    """A frozen :class:`RewardModel` with weights drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    model = RewardModel()

    def normal(shape, std):
        return torch.randn(shape, generator=generator) * std

    with torch.no_grad():
        model.embed.weight.copy_(normal(model.embed.weight.shape, 1.0))
        model.position.copy_(normal(model.position.shape, 0.5))
        fan_in = model.conv.in_channels * model.conv.kernel_size[0]
        model.conv.weight.copy_(normal(model.conv.weight.shape, 1.5 / fan_in ** 0.5))
        model.conv.bias.copy_(normal(model.conv.bias.shape, 0.5))
        model.readout.weight.copy_(normal(model.readout.weight.shape, 1.0))
        model.readout.bias.zero_()
    model.requires_grad_(False)
    return model.to(device).eval()
