"""``tailext validate rates``: Theorems 1 and 2 numerically, as fitted log-log slopes.

Each *study* is a configuration of the model of docs/math.md#diagnostic (β, N, estimators, an
``m`` grid, replications), one resumable cell per ``m``. The ``theorem1`` study: the direct
(TEA) estimator and the total-budget Prefix-TEA gradient ``(L, J) = (2, 3)`` at β = 0.1 over
``m = 160 · 2^k``. Every ``m`` on this grid has ``β m`` and ``β m / 2`` integer, so the
rounding offset ``δ = ceil(β m) − β m`` is the same (zero) at every point: the bias
coefficients ``b_l(δ)`` of docs/math.md#rounding-offset are then constants and a power law in ``m`` is a fair
model. (On the Appendix E grid ``m = 256 · 2^k`` the offset cycles through 0.4, 0.8, 0.6,
0.2, which shows as wiggles around the ``1/m`` line.)

Predicted: TEA bias and variance slope −1 (Theorem 1); Prefix-TEA variance at most −1 and
bias ``−(L+1) = −3`` (Theorem 2; the check is ``≤ −2``). Bias uses the exact conditional
mean ``G(τ̂)`` (quadrature) with an exactly mean-zero control variate; see
:mod:`tailext.validate.montecarlo.kernels`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from ..arguments import (MATPLOTLIB, TORCH, TQDM, add_device, add_out, add_progress,
                         add_quick, add_seed, add_threads, positive_int)
from ..montecarlo.check import MonteCarloCheck, study_rows
from ..montecarlo.summary import format_bias, format_slope, rate_slope, slope_verdict
from ..records import write_text
from ..reporting import header
from .appendix_e import block_layout, check_device

__all__ = ["DESCRIPTION", "configure_parser", "requirements", "run", "STUDIES",
           "build_studies"]

DESCRIPTION = ("Theorems 1 and 2 as fitted log-log slopes of the bias and variance of TEA "
               "and Prefix-TEA against the group size m.")

DEFAULT_SEED = 20240916


class Study(NamedTuple):
    """One configuration of the rates check and the claims judged on it.

    ``claims`` are ``(estimator, quantity, predicted, test, correction, text)``: the slope of
    ``quantity`` of ``estimator`` (fitted with the ``1/m`` correction or not) is compared
    with ``predicted`` by ``test`` (see :func:`~tailext.validate.montecarlo.summary.slope_verdict`).
    """

    tail_fraction: float
    group_sizes: tuple
    estimators: tuple      # indices into montecarlo.engine.DEFAULT_ESTIMATORS
    replications: int
    block_size: int
    quick_replications: int
    quick_block_size: int
    claims: tuple


#: The studies, in run order. TEA and the variances are judged on the fits with the
#: next-order ``1/m`` term: the theorems give the leading order, and at this precision the
#: ``m^{-2}`` terms visibly bend a pure power law over m = 160..5120. Prefix-TEA's bias has
#: too few resolved points for that and uses the plain fit.
STUDIES = {
    "theorem1": Study(
        0.1, (160, 320, 640, 1280, 2560, 5120), (0, 1), 65536, 2048, 4096, 256,
        claims=(
            ("tea", "bias", -1.0, "contains", True, "TEA bias falls like 1/m (Theorem 1)"),
            ("tea", "variance", -1.0, "contains", True,
             "TEA variance falls like 1/m (Theorem 1)"),
            ("prefix_tea_L2_J3", "variance", -1.0, "at_most", True,
             "Prefix-TEA (2,3) variance falls like 1/m or faster (Theorem 2's O(1/m) "
             "bound)"),
            ("prefix_tea_L2_J3", "bias", -2.0, "at_most", False,
             "Prefix-TEA (2,3) bias falls like m^-2 or faster (Theorem 2 predicts "
             "m^-(L+1) = m^-3)"),
        )),
}


def configure_parser(parser) -> None:
    add_out(parser)
    add_quick(parser, "4096 replications per m instead of 65536, about half a minute")
    add_seed(parser, DEFAULT_SEED)
    parser.add_argument("--backend", choices=("numba", "torch"), default="numba",
                        help="Monte Carlo kernels: numba (CPU) or torch (any device); the "
                             "same numbers to 1e-11")
    add_device(parser, "cpu", "the torch backend")
    parser.add_argument("--replications", type=positive_int, default=None,
                        help="replications per m in every study: a multiple of 8, at least "
                             "16 (default: each study's own)")
    parser.add_argument("--n-target", type=positive_int, default=128,
                        help="target best-of-N size N (default 128)")
    add_threads(parser, None, "numba")
    add_progress(parser)


def requirements(args):
    return [MATPLOTLIB] + ([TQDM] if args.progress else []) + (
        [TORCH] if args.backend == "torch" else [])


def build_studies(*, quick=False, backend="numba", device="cpu", seed=DEFAULT_SEED,
                  n_target=128, replications=None) -> dict:
    """study name → SimulationConfig."""
    from ..montecarlo.engine import DEFAULT_ESTIMATORS, SimulationConfig
    from ..montecarlo.model import diagnostic_model

    configs = {}
    for name, study in STUDIES.items():
        count, block = ((study.quick_replications, study.quick_block_size) if quick
                        else (study.replications, study.block_size))
        if replications is not None:
            count, block = replications, block_layout(replications, block)
        configs[name] = SimulationConfig(
            diagnostic_model(study.tail_fraction, n_target), study.group_sizes,
            (count,) * len(study.group_sizes), block, int(seed),
            estimators=tuple(DEFAULT_ESTIMATORS[i] for i in study.estimators),
            backend=backend, device=device)
    return configs


class Rates(MonteCarloCheck):
    """Studies of :data:`STUDIES`; slopes (plain and with the 1/m term) and verdicts."""

    name, record_name = "rates", "rates.json"

    def derive(self, record):
        slopes, verdicts = {}, []
        for name, study in STUDIES.items():
            rows = study_rows(record, name)
            estimators = [spec.name for spec in self.studies[name].estimators]
            slopes[name] = {est: {q: {"plain": rate_slope(rows, est, q),
                                      "corrected": rate_slope(rows, est, q, correction=True)}
                                  for q in ("bias", "variance")} for est in estimators}
            for est, quantity, predicted, test, correction, text in study.claims:
                fit = slopes[name][est][quantity]["corrected" if correction else "plain"]
                verdicts.append({**slope_verdict(
                    text, fit, predicted, test=test,
                    fit_model="with the 1/m term" if correction else "pure power law"),
                    "study": name})
        return {**super().derive(record), "slopes": slopes, "verdicts": verdicts}

    def outputs(self, record, out):
        from ..montecarlo.figures import plot_bias_variance

        written = [write_text(out / "rates.md", markdown(record))]
        for name in STUDIES:
            rows = study_rows(record, name)
            if rows:
                config = record["configuration"]["studies"][name]
                mode = record["completeness"]["mode"]
                title = (f"rates, study {name}: β = {config['tail_fraction']}, N = "
                         f"{config['n_target']}, {config['replications'][0]} replications "
                         f"per m, seed {config['seed']} ({mode} run)")
                file = "rates.png" if len(STUDIES) == 1 else f"rates_{name}.png"
                written.append(plot_bias_variance(rows, out / file, title=title))
        return written


def run(args) -> int:
    from ..arguments import overrides
    from ..runner import run_check

    check_device(args)
    if args.threads is not None:
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    studies = build_studies(quick=args.quick, backend=args.backend, device=args.device,
                            seed=args.seed, n_target=args.n_target,
                            replications=args.replications)
    check = Rates(studies, mode="quick" if args.quick else "full", seed=args.seed,
                  progress=args.progress)
    return run_check(check, Path(args.out), overrides=overrides(args))


def markdown(record: dict) -> str:
    """``rates.md``: per study the table, the slopes and the verdicts in words."""
    studies = record["configuration"]["studies"]
    description = "; ".join(
        f"study {name}: β = {c['tail_fraction']}, N = {c['n_target']}, m = "
        f"{', '.join(map(str, c['group_sizes']))}, {c['replications'][0]} replications per "
        f"m, backend {c['backend']}" + (f" on {c['device']}" if c["device"] else "")
        for name, c in studies.items()) + "."
    lines = header(record, "Rates: Theorems 1 and 2 as fitted slopes", description)
    results = record["results"]
    verdicts = results.get("verdicts", [])
    if verdicts:
        several = len(STUDIES) > 1
        lines += ["## Verdicts", ""] + [
            f"- {v['text']}" + (f" (study `{v['study']}`)" if several else "")
            for v in verdicts] + [""]
    for name in studies:
        rows = study_rows(record, name)
        lines += [f"## Study `{name}`", "", "| estimator | m | bias ± SE | variance ± SE |",
                  "|---|---|---|---|"]
        lines += [f"| {r['label']} | {r['m']} | {format_bias(r)} | {r['variance']:.3e} ± "
                  f"{r['variance_se']:.1e} |" for r in rows]
        fits = results.get("slopes", {}).get(name)
        if fits:
            labels = {r["estimator"]: r["label"] for r in rows}
            lines += ["", "| estimator | quantity | slope, pure power law [95 % CI] | "
                      "slope with 1/m term [95 % CI] |", "|---|---|---|---|"]
            for est, by_quantity in fits.items():
                for quantity, fit in by_quantity.items():
                    lines.append(f"| {labels.get(est, est)} | {quantity} | "
                                 f"{format_slope(fit['plain'])} | "
                                 f"{format_slope(fit['corrected'])} |")
        lines += ["", "Bias = ‖E ĝ − g*‖ ± one standard error; *n.r.* = below two standard "
                  "errors (not resolved), shown as the bound bias + 2 SE; unresolved biases "
                  "enter no fit.", ""]
    return "\n".join(lines)
