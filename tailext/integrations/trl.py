"""TRL's ``GRPOTrainer`` with the group advantage step replaced by a tailext rule.

Supported TRL: ``>=1.15.0,<1.17`` (tested: 1.15.0 and 1.16.0, whose advantage code is
identical); importing this module with any other TRL raises ``ImportError`` naming the range.

TRL computes GRPO advantages inline in ``GRPOTrainer._generate_and_score_completions``: the
rewards of all processes (``_calculate_rewards``, gathered, ``[B·G, n_funcs]``, ``NaN`` where a
reward function returned ``None``) are summed with ``reward_weights``, grouped as
``view(-1, G)`` (each prompt's ``G`` completions are adjacent; ``G = num_generations`` in
training, ``num_generations_eval`` in evaluation) and z-scored per group.
:class:`TailextGRPOTrainer` keeps everything else (generation, reference model, KL, clipping,
loss aggregation) and overrides two methods, calling TRL's own code for both:

- ``_calculate_rewards``: records the gathered per-function rewards;
- ``_generate_and_score_completions``: recomputes the advantages from those rewards with
  ``tailext.torch.advantages(rewards.view(-1, G), method, valid=scorable,
  small_groups="zero")`` on the rewards' device, replaces this process's slice of
  ``output["advantages"]`` and the logged advantages, and adds tailext's counts (and, if
  asked, the unbiased best-of-k) to TRL's metrics.

Not covered: ``RLOOTrainer`` (with its default ``beta=0.05`` it folds a KL term into the
rewards from per-token log-probabilities the trainer never returns, so its advantage step
cannot be recomputed from outside) and ``trl.experimental.async_grpo`` (advantages are
computed in a spawned rollout process; it needs vLLM).

:func:`word_tokenizer` builds a whitespace word-level tokenizer from a word list, for toy
models built in code (tests, ``tailext validate posttrain --trl``) that must not download one.
"""

from __future__ import annotations

from collections.abc import Mapping

import trl
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from .._arguments import integer_iv, shown
from ..rules import get_rule

__all__ = ["SUPPORTED_TRL", "TRL_EPS", "TailextGRPOTrainer", "word_tokenizer"]

#: TRL versions this adapter supports (the advantage code it relies on is identical in them).
SUPPORTED_TRL = ">=1.15.0,<1.17"

#: TRL's GRPO denominator offset: ``(r − mean) / (std + 1e-4)``; the default ``eps`` of
#: ``advantage_method="grpo"`` here, so that "grpo" in TRL is TRL's GRPO.
TRL_EPS = 1e-4


def _trl_version_iv(version: str) -> None:
    """``ImportError`` unless ``version`` is in :data:`SUPPORTED_TRL` (pre-releases refused)."""
    if Version(version) not in SpecifierSet(SUPPORTED_TRL):
        raise ImportError(f"tailext.integrations.trl supports trl{SUPPORTED_TRL} (tested with "
                          f"1.15.0 and 1.16.0), found trl {version}: it overrides private "
                          "GRPOTrainer methods whose contract is only checked for those "
                          "versions. Install one: pip install trl==1.16.0")


_trl_version_iv(trl.__version__)

from trl import GRPOTrainer  # noqa: E402  (after the version check)


def _options_iv(method, advantage_options):
    """The rule and its complete option set (``grpo`` gets TRL's eps unless given)."""
    rule = get_rule(method)
    if advantage_options is None:
        advantage_options = {}
    if not isinstance(advantage_options, Mapping):
        raise TypeError("`advantage_options` must be a mapping of the rule's options, got "
                        f"{shown(advantage_options)}.")
    options = dict(advantage_options)
    if rule.name == "grpo" and "eps" not in options:
        options["eps"] = TRL_EPS
    return rule, rule.resolve(options)


def _budgets_iv(eval_best_of):
    if eval_best_of is None:
        return ()
    if isinstance(eval_best_of, (str, bytes)) or not hasattr(eval_best_of, "__iter__"):
        raise TypeError("`eval_best_of` must be a sequence of budgets k (e.g. (1, 4)), got "
                        f"{shown(eval_best_of)}.")
    return tuple(integer_iv(k, "eval_best_of[i]", low=1) for k in eval_best_of)


def _config_iv(args, rule, options, budgets):
    """Reject a GRPOConfig the rule cannot honour, before any model is loaded."""
    if args.multi_objective_aggregation != "sum_then_normalize":
        raise ValueError("TailextGRPOTrainer needs multi_objective_aggregation="
                         "'sum_then_normalize' (the tailext rule replaces the normalization), "
                         f"got {args.multi_objective_aggregation!r}.")
    # GRPOConfig turns scale_rewards=True/False into "group"/"none".
    if args.scale_rewards != "group":
        hint = (" For unscaled advantages r - mean use advantage_method='mean_centred'."
                if args.scale_rewards == "none" else "")
        raise ValueError(f"TailextGRPOTrainer needs scale_rewards='group' (TRL's default: the "
                         "rule defines its own scaling), got "
                         f"scale_rewards={args.scale_rewards!r}.{hint}")
    minimum = int(rule.min_group_size(**options))
    if args.num_generations < minimum:
        shown_options = ", ".join(f"{k}={v!r}" for k, v in options.items() if k != "seed")
        raise ValueError(f"num_generations={args.num_generations} is too small for "
                         f"advantage_method={rule.name!r} ({shown_options}), which needs groups "
                         f"of at least {minimum} completions: set GRPOConfig(num_generations="
                         f"{minimum} or more) or choose a rule with a smaller minimum.")
    eval_generations = args.num_generations_eval or args.num_generations
    too_large = [k for k in budgets if k > eval_generations]
    if too_large:
        raise ValueError(f"`eval_best_of` budgets must be <= num_generations_eval = "
                         f"{eval_generations} (the completions per prompt in evaluation), got "
                         f"{too_large[0]}.")


class TailextGRPOTrainer(GRPOTrainer):
    r"""``trl.GRPOTrainer`` whose advantages come from a tailext rule.

    For each prompt's group of ``G`` completions with summed rewards
    :math:`r_g = \sum_f w_f r_{g,f}`, the advantages are
    :math:`A = \mathrm{rule}(r_1, \dots, r_G)` (e.g. TEA:
    :math:`A_i = \psi_+(r_i;\hat\tau) - \overline{\psi_+}`) instead of TRL's
    :math:`(r_i - \bar r)/(\mathrm{sd} + 10^{-4})`.

    Parameters
    ----------
    *args, **kwargs
        Passed to ``trl.GRPOTrainer`` unchanged.
    advantage_method : str, default "tea"
        A name from :func:`tailext.available_methods`. ``"grpo"`` without an explicit
        ``eps`` uses TRL's ``eps=1e-4`` (:data:`TRL_EPS`): it then gives exactly stock TRL's
        advantages.
    advantage_options : mapping, optional
        The rule's keyword options, e.g. ``{"tail_fraction": 0.25, "n_target": 128}``.
    eval_best_of : sequence of int, optional
        Budgets ``k`` of an evaluation metric: the unbiased best-of-k of each prompt's
        ``num_generations_eval`` rewards (see :mod:`tailext.integrations._metrics`), logged
        as ``eval_tailext/best@k`` (mean over prompts), and ``eval_tailext/pass@k`` over the
        prompts whose rewards are all 0 or 1 (where best@k is pass@k).

    Raises
    ------
    ValueError
        Unknown ``advantage_method``; ``num_generations`` below the rule's minimum group
        size (``tailext.get_rule(method).min_group_size(**options)``);
        ``scale_rewards`` other than ``"group"``; ``multi_objective_aggregation`` other than
        ``"sum_then_normalize"``; an ``eval_best_of`` budget above ``num_generations_eval``.
    TypeError
        An option the rule does not accept.

    Notes
    -----
    - **Scaling.** The rule defines its scaling: TRL's default ``scale_rewards="group"`` is
      accepted as "the rule's own"; ``"batch"`` and ``"none"`` are rejected (``"none"`` is
      ``advantage_method="mean_centred"``).
    - **Unscorable completions** (every reward function returned ``None``) are invalid
      rollouts, as in TRL: left out of their group's statistics, advantage 0. A group left
      with fewer completions than the rule's minimum gets advantage 0.
    - **Evaluation** with ``num_generations_eval`` below the rule's minimum (TRL users often
      evaluate with 2) is allowed: those groups get advantage 0 (evaluation advantages only
      enter the reported eval loss), with a :class:`tailext.SmallGroupWarning` once.
    - **Metrics.** Each generation batch appends to TRL's metrics (averaged over the
      logging interval like TRL's own): ``tailext/small_groups`` (groups given 0 for being
      too small), ``tailext/invalid_rollouts`` (unscorable completions) and
      ``tailext/tied_tail_groups`` (groups whose top rewards are tied, TEA family).
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

    def __init__(self, *args, advantage_method: str = "tea", advantage_options=None,
                 eval_best_of=None, **kwargs):
        rule, options = _options_iv(advantage_method, advantage_options)
        budgets = _budgets_iv(eval_best_of)
        config = kwargs.get("args", args[2] if len(args) > 2 else None)
        if config is not None:  # checked before TRL loads the model
            _config_iv(config, rule, options, budgets)
        super().__init__(*args, **kwargs)
        if config is None:  # TRL made its default GRPOConfig
            _config_iv(self.args, rule, options, budgets)
        self.advantage_method = rule.name
        self.advantage_options = options
        self.eval_best_of = budgets
        self._gathered_rewards = None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions,
                                                      completion_ids_list)
        self._gathered_rewards = rewards_per_func
        return rewards_per_func

    def _group_advantages(self, rewards_per_func, num_generations, mode):
        """All processes' advantages ``[B·G]``; logs the counts (one device sync)."""
        import torch

        from .. import torch as tailext_torch

        scorable = ~torch.isnan(rewards_per_func).all(dim=1)
        weights = self.reward_weights.to(rewards_per_func.device)
        rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
        result = tailext_torch.advantages(
            rewards.view(-1, num_generations), method=self.advantage_method,
            valid=scorable.view(-1, num_generations), small_groups="zero", return_info=True,
            **self.advantage_options)
        counts = torch.stack([result.small_groups, result.invalid, result.discrete_groups])
        small, invalid, tied = counts.tolist()
        metrics = self._metrics[mode]
        metrics["tailext/small_groups"].append(float(small))
        metrics["tailext/invalid_rollouts"].append(float(invalid))
        metrics["tailext/tied_tail_groups"].append(float(tied))
        if mode == "eval" and self.eval_best_of:
            self._log_best_of(torch.where(scorable, rewards, torch.nan), num_generations)
        return result.advantages.reshape(-1)

    def _log_best_of(self, rewards, num_generations):
        from ._metrics import best_of_by_prompt

        scores = rewards.double().cpu().numpy()
        prompts = [i // num_generations for i in range(len(scores))]
        estimate = best_of_by_prompt(scores, prompts, self.eval_best_of)
        metrics = self._metrics["eval"]
        for k in self.eval_best_of:
            metrics[f"tailext/best@{k}"].extend(estimate.values[k].tolist())
            binary = estimate.values[k][estimate.binary[k]]
            if binary.size:  # no key at all (not a None) when no prompt has 0/1 rewards
                metrics[f"tailext/pass@{k}"].extend(binary.tolist())

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        rewards_per_func, self._gathered_rewards = self._gathered_rewards, None
        mode = "train" if self.model.training else "eval"  # as TRL decides it
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        all_advantages = self._group_advantages(rewards_per_func, num_generations, mode)
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
