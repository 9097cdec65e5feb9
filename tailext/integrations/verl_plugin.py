"""verl's entry point into tailext: registers the estimators and the ``tailext_sync`` trainer.

What registers tailext's rules in a verl run is the ``verl.plugins`` entry point that
installing tailext declares (``pyproject.toml``): ``import verl`` loads this module in every
process that imports verl — the driver, the ``TaskRunner`` Ray actor where the trainer calls
``compute_advantage``, and every worker. ``VERL_USE_EXTERNAL_PLUGINS=none`` turns entry
points off; ``VERL_USE_EXTERNAL_MODULES=tailext.integrations.verl_plugin`` loads this module
without an installed entry point. A ``register()`` call in the driver script does not reach
the ``TaskRunner``.

Cheap to load: this module imports only the standard library. It installs an import hook
that runs, right after verl itself imports the module concerned,

- :func:`tailext.integrations.verl.register` when ``verl.trainer.ppo.core_algos`` (verl's
  estimator registry) has been imported — so processes that never compute advantages or
  losses (rollout servers) never load tailext's rules, torch code or kernels;
- ``import tailext.integrations.verl_trainer`` (the ``tailext_sync`` v1 trainer mode) when
  ``verl.trainer.ppo.v1`` has been imported.

A module already imported when this one loads gets its registration at once. verl logs a
plugin that fails to import at DEBUG level only (the user would see nothing but ``Unknown
advantage estimator``), so every failure of a registration is caught here and shown as a
``RuntimeWarning`` naming what was not registered and why.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import warnings

__all__ = ["AFTER_IMPORT"]


def _register_estimators():
    importlib.import_module("tailext.integrations.verl").register()


def _register_trainer():
    importlib.import_module("tailext.integrations.verl_trainer")


#: verl module → (what is registered after it is imported, the registration).
AFTER_IMPORT = {
    "verl.trainer.ppo.core_algos": ("the tailext advantage estimators", _register_estimators),
    "verl.trainer.ppo.v1": ("the tailext_sync trainer mode", _register_trainer),
}


def _run(name: str) -> None:
    what, registration = AFTER_IMPORT[name]
    try:
        registration()
    except Exception as error:  # shown, never raised into verl's import
        warnings.warn(f"tailext: {what} were NOT registered with verl ({type(error).__name__}: "
                      f"{error}); set algorithm.adv_estimator to a verl estimator or fix the "
                      "tailext installation.", RuntimeWarning, stacklevel=2)


class _RegisterAfter(importlib.abc.Loader):
    """The module's own loader, then its registration."""

    def __init__(self, loader, name):
        self._loader, self._name = loader, name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _run(self._name)

    def __getattr__(self, attribute):  # get_source, get_resource_reader, ... of the loader
        return getattr(self._loader, attribute)


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Finds the pending modules with the other finders and wraps their loaders."""

    def __init__(self, names):
        self.pending = set(names)

    def find_spec(self, name, path, target=None):
        if name not in self.pending:
            return None
        self.pending.discard(name)
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisterAfter(spec.loader, name)
                return spec
        return None


def _install() -> None:
    pending = [name for name in AFTER_IMPORT if name not in sys.modules]
    if pending and not any(isinstance(f, _AfterImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImportFinder(pending))
    for name in AFTER_IMPORT:
        if name in sys.modules:
            _run(name)


try:
    _install()
except Exception as error:  # pragma: no cover - stdlib only; kept so verl never hides it
    warnings.warn(f"tailext: the verl plugin could not install its import hook "
                  f"({type(error).__name__}: {error}); tailext estimators are not registered.",
                  RuntimeWarning, stacklevel=2)
