"""TRL's ``GRPOTrainer`` with the group advantage step replaced by a tailext rule.

TRL (1.16) computes GRPO advantages inline in ``GRPOTrainer._generate_and_score_completions``:
the rewards of all processes (``_calculate_rewards``, gathered, ``[B·G, n_funcs]``) are summed
with ``reward_weights``, grouped as ``view(-1, num_generations)`` (each prompt's ``G``
completions are adjacent) and z-scored per group. :class:`TailextGRPOTrainer` keeps
everything else (generation, reference model, KL, clipping, loss aggregation) and overrides
two methods, calling TRL's own code for both:

- ``_calculate_rewards``: records the gathered per-function rewards;
- ``_generate_and_score_completions``: recomputes the advantages from those rewards with
  ``tailext.torch.advantages(rewards.view(-1, G), method, **options)`` on the rewards' device,
  and replaces this process's slice of ``output["advantages"]`` (and the logged advantages).

TRL's ``scale_rewards`` does not apply: the rule defines its own scaling (``grpo_z`` with
``eps=1e-4, ddof=1`` reproduces TRL's ``scale_rewards="group"``).

:func:`word_tokenizer` builds a whitespace word-level tokenizer from a word list, for toy
models built in code (tests, ``tailext validate posttrain --trl``) that must not download one.
"""

from __future__ import annotations

from trl import GRPOTrainer

from ..rules import get_rule

__all__ = ["TailextGRPOTrainer", "word_tokenizer"]


class TailextGRPOTrainer(GRPOTrainer):
    r"""``trl.GRPOTrainer`` whose advantages come from a tailext rule.

    For each prompt's group of ``G = num_generations`` completions with summed rewards
    :math:`r_g = \sum_f w_f r_{g,f}`, the advantages are
    :math:`A = \mathrm{rule}(r_1, \dots, r_G)` (e.g. TEA:
    :math:`A_i = \psi_+(r_i;\hat\tau) - \overline{\psi_+}`) instead of TRL's
    :math:`(r_i - \bar r)/(\mathrm{sd} + 10^{-4})`.

    Parameters
    ----------
    *args, **kwargs
        Passed to ``trl.GRPOTrainer`` unchanged.
    advantage_method : str, default "tea"
        A name from :func:`tailext.available_methods`.
    advantage_options : mapping, optional
        The rule's keyword options, e.g. ``{"tail_fraction": 0.25, "n_target": 128}``.

    Raises
    ------
    ValueError
        Unknown ``advantage_method``; ``multi_objective_aggregation`` other than
        ``"sum_then_normalize"`` (the rule replaces the normalization).
    TypeError
        An option the rule does not accept.

    Notes
    -----
    - Every completion needs a finite reward: a completion for which every reward function
      returned ``None`` (TRL zeroes its advantage) raises ``ValueError`` here, because a
      tail fit over a group with a missing reward is undefined.
    - The rule must accept the group size ``num_generations`` (e.g. TEA needs enough
      rollouts for its tail, Prefix-TEA more); an evaluation pass uses
      ``num_generations_eval``.
    - Works with several processes: rewards are gathered by TRL before grouping, and each
      process keeps its slice, exactly as TRL does.

    Examples
    --------
    >>> from trl import GRPOConfig  # doctest: +SKIP
    >>> trainer = TailextGRPOTrainer(  # doctest: +SKIP
    ...     model=model, reward_funcs=reward_fn, train_dataset=dataset,
    ...     args=GRPOConfig(output_dir="out", num_generations=16),
    ...     advantage_method="tea", advantage_options={"n_target": 128})
    >>> trainer.train()  # doctest: +SKIP
    """

    def __init__(self, *args, advantage_method: str = "tea", advantage_options=None, **kwargs):
        options = dict(advantage_options or {})
        get_rule(advantage_method).resolve(options)
        super().__init__(*args, **kwargs)
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError("TailextGRPOTrainer needs multi_objective_aggregation="
                             "'sum_then_normalize' (the tailext rule replaces the "
                             f"normalization), got {self.multi_objective_aggregation!r}.")
        self.advantage_method = advantage_method
        self.advantage_options = options
        self._gathered_rewards = None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions,
                                                      completion_ids_list)
        self._gathered_rewards = rewards_per_func
        return rewards_per_func

    def _group_advantages(self, rewards_per_func, num_generations):
        import torch

        from .. import torch as tailext_torch

        unscorable = torch.isnan(rewards_per_func).all(dim=1)
        if bool(unscorable.any()):
            raise ValueError(f"{int(unscorable.sum())} completion(s) have no reward (every "
                             "reward function returned None); tailext rules need a finite "
                             "reward for every completion of a group.")
        weights = self.reward_weights.to(rewards_per_func.device)
        rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
        grouped = rewards.view(-1, num_generations)
        return tailext_torch.advantages(grouped, method=self.advantage_method,
                                        **self.advantage_options).reshape(-1)

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        rewards_per_func, self._gathered_rewards = self._gathered_rewards, None
        num_generations = self.num_generations if self.model.training \
            else self.num_generations_eval
        all_advantages = self._group_advantages(rewards_per_func, num_generations)
        local = output["advantages"].shape[0]
        start = self.accelerator.process_index * local
        output["advantages"] = all_advantages[start:start + local].to(
            output["advantages"].device, output["advantages"].dtype)
        # TRL logged its own advantages for the completions table; log ours instead.
        logged = self._logs["advantages"]
        for _ in range(min(len(all_advantages), len(logged))):
            logged.pop()
        logged.extend(all_advantages.tolist())
        return output


def _word_tokenizer_iv(vocabulary, specials):
    words = list(vocabulary)
    if not words or not all(isinstance(w, str) and w and not any(c.isspace() for c in w)
                            for w in words):
        raise ValueError("vocabulary must be a non-empty sequence of non-empty words without "
                         f"whitespace, got {vocabulary!r}.")
    repeated = sorted({w for w in words if words.count(w) > 1})
    if repeated:
        raise ValueError(f"vocabulary has repeated words {repeated}; a word's id is its "
                         "position, so words must be distinct.")
    for role, token in specials.items():
        if token is not None and token not in words:
            raise ValueError(f"{role}={token!r} is not in the vocabulary.")
    return words


def word_tokenizer(vocabulary, *, eos_token: str, pad_token: str | None = None,
                   unk_token: str | None = None, bos_token: str | None = None):
    """Whitespace word-level ``PreTrainedTokenizerFast`` whose id of ``vocabulary[i]`` is ``i``.

    ``encode("w3 w1") == [id("w3"), id("w1")]``; decoding joins words with single spaces.
    Meant for tiny models built in code (no download): a policy's token ids can be chosen to
    equal the word ids.

    Parameters
    ----------
    vocabulary : sequence of str
        Distinct words without whitespace; special tokens are words of it too.
    eos_token : str
        End-of-sequence word (TRL stops completions at it).
    pad_token, unk_token, bos_token : str, optional
        Padding (may equal ``eos_token``), unknown-word and beginning-of-sequence words;
        ``unk_token`` is also what an out-of-vocabulary word encodes to.

    Returns
    -------
    transformers.PreTrainedTokenizerFast

    Raises
    ------
    ValueError
        Empty vocabulary, a word that is empty or holds whitespace, repeated words, or a
        special token that is not in the vocabulary.

    Notes
    -----
    Without ``unk_token`` an unknown word cannot be encoded (the backend raises).

    Examples
    --------
    >>> tok = word_tokenizer(["<eos>", "a", "b"], eos_token="<eos>", pad_token="<eos>")
    >>> tok("b a b")["input_ids"]
    [2, 1, 2]
    >>> tok.decode([1, 2, 0], skip_special_tokens=True)
    'a b'
    """
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    specials = {"eos_token": eos_token, "pad_token": pad_token, "unk_token": unk_token,
                "bos_token": bos_token}
    words = _word_tokenizer_iv(vocabulary, specials)
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)},
                                         unk_token=unk_token))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece()          # joins words with single spaces
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, **{k: v for k, v in specials.items() if v is not None})
