"""Adapters that plug tailext's advantage rules into RL trainers.

Each submodule imports its trainer only when used, and is tested against pinned releases
of that trainer (``requirements-integrations.txt``):

- :mod:`tailext.integrations.verl`: every rule as a verl advantage estimator
  (``algorithm.adv_estimator=tea``), registered in every verl process by the
  ``verl.plugins`` entry point :mod:`tailext.integrations.verl_plugin`;
  :mod:`tailext.integrations.verl_trainer`: the ``tailext_sync`` v1 trainer mode with the
  unbiased best@k/pass@k validation metrics and the advantage counts;
- :mod:`tailext.integrations.trl`: ``TailextGRPOTrainer``, TRL's ``GRPOTrainer`` (TRL
  ``>=1.15.0,<1.17``) with the group advantage step replaced by a tailext rule.
"""
