"""Importing this module registers every tailext rule with verl (:func:`tailext.integrations.verl.register`).

verl imports it by itself in every process that imports verl, including its Ray workers
where ``compute_advantage`` runs, through either

- the ``verl.plugins`` entry point declared in tailext's ``pyproject.toml`` (automatic when
  tailext is installed; ``VERL_USE_EXTERNAL_PLUGINS=none`` turns it off), or
- ``VERL_USE_EXTERNAL_MODULES=tailext.integrations.verl_plugin`` in the environment.
"""

from .verl import register

ESTIMATOR_NAMES = register()
