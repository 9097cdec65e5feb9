"""Result rows and slope summaries of the Monte Carlo checks."""

from __future__ import annotations

import numpy as np

from .engine import CellStatistics, SimulationConfig, summarize_cell
from .slopes import fit_loglog_slope

__all__ = ["summary_rows", "rate_slope", "format_bias", "format_slope", "config_record",
           "model_constants", "slope_verdict"]


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
                "bias_vector_se": s.bias_vector_se.tolist(),
                "kurtosis": s.kurtosis,
                "variance": s.variance,
                "variance_se": s.variance_se,
                "mse": {str(b): s.bias_norm ** 2 + s.variance / b for b in prompt_batches},
                "mse_upper": {str(b): upper ** 2 + s.variance / b for b in prompt_batches},
                "mse_lower": {str(b): lower ** 2 + s.variance / b for b in prompt_batches},
            })
    return rows


def rate_slope(rows: list[dict], estimator: str, quantity: str, *,
               correction: bool = False, min_m: int | None = None) -> dict:
    """Log-log slope of ``quantity`` (``"bias"`` or ``"variance"``) against ``m``.

    Only resolved biases enter a bias fit, and only ``m ≥ min_m`` (a fit window declared
    with the configuration); with too few points (three, or four with the ``1/m``
    ``correction`` of :func:`tailext.validate.montecarlo.slopes.fit_loglog_slope`) the
    result says so instead of fitting noise.
    """
    picked = [r for r in rows if r["estimator"] == estimator
              and (min_m is None or r["m"] >= min_m)]
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


def format_slope(fit: dict) -> str:
    """``−0.991 [−1.030, −0.953]`` (95 % CI), or the reason no slope was fitted."""
    if fit.get("slope") is None:
        return fit["note"]
    return f"{fit['slope']:.3f} [{fit['ci_low']:.3f}, {fit['ci_high']:.3f}]"


def format_bias(row: dict) -> str:
    """``1.23e-03 ± 4.5e-05`` for a resolved bias, ``n.r. (< 2SE = 9.0e-05)`` otherwise."""
    if row["resolved"]:
        return f"{row['bias_norm']:.3e} ± {row['bias_se']:.1e}"
    return f"n.r. (< {row['bias_upper']:.1e})"


def config_record(config: SimulationConfig) -> dict:
    """The parameters of a simulation (what a resumed run must share), as JSON values."""
    return {
        "tail_fraction": config.model.tail_fraction, "n_target": config.model.n_target,
        "group_sizes": list(config.group_sizes), "replications": list(config.replications),
        "block_size": config.block_size, "backend": config.backend,
        "device": config.device if config.backend == "torch" else None, "seed": config.seed,
        "estimators": [_spec_record(spec) for spec in config.estimators],
        **({"controls": True, "pilot_replications": config.pilot_replications}
           if config.controls else {}),
    }


def _spec_record(spec) -> dict:
    """An estimator's fields; the prefix-size rule only where it is not the default (so the
    records of checks that do not use it keep their configuration)."""
    record = spec._asdict()
    for key, default in (("sizes", "compatible"), ("shift", 0)):
        if record[key] == default:
            del record[key]
    return record


def model_constants(config: SimulationConfig) -> dict:
    """The model's derived constants (κ_N, the floor, τ*, g*), for the record's results."""
    model = config.model
    return {"kappa": model.kappa, "scale_floor": model.scale_floor,
            "tail_vector": model.tail_vector.tolist(),
            "true_gradient": model.true_gradient.tolist()}


def slope_verdict(claim: str, fit: dict, predicted: float, *, test: str = "contains",
                  fit_model: str | None = None) -> dict:
    """A claim about a fitted slope, judged in words with the numbers behind it.

    ``test="contains"``: the 95 % CI must contain ``predicted`` (a rate *equal* to it):
    *holds* or *fails*. ``test="at_most"``: a rate of ``predicted`` or faster: *shown* when
    the whole CI lies at or below it, *consistent, not shown* when the CI reaches it,
    *contradicted* when the CI lies above it. ``fit_model`` names the fit in the text.
    Returns ``{"claim", "test", "predicted", "fit", "fit_model", "holds", "verdict",
    "text"}``; ``holds`` is True, False or None (no slope could be fitted).
    """
    slope = format_slope(fit) + (f" ({fit_model})" if fit_model else "")
    if fit.get("slope") is None:
        holds, verdict, why = None, "not tested", fit["note"]
    elif test == "contains":
        holds = fit["ci_low"] <= predicted <= fit["ci_high"]
        verdict = "holds" if holds else "fails"
        why = f"slope {slope} {'contains' if holds else 'excludes'} {predicted:g}"
    elif test == "at_most":
        if fit["ci_high"] <= predicted:
            holds, verdict = True, "shown"
            why = f"slope {slope} lies entirely at or below {predicted:g}"
        elif fit["ci_low"] <= predicted:
            holds, verdict = True, "consistent, not shown"
            why = f"slope {slope} reaches {predicted:g} but lies partly above it"
        else:
            holds, verdict = False, "contradicted"
            why = f"slope {slope} lies entirely above {predicted:g}"
    else:
        raise ValueError(f"unknown test {test!r}")
    return {"claim": claim, "test": test, "predicted": predicted, "fit": fit,
            "fit_model": fit_model, "holds": holds, "verdict": verdict,
            "text": f"{claim}: **{verdict}**: {why}."}
