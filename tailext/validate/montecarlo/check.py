"""The Monte Carlo checks as resumable runs: one cell per (study, group size ``m``).

A *study* is one :class:`~tailext.validate.montecarlo.engine.SimulationConfig` (a model, its
estimators, an ``m`` grid and replication counts); ``appendix-e`` has one, ``rates`` one per
theorem configuration. A cell ``"<study>/m=<m>"`` simulates every replication of that ``m``
and stores one summary row per estimator (:func:`~tailext.validate.montecarlo.summary.summary_rows`).
Rows depend only on the seed, the study and ``m`` (each block of replications has its own
stream), so cells can be computed in any order, across interruptions, with the same rows.
"""

from __future__ import annotations

from ..progress import bar
from ..runner import CellCheck
from .engine import SimulationConfig, simulate_cell
from .summary import config_record, model_constants, summary_rows

__all__ = ["MonteCarloCheck", "cell_key", "study_rows"]


def cell_key(study: str, m: int) -> str:
    return f"{study}/m={m}"


def study_rows(record: dict, study: str) -> list[dict]:
    """Every finished row of ``study``, estimator by estimator, ``m`` ascending."""
    rows = [row for key, cell in record["results"]["cells"].items()
            if key.split("/m=")[0] == study for row in cell["rows"]]
    order = list(dict.fromkeys(row["estimator"] for row in rows))
    return sorted(rows, key=lambda row: (order.index(row["estimator"]), row["m"]))


class MonteCarloCheck(CellCheck):
    """Cells of one or more studies; subclasses add derived results and outputs.

    ``studies`` maps a study name to its configuration; ``prompt_batches`` are the ``B`` of
    the reported ``MSE_B = bias² + variance / B``; ``settings`` adds check-level parameters
    to the recorded configuration.
    """

    def __init__(self, studies: dict[str, SimulationConfig], *, mode: str, seed: int,
                 progress: bool, prompt_batches=(1,), settings=None):
        self.studies = studies
        self.mode, self.seed, self.progress = mode, seed, progress
        self.prompt_batches = tuple(prompt_batches)
        self.configuration = {"studies": {name: config_record(config)
                                          for name, config in studies.items()},
                              "prompt_batches": list(self.prompt_batches),
                              **(settings or {})}
        self.cells = [cell_key(name, m) for name, config in studies.items()
                      for m in config.group_sizes]
        self._bar = None

    def _locate(self, key: str):
        study, m = key.split("/m=")
        config = self.studies[study]
        m = int(m)
        return config, m, config.replications[config.group_sizes.index(m)]

    def cell_bar(self, todo):
        total = sum(self._locate(key)[2] for key in todo)
        self._bar = bar(total=total, desc=self.name, enabled=self.progress, unit="rep")
        return self._bar

    def advance(self, progress, key):  # compute() advanced it replication by replication
        pass

    def compute(self, key, record):
        config, m, count = self._locate(key)
        if self._bar is not None:
            self._bar.set_postfix_str(key)
        stats = simulate_cell(config, m, count,
                              advance=None if self._bar is None else self._bar.update)
        return {"rows": summary_rows(config, {m: stats}, self.prompt_batches)}

    def derive(self, record):
        return {"model": {name: model_constants(config)
                          for name, config in self.studies.items()}}
