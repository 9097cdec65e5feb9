"""``tailext validate rates``: Theorems 1 and 2 numerically, as fitted log-log slopes.

Each *study* is a configuration of the model of docs/math.md#diagnostic (β, N, estimators, an
``m`` grid, replications), one resumable cell per ``m``. Every grid keeps the rounding offset
``δ = ceil(β m) − β m`` (and that of every prefix) constant, so the bias coefficients
``b_l(δ)`` of docs/math.md#rounding-offset are constants and a power law in ``m`` is a fair
model. (On the Appendix E grid ``m = 256 · 2^k`` at β = 0.1 the offset cycles through 0.4,
0.8, 0.6, 0.2, which shows as wiggles around the ``1/m`` line.)

* ``theorem1``: TEA and Prefix-TEA ``(L, J) = (2, 3)`` at β = 0.1 over ``m = 160 · 2^k``
  (δ = 0): TEA bias and variance slope −1 (Theorem 1), Prefix-TEA variance at most −1.
* ``theorem2``: β = 1/2, ``m = 256 · 2^k`` (every size even, δ = 0 for every prefix), with
  the polynomial control variates of docs/math.md#polynomial-controls. Theorem 2's bias
  ``O(m^{-(L+1)})`` is judged as a slope entirely below ``−(L + 1/2)`` for ``(1, 2)`` and
  ``(2, 3)`` (the latter on the window ``m ≥ 512`` declared here); the same draws run the
  ablation whose smaller prefixes have the other rounding offset (``"offset"`` sizes:
  cancellation should fail, slope ≈ −1) and single cross-fits of size ``n`` and ``n − 1``
  (δ = 0 and 1/2), from which the base coefficient ``b₁(δ)`` is fitted.
* ``rounding_offset``: single cross-fits at β = 0.1 of sizes ``n − 2i`` (δ = 0.2 i), for
  ``b₁(δ)`` at five offsets.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..arguments import (MATPLOTLIB, TORCH, TQDM, add_device, add_out, add_progress,
                         add_quick, add_seed, add_threads, positive_int)
from ..montecarlo.check import MonteCarloCheck, study_rows
from ..montecarlo.engine import DEFAULT_ESTIMATORS, EstimatorSpec
from ..montecarlo.summary import format_bias, format_slope, rate_slope, slope_verdict
from ..records import write_text
from ..reporting import header
from .appendix_e import block_layout, check_device

__all__ = ["DESCRIPTION", "configure_parser", "requirements", "run", "STUDIES",
           "build_studies", "offset_coefficients"]

DESCRIPTION = ("Theorems 1 and 2 as fitted log-log slopes of the bias and variance of TEA "
               "and Prefix-TEA against the group size m.")

DEFAULT_SEED = 20240916


class Claim(NamedTuple):
    """The slope of ``quantity`` of ``estimator`` (fitted with the ``1/m`` correction or
    not, on ``m ≥ min_m``) compared with ``predicted`` by ``test`` (see
    :func:`~tailext.validate.montecarlo.summary.slope_verdict`)."""

    estimator: str
    quantity: str
    predicted: float
    test: str
    correction: bool
    text: str
    min_m: int | None = None
    rate: float | None = None  # the theorem's exponent, for what an unshown claim would take
    quick_min_m: int | None = None  # the window of a quick run (its grid is shorter)


class Study(NamedTuple):
    """One configuration of the rates check and the claims judged on it."""

    tail_fraction: float
    group_sizes: tuple
    estimators: tuple      # EstimatorSpec, TEA first
    replications: int | tuple  # per m, or one count for every m
    block_size: int
    quick_replications: int
    quick_block_size: int
    claims: tuple
    controls: bool = False
    pilot: int = 0
    quick_pilot: int = 0
    quick_group_sizes: tuple | None = None   # () skips the study in a quick run
    quick_estimators: tuple | None = None    # indices into estimators (TEA first)


def _prefix(order, count, sizes="compatible"):
    tag = "" if sizes == "compatible" else "_offset"
    label = f"Prefix-TEA (L,J)=({order},{count})" + (", offset sizes" if tag else "")
    return EstimatorSpec(f"prefix_tea_L{order}_J{count}{tag}", label, order, count, sizes)


def _single(shift):
    return EstimatorSpec(f"crossfit_shift{shift}", f"cross-fit, size n−{shift}" if shift
                         else "cross-fit, size n", 0, 1, "single", shift)


#: The studies, in run order. Rates predicted to be ``1/m`` (TEA, the variances, the
#: offset-size ablation) are judged on the fits with the next-order ``1/m`` term: the
#: theorems give the leading order, and at this precision the ``m^{-2}`` terms visibly bend
#: a pure power law over these grids. Prefix-TEA's faster bias rates are judged on the plain
#: fit (with too few resolved points, or too little curvature, for the extra parameter). The
#: rounding-offset study's single cross-fits have kurtosis up to ~450 (at 16,384
#: replications a rare fit far from τ* met the powers of z), hence 49,152 replications and a
#: 16,384 pilot.
STUDIES = {
    "theorem1": Study(
        0.1, (160, 320, 640, 1280, 2560, 5120), DEFAULT_ESTIMATORS[:2], 65536, 2048, 4096, 256,
        claims=(
            Claim("tea", "bias", -1.0, "contains", True, "TEA bias falls like 1/m (Theorem 1)"),
            Claim("tea", "variance", -1.0, "contains", True,
                  "TEA variance falls like 1/m (Theorem 1)"),
            Claim("prefix_tea_L2_J3", "variance", -1.0, "at_most", True,
                  "Prefix-TEA (2,3) variance falls like 1/m or faster (Theorem 2's O(1/m) "
                  "bound)"),
            Claim("prefix_tea_L2_J3", "bias", -2.0, "at_most", False,
                  "Prefix-TEA (2,3) bias falls like m^-2 or faster at β = 0.1 (Theorem 2 "
                  "predicts m^-3; with the linear control variate alone)"),
        )),
    "theorem2": Study(
        0.5, (128, 256, 512, 1024, 2048, 4096),
        (DEFAULT_ESTIMATORS[0], _prefix(1, 2), _prefix(2, 3), _prefix(1, 2, "offset"),
         _prefix(2, 3, "offset"), _single(0), _single(1)),
        (262144, 196608, 131072, 98304, 65536, 49152), 1024, 16384, 1024, controls=True,
        pilot=16384, quick_pilot=4096,
        quick_group_sizes=(128, 256, 512), quick_estimators=(0, 1),
        claims=(
            Claim("prefix_tea_L1_J2", "bias", -1.5, "at_most", False,
                  "Prefix-TEA (1,2) bias falls faster than m^-1.5 (Theorem 2: "
                  "m^-(L+1) = m^-2)", 256, -2.0, 128),
            Claim("prefix_tea_L2_J3", "bias", -2.5, "at_most", False,
                  "Prefix-TEA (2,3) bias falls faster than m^-2.5 (Theorem 2: "
                  "m^-3)", 512, -3.0),
            Claim("tea", "bias", -1.0, "contains", True, "TEA bias falls like 1/m (Theorem 1)"),
            Claim("prefix_tea_L1_J2_offset", "bias", -1.0, "contains", True,
                  "Ablation: Prefix-TEA (1,2) whose smaller prefix has the other rounding "
                  "offset: bias back to 1/m (the cancellation fails)"),
            Claim("prefix_tea_L2_J3_offset", "bias", -1.0, "contains", True,
                  "Ablation: Prefix-TEA (2,3) whose smaller prefixes have the other rounding "
                  "offset: bias back to 1/m (the cancellation fails)"),
        )),
    "rounding_offset": Study(
        0.1, (640, 1280, 2560),
        (DEFAULT_ESTIMATORS[0],) + tuple(_single(shift) for shift in (0, 2, 4, 6, 8)),
        49152, 1024, 4096, 512, controls=True, pilot=16384, quick_pilot=2048, claims=(),
        quick_group_sizes=()),
}


def configure_parser(parser) -> None:
    add_out(parser)
    add_quick(parser, "Theorem 1 with 4096 replications per m instead of 65536; Theorem 2 "
                      "on m = 128, 256, 512 with 16384 (TEA and Prefix-TEA (1,2) only); no "
                      "rounding-offset study; about 15 s of CPU")
    add_seed(parser, DEFAULT_SEED)
    parser.add_argument("--backend", choices=("numba", "torch"), default="numba",
                        help="Monte Carlo kernels: numba (CPU) or torch (any device); the "
                             "same numbers to 1e-11")
    add_device(parser, "cpu", "the torch backend")
    parser.add_argument("--replications", type=positive_int, default=None,
                        help="replications per m in every study (the pilot for the control "
                             "coefficients stays the study's own, or this count if smaller): "
                             "a multiple of 8, at least 16 (default: each study's own)")
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
    from ..montecarlo.engine import SimulationConfig
    from ..montecarlo.model import diagnostic_model

    configs = {}
    for name, study in STUDIES.items():
        count, block, pilot = ((study.quick_replications, study.quick_block_size,
                                study.quick_pilot) if quick
                               else (study.replications, study.block_size, study.pilot))
        if replications is not None:
            count, block = replications, block_layout(replications, block)
            pilot = min(replications, pilot)
            pilot -= pilot % block
        sizes, estimators = study.group_sizes, study.estimators
        if quick and study.quick_group_sizes is not None:
            sizes = study.quick_group_sizes
        if quick and study.quick_estimators is not None:
            estimators = tuple(estimators[i] for i in study.quick_estimators)
        if not sizes:
            continue
        counts = tuple(count) if isinstance(count, tuple) else (count,) * len(sizes)
        configs[name] = SimulationConfig(
            diagnostic_model(study.tail_fraction, n_target), sizes, counts,
            block, int(seed), estimators=estimators, backend=backend, device=device,
            controls=study.controls, pilot_replications=pilot if study.controls else 0)
    return configs


def offset_coefficients(rows: list[dict], tail_fraction: float) -> list[dict]:
    r"""``b₁(δ)`` of each single cross-fit estimator of ``rows``: the intercept of the
    weighted least-squares fit of ``n · bias`` on ``1/n`` (``bias = b₁/n + b₂/n² + …``),
    per score component, with its SE (widened by ``max(1, χ²/dof)`` as the slope fits).
    ``n`` is the fitted size ``m/2 − shift``; only resolved points with ``n`` on at least
    three group sizes enter."""
    from tailext import tail_count
    from tailext.prefix import tail_fraction_ratio

    results = []
    for name in dict.fromkeys(r["estimator"] for r in rows if r["estimator"].startswith(
            "crossfit_shift")):
        shift = int(name.removeprefix("crossfit_shift"))
        picked = [r for r in rows if r["estimator"] == name and r["resolved"]]
        if len(picked) < 3:
            results.append({"estimator": name, "shift": shift, "b1": None,
                            "note": "fewer than 3 resolved points"})
            continue
        n = np.array([r["m"] // 2 - shift for r in picked], dtype=np.float64)
        delta = float(tail_count(int(n[0]), tail_fraction)
                      - tail_fraction_ratio(tail_fraction) * int(n[0]))
        design = np.column_stack([np.ones_like(n), 1.0 / n])
        b1, b1_se = [], []
        for c in range(2):
            y = n * np.array([r["bias_vector"][c] for r in picked])
            se = n * np.array([r["bias_vector_se"][c] for r in picked])
            w = 1.0 / se ** 2
            normal = design.T @ (w[:, None] * design)
            coef = np.linalg.solve(normal, design.T @ (w * y))
            chi2 = float(w @ (y - design @ coef) ** 2) / (len(n) - 2)
            b1.append(float(coef[0]))
            b1_se.append(math.sqrt(np.linalg.inv(normal)[0, 0] * max(1.0, chi2)))
        results.append({"estimator": name, "shift": shift, "delta": delta, "b1": b1,
                        "b1_se": b1_se, "b1_norm": float(np.hypot(*b1)),
                        "n": n.astype(int).tolist()})
    return results


def _offset_linearity(coefficients: list[dict]) -> dict | None:
    """Straight line ``b₁(δ) = a + c δ`` through the fitted coefficients (per component):
    its slope ``c`` and the largest deviation from it in units of the coefficients' SE."""
    points = [c for c in coefficients if c.get("b1") is not None]
    if len(points) < 3:
        return None
    delta = np.array([c["delta"] for c in points])
    line, worst = [], 0.0
    for comp in range(2):
        y = np.array([c["b1"][comp] for c in points])
        se = np.array([c["b1_se"][comp] for c in points])
        design = np.column_stack([np.ones_like(delta), delta])
        w = 1.0 / se ** 2
        coef = np.linalg.solve(design.T @ (w[:, None] * design), design.T @ (w * y))
        line.append(coef.tolist())
        worst = max(worst, float(np.max(np.abs(y - design @ coef) / se)))
    return {"intercept": [line[0][0], line[1][0]], "slope": [line[0][1], line[1][1]],
            "max_deviation_se": worst, "deltas": delta.tolist()}


def _cancellation_check(study_name, config, coefficients, rows) -> list[dict]:
    """For each offset-size estimator: the first-order bias left when the smaller prefixes
    have coefficient ``b₁(δ')`` and the largest ``b₁(δ)``, ``(1/n)‖Σ_{j<J} w_j (n/n_j)
    (b₁(δ') − b₁(δ))‖``, against the measured ``n · bias`` at the largest ``m``."""
    from ..montecarlo.engine import estimator_plan

    by_shift = {c["shift"]: c for c in coefficients if c.get("b1") is not None}
    if 0 not in by_shift or 1 not in by_shift:
        return []
    difference = np.subtract(by_shift[1]["b1"], by_shift[0]["b1"])
    checks = []
    for spec in config.estimators[1:]:
        if spec.sizes != "offset":
            continue
        picked = [r for r in rows if r["estimator"] == spec.name and r["resolved"]]
        if not picked:
            continue
        last = picked[-1]
        n = last["m"] // 2
        sizes, weights = estimator_plan(spec, n, config.model.tail_fraction)
        factor = sum(w * n / s for w, s in zip(weights[:-1], sizes[:-1]))
        checks.append({"estimator": spec.name, "m": last["m"],
                       "predicted_n_bias": float(abs(factor) * np.linalg.norm(difference)),
                       "measured_n_bias": float(n * last["bias_norm"]),
                       "measured_n_bias_se": float(n * last["bias_se"])})
    return checks


def _cpu_per_replication(record: dict, study: str) -> dict:
    """``m`` → CPU seconds per replication (pilot included) of the finished cells."""
    from ..montecarlo.check import cell_key

    config = record["configuration"]["studies"][study]
    cells = record.get("timing", {}).get("cells", {})
    result = {}
    for m, count in zip(config["group_sizes"], config["replications"]):
        timing = cells.get(cell_key(study, m))
        if timing:
            result[m] = timing["cpu_s"] / (count + config.get("pilot_replications", 0))
    return result


def what_it_would_take(rows: list[dict], claim: Claim) -> dict | None:
    """For a bias claim that was not shown: the replications each ``m`` of the window would
    need to resolve (at two SE) a bias following the theorem's ``m^rate`` from the
    smallest ``m`` of the window, where it is taken at its (unresolved) point estimate
    ``‖b̂‖``, ``R(m) = max((2 σ(m) / b(m))², 100 (κ(m) − 1))`` with
    ``σ(m) = SE √R`` and the kurtosis ``κ(m)`` measured on the run (the second term is the
    resolution rule of :data:`~tailext.validate.montecarlo.engine.SE_PRECISION`; the
    report adds the CPU time at the run's cost per replication)."""
    from ..montecarlo.engine import SE_PRECISION

    picked = [r for r in rows if r["estimator"] == claim.estimator
              and (claim.min_m is None or r["m"] >= claim.min_m)]
    if claim.rate is None or not picked:
        return None
    start = picked[0]
    anchor = start["bias_estimate"]
    if not anchor > 0:
        return None
    needs = []
    for r in picked:
        sd = r["bias_se"] * math.sqrt(r["replications"])
        bias = anchor * (r["m"] / start["m"]) ** claim.rate
        tails = (r["kurtosis"] - 1.0) / SE_PRECISION ** 2 if r.get("kurtosis") else 0.0
        needs.append({"m": r["m"], "sd_per_replication": sd, "assumed_bias": bias,
                      "replications": max((2.0 * sd / bias) ** 2, tails)})
    return {"estimator": claim.estimator, "anchor_m": start["m"], "anchor_bias": anchor,
            "rate": claim.rate, "needs": needs}


class Rates(MonteCarloCheck):
    """Studies of :data:`STUDIES`; slopes (plain and with the 1/m term), verdicts and the
    rounding-offset coefficients ``b₁(δ)``."""

    name, record_name = "rates", "rates.json"

    def derive(self, record):
        slopes, verdicts, offsets, ratios = {}, [], {}, {}
        for name, config in self.studies.items():
            study = STUDIES[name]
            rows = study_rows(record, name)
            present = {spec.name for spec in config.estimators}
            claims = [c._replace(min_m=c.quick_min_m) if self.mode == "quick" else c
                      for c in study.claims if c.estimator in present]
            windows = {(c.estimator, c.min_m) for c in claims}
            estimators = [spec.name for spec in config.estimators
                          if not spec.name.startswith("crossfit_shift")]
            slopes[name] = {est: {q: {"plain": rate_slope(rows, est, q),
                                      "corrected": rate_slope(rows, est, q, correction=True)}
                                  for q in ("bias", "variance")} for est in estimators}
            for est, low in windows:
                if low is not None:
                    slopes[name][est]["bias"][f"plain_m>={low}"] = rate_slope(
                        rows, est, "bias", min_m=low)
            for claim in claims:
                by_quantity = slopes[name][claim.estimator][claim.quantity]
                key = ("corrected" if claim.correction else "plain") if claim.min_m is None \
                    else f"plain_m>={claim.min_m}"
                window = "" if claim.min_m is None else f", m ≥ {claim.min_m}"
                verdicts.append({**slope_verdict(
                    claim.text, by_quantity[key], claim.predicted, test=claim.test,
                    fit_model=("with the 1/m term" if claim.correction else "pure power law")
                    + window), "study": name})
                if verdicts[-1]["verdict"] != "shown" and claim.rate is not None:
                    verdicts[-1]["would_take"] = what_it_would_take(rows, claim)
            coefficients = offset_coefficients(rows, study.tail_fraction)
            if coefficients:
                offsets[name] = {"coefficients": coefficients,
                                 "linear_in_delta": _offset_linearity(coefficients),
                                 "cancellation": _cancellation_check(name, config,
                                                                     coefficients, rows)}
            tea = {r["m"]: r for r in rows if r["estimator"] == "tea" and r["resolved"]}
            ratios[name] = {}
            for r in rows:
                if r["estimator"].endswith("_offset") and r["resolved"] and r["m"] in tea:
                    ratios[name].setdefault(r["estimator"], []).append(
                        r["bias_norm"] / tea[r["m"]]["bias_norm"])
        return {**super().derive(record), "slopes": slopes, "verdicts": verdicts,
                "rounding_offset": offsets,
                "offset_to_tea_bias": {k: v for k, v in ratios.items() if v}}

    def outputs(self, record, out):
        from ..montecarlo.figures import plot_bias_variance

        written = [write_text(out / "rates.md", markdown(record))]
        for name in self.studies:
            rows = study_rows(record, name)
            if rows and STUDIES[name].claims:
                config = record["configuration"]["studies"][name]
                mode = record["completeness"]["mode"]
                title = (f"rates, study {name}: β = {config['tail_fraction']}, N = "
                         f"{config['n_target']}, {_replications(config)} replications "
                         f"per m, seed {config['seed']} ({mode} run)")
                file = "rates.png" if name == "theorem1" else f"rates_{name}.png"
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


def _replications(config: dict) -> str:
    """``65536``, or ``262144 … 49152`` when the count changes with ``m``."""
    counts = config["replications"]
    return str(counts[0]) if len(set(counts)) == 1 else f"{counts[0]} … {counts[-1]}"


def _vector(values, errors=None, digits=3) -> str:
    if errors is None:
        return "(" + ", ".join(f"{v:.{digits}f}" for v in values) + ")"
    return "(" + ", ".join(f"{v:.{digits}f} ± {e:.1e}" for v, e in zip(values, errors)) + ")"


def _offset_lines(name, offsets: dict) -> list[str]:
    lines = ["", f"Base bias coefficient b₁(δ) (study `{name}`; fit of n · bias = b₁ + b₂/n "
             "over the group sizes, per score component, ± one SE):", "",
             "| estimator | δ | b₁(δ) | ‖b₁(δ)‖ | sizes n |", "|---|---|---|---|---|"]
    for c in offsets["coefficients"]:
        if c.get("b1") is None:
            lines.append(f"| {c['estimator']} | – | {c['note']} | – | – |")
            continue
        lines.append(f"| {c['estimator']} | {c['delta']:.1f} | {_vector(c['b1'], c['b1_se'])} "
                     f"| {c['b1_norm']:.3f} | {', '.join(map(str, c['n']))} |")
    line = offsets.get("linear_in_delta")
    if line:
        lines += ["", f"A straight line b₁(δ) = a + c δ through these: a = "
                  f"{_vector(line['intercept'])}, c = {_vector(line['slope'])}; the largest "
                  f"deviation from it is {line['max_deviation_se']:.1f} SE."]
    for check in offsets.get("cancellation", []):
        lines += ["", f"{check['estimator']} at m = {check['m']}: n · bias = "
                  f"{check['measured_n_bias']:.3f} ± {check['measured_n_bias_se']:.1e}; the "
                  f"first-order term left by b₁(1/2) − b₁(0), ‖Σ_(j<J) w_j (n/n_j) (b₁(1/2) − "
                  f"b₁(0))‖, predicts {check['predicted_n_bias']:.3f}."]
    return lines


def markdown(record: dict) -> str:
    """``rates.md``: per study the table, the slopes and the verdicts in words."""
    studies = record["configuration"]["studies"]
    description = "; ".join(
        f"study {name}: β = {c['tail_fraction']}, N = {c['n_target']}, m = "
        f"{', '.join(map(str, c['group_sizes']))}, "
        + (f"{c['replications'][0]} replications per m" if len(set(c["replications"])) == 1
           else f"{', '.join(map(str, c['replications']))} replications") + (f" (+ {c['pilot_replications']} pilot replications for the control "
                f"coefficients)" if c.get("controls") else "")
        + f", backend {c['backend']}" + (f" on {c['device']}" if c["device"] else "")
        for name, c in studies.items()) + "."
    lines = header(record, "Rates: Theorems 1 and 2 as fitted slopes", description)
    results = record["results"]
    verdicts = results.get("verdicts", [])
    if verdicts:
        lines += ["## Verdicts", ""] + [f"- {v['text']} (study `{v['study']}`)"
                                        for v in verdicts] + [""]
        for v in verdicts:
            need = v.get("would_take")
            if need:
                cost = _cpu_per_replication(record, v["study"])
                lines += [f"What showing `{need['estimator']}`'s rate would take: a bias "
                          f"falling like m^{need['rate']:g} from {need['anchor_bias']:.1e} at "
                          f"m = {need['anchor_m']} (its unresolved point estimate; the two-SE "
                          "bounds are in the table) is resolved at two SE, and its SE trusted, "
                          "with "
                          + "; ".join(f"m = {n['m']}: {n['replications']:.1e} replications"
                                      + (f" ({n['replications'] * cost[n['m']] / 3600:.2g} "
                                         "CPU hours at this run's cost)"
                                         if n["m"] in cost else "")
                                      for n in need["needs"]) + ".", ""]
    for name in studies:
        rows = study_rows(record, name)
        controlled = bool(studies[name].get("controls"))
        extra = " kurtosis |" if controlled else ""
        lines += [f"## Study `{name}`", "", "| estimator | m | bias ± SE | variance ± SE |"
                  + extra, "|---|---|---|---|" + ("---|" if controlled else "")]
        lines += [f"| {r['label']} | {r['m']} | {format_bias(r)} | {r['variance']:.3e} ± "
                  f"{r['variance_se']:.1e} |"
                  + (f" {r['kurtosis']:.0f} |" if controlled and r.get("kurtosis") is not None
                     else (" – |" if controlled else "")) for r in rows]
        fits = results.get("slopes", {}).get(name)
        if fits:
            labels = {r["estimator"]: r["label"] for r in rows}
            lines += ["", "| estimator | quantity | slope, pure power law [95 % CI] | "
                      "slope with 1/m term [95 % CI] |", "|---|---|---|---|"]
            for est, by_quantity in fits.items():
                for quantity, fit in by_quantity.items():
                    windowed = [f"{format_slope(v)} ({k.removeprefix('plain_')})"
                                for k, v in fit.items() if k.startswith("plain_m>=")]
                    lines.append(f"| {labels.get(est, est)} | {quantity} | "
                                 f"{format_slope(fit['plain'])}"
                                 + "".join(f"; {w}" for w in windowed)
                                 + f" | {format_slope(fit['corrected'])} |")
        offsets = results.get("rounding_offset", {}).get(name)
        if offsets:
            lines += _offset_lines(name, offsets)
        ratio = results.get("offset_to_tea_bias", {}).get(name)
        if ratio:
            lines += ["", "Bias of the offset-size ablation relative to TEA's on the same "
                      "draws: " + "; ".join(f"{est}: {min(v):.2f}–{max(v):.2f}×"
                                            for est, v in ratio.items()) + "."]
        lines += ["", "Bias = ‖E ĝ − g*‖ ± one standard error; *n.r.* = not resolved (below "
                  "two standard errors, or, with the polynomial controls, fewer replications "
                  "than 100 (κ − 1) for the kurtosis κ of the controlled values), shown as "
                  "the bound bias + 2 SE; unresolved biases enter no fit.", ""]
    return "\n".join(lines)
