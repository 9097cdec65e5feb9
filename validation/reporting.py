"""Result rows, JSON records and slope summaries shared by the Monte Carlo checks."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

import tailext

from .results_io import write_json
from .simulation import CellStatistics, SimulationConfig, summarize_cell
from .slopes import fit_loglog_slope

__all__ = ["summary_rows", "write_json", "rate_slope", "format_bias", "run_environment",
           "config_record", "monte_carlo_record", "run_streamed"]


def summary_rows(config: SimulationConfig, cells: dict[int, CellStatistics],
                 prompt_batches=(1, 2048, 65536)) -> list[dict]:
    """One row per estimator and finished ``m``: bias (with SE, resolved flag), variance, MSE.

    ``bias_norm`` is ``None`` when the bias is below two SE ("not resolved"); the raw
    estimate is kept as ``bias_estimate`` for completeness but must not be reported as a
    measurement. ``mse[B] = bias² + variance/B``; ``mse_upper``/``mse_lower`` replace the
    bias by ``bias ± 2 SE`` (clipped at 0), the range used to decide comparisons.
    """
    rows = []
    for index, spec in enumerate(config.estimators):
        for m in config.group_sizes:
            if m not in cells:
                continue
            s = summarize_cell(cells[m], index)
            upper = s.bias_norm + 2.0 * s.bias_se
            lower = max(s.bias_norm - 2.0 * s.bias_se, 0.0)
            rows.append({
                "estimator": spec.name,
                "label": spec.label,
                "m": m,
                "replications": s.replications,
                "bias_norm": s.bias_norm if s.resolved else None,
                "bias_estimate": s.bias_norm,
                "bias_se": s.bias_se,
                "resolved": s.resolved,
                "bias_upper": upper,
                "bias_vector": s.bias_vector.tolist(),
                "variance": s.variance,
                "variance_se": s.variance_se,
                "mse": {str(b): s.bias_norm ** 2 + s.variance / b for b in prompt_batches},
                "mse_upper": {str(b): upper ** 2 + s.variance / b for b in prompt_batches},
                "mse_lower": {str(b): lower ** 2 + s.variance / b for b in prompt_batches},
            })
    return rows


def rate_slope(rows: list[dict], estimator: str, quantity: str, *,
               correction: bool = False) -> dict:
    """Log-log slope of ``quantity`` (``"bias"`` or ``"variance"``) against ``m``.

    Only resolved biases enter a bias fit; with too few points (three, or four with the
    ``1/m`` ``correction`` of :func:`validation.slopes.fit_loglog_slope`) the result says so
    instead of fitting noise.
    """
    picked = [r for r in rows if r["estimator"] == estimator]
    if quantity == "bias":
        picked = [r for r in picked if r["resolved"]]
        values = [(r["m"], r["bias_norm"], r["bias_se"]) for r in picked]
    else:
        values = [(r["m"], r["variance"], r["variance_se"]) for r in picked]
    needed = 4 if correction else 3
    if len(values) < needed:
        return {"slope": None, "points": len(values),
                "note": f"fewer than {needed} resolved points; no slope fitted"}
    m, y, se = (np.array(v, dtype=np.float64) for v in zip(*values))
    fit = fit_loglog_slope(m, y, se, correction=correction)
    return {**fit.as_dict(), "m": m.astype(int).tolist(), "correction": correction}


def format_bias(row: dict) -> str:
    """``1.23e-03 ± 4.5e-05`` for a resolved bias, ``n.r. (< 2SE = 9.0e-05)`` otherwise."""
    if row["resolved"]:
        return f"{row['bias_norm']:.3e} ± {row['bias_se']:.1e}"
    return f"n.r. (< {row['bias_upper']:.1e})"


def run_environment(wall_s: float, cpu_s: float) -> dict:
    """Versions, machine and timing for a result file."""
    import numba
    import scipy

    return {"tailext_version": tailext.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "numba": numba.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "wall_s": wall_s, "cpu_s": cpu_s}


def config_record(config: SimulationConfig) -> dict:
    """The simulation configuration as JSON-ready values."""
    model = config.model
    return {
        "tail_fraction": model.tail_fraction, "n_target": model.n_target,
        "kappa": model.kappa, "scale_floor": model.scale_floor,
        "tail_vector": model.tail_vector.tolist(), "true_gradient": model.true_gradient.tolist(),
        "group_sizes": list(config.group_sizes), "replications": list(config.replications),
        "block_size": config.block_size, "backend": config.backend, "seed": config.seed,
        "estimators": [spec._asdict() for spec in config.estimators],
        "reward_model": "R ~ N(0, 1)",
        "score": "S(r) = (tanh r, 1/(1+r^2) - E[1/(1+R^2)])",
        "bias_method": ("mean of the conditional mean given the tail fits (exact for "
                        "cross-fitted estimators, Rao-Blackwellized by Gauss-Legendre "
                        "quadrature) minus an exactly mean-zero influence-function control "
                        "variate; variance from the plain estimates"),
    }


def monte_carlo_record(check: str, config: SimulationConfig, rows: list[dict], *,
                       complete: bool, quick: bool, wall_s: float, cpu_s: float) -> dict:
    """The common JSON record of a Monte Carlo check: configuration, version, seed,
    environment and timing, the rows and the fitted log-log slopes of each estimator."""
    env = run_environment(wall_s, cpu_s)
    slopes = {spec.name: {q: rate_slope(rows, spec.name, q) for q in ("bias", "variance")}
              for spec in config.estimators}
    return {"check": check, "tailext_version": env["tailext_version"], "seed": config.seed,
            "quick": quick, "complete": complete, "config": config_record(config),
            "environment": env, "rows": rows, "slopes": slopes}


def run_streamed(check: str, config: SimulationConfig, out_dir: Path, extend_record, *,
                 quick: bool, progress=True, prompt_batches=(1, 2048, 65536)):
    """Simulate every ``m`` of ``config``, rewriting ``out_dir/<check>.json`` after each cell.

    The record is :func:`monte_carlo_record` updated in place by ``extend_record(record)``
    (check-specific fields). On Ctrl-C the finished cells are written (``complete: false``)
    and ``(record, True)`` is returned instead of raising; otherwise ``(record, False)``.
    """
    import time

    from .simulation import iterate_cells

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{check.replace('-', '_')}.json"
    cells: dict[int, CellStatistics] = {}
    wall0, cpu0 = time.perf_counter(), time.process_time()

    def save(complete):
        record = monte_carlo_record(check, config, summary_rows(config, cells, prompt_batches),
                                    complete=complete, quick=quick,
                                    wall_s=time.perf_counter() - wall0,
                                    cpu_s=time.process_time() - cpu0)
        extend_record(record)
        write_json(json_path, record)
        return record

    try:
        for m, stats in iterate_cells(config, progress=progress):
            cells[m] = stats
            save(complete=False)
    except KeyboardInterrupt:
        print(f"interrupted: kept {len(cells)} finished m value(s) in {json_path}")
        return save(complete=False), True
    return save(complete=True), False
