"""Paired comparisons of ``tailext validate posttrain-risky``: every rule (and the base
model) against GRPO, per task and advantage scale.

For each training seed the unbiased best-of-n of every held-out prompt is computed from the
selected policy's ``M`` samples (:func:`tailext.evaluation.best_of_n`); the (seed, prompt)
pairs of all seeds are pooled, the paired bootstrap resamples them (stream ``(BOOTSTRAP,)``
of the first seed: every comparison resamples the same pairs) and win/tie/loss counts them.
The per-seed differences (prompt means) are kept too: the bootstrap sees prompt noise for
fixed trained policies, not the training-seed noise, which only the seeds show.
"""

from __future__ import annotations

import numpy as np

from .study_config import REFERENCE_RULE

__all__ = ["compare", "versus"]


def versus(ours: dict, reference: dict, config, ns) -> dict:
    """``ours − reference`` (both ``{seed: rewards[P, M]}``) at every ``n`` of ``ns``."""
    from tailext.evaluation import best_of_n, paired_bootstrap, win_tie_loss

    from ..seeding import PosttrainStream, generator

    seeds = sorted(ours)
    mine = [best_of_n(ours[s], ns).per_prompt for s in seeds]
    theirs = [best_of_n(reference[s], ns).per_prompt for s in seeds]
    a, b = np.concatenate(mine), np.concatenate(theirs)
    boot = paired_bootstrap(a, b, n_resamples=config.bootstrap,
                            seed=generator(config.seeds[0], PosttrainStream.BOOTSTRAP))
    wtl = win_tie_loss(a, b, tol=config.tie_tolerance)
    per_seed = np.stack([(x - y).mean(axis=0) for x, y in zip(mine, theirs)])  # [S, C]
    return {str(n): {"diff": float(boot.mean_difference[j]), "ci_low": float(boot.ci_low[j]),
                     "ci_high": float(boot.ci_high[j]), "win": int(wtl.wins[j]),
                     "tie": int(wtl.ties[j]), "loss": int(wtl.losses[j]),
                     "per_seed": per_seed[:, j].tolist(),
                     "seeds_ahead": int((per_seed[:, j] > 0).sum())}
            for j, n in enumerate(ns)}


def compare(check, record) -> dict:
    """``{"ns", "comparisons": {"TASK/SCALE": {name: versus(...)}}}`` for the finished
    evaluations (``name``: a rule, or ``base``)."""
    from .evaluation import best_of_n_sizes

    config = check.config
    ns = best_of_n_sizes(config.eval_samples)
    comparisons = {}
    for task in config.tasks:
        for scale in config.scales:
            reference = check.evaluations(task, scale, REFERENCE_RULE, record)
            if reference is None:
                continue
            group = {}
            base = check.base_evaluations(task, record)
            if base is not None:
                group["base"] = versus(base, reference, config, ns)
            for rule in config.rules:
                if rule == REFERENCE_RULE:
                    continue
                ours = check.evaluations(task, scale, rule, record)
                if ours is not None:
                    group[rule] = versus(ours, reference, config, ns)
            comparisons[f"{task}/{scale}"] = group
    return {"ns": ns, "comparisons": comparisons}
