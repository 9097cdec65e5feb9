"""Adapters that plug tailext's advantage rules into RL trainers.

Each submodule imports its trainer only when used, and is tested against a pinned release
of that trainer (``requirements-integrations.txt``):

- :mod:`tailext.integrations.verl`: ``register()`` adds every rule to verl's advantage
  estimator registry (``algorithm.adv_estimator=tea``).
- :mod:`tailext.integrations.trl`: ``TailextGRPOTrainer``, TRL's ``GRPOTrainer`` with the
  group advantage step replaced by a tailext rule.
"""
