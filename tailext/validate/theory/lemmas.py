"""``tailext validate lemmas``: Lemma 2 (the population gradient) and Lemma 1 (the surrogate).

Lemma 2 — for the tilted family ``p_θ(r) ∝ φ(r) exp(θ·T(r))`` with ``T(r) = (tanh r,
1/(1+r²))`` (whose score is ``S_θ(r) = T(r) − E_θ T``; at ``θ = 0`` it is the Appendix E
score), central finite differences (Richardson-extrapolated) of
``J(θ) = μ_t(θ) + κ_N s(θ)`` must equal ``E_θ[ψ(R; τ*(θ)) S_θ(R)]``, every quantity computed
by adaptive quadrature.

Lemma 1 — for a reward density that is ``N(0, 1)`` above its 70 % quantile ``a`` and an
exponential ``λ Φ(a) e^{λ(r − a)}`` below it, the exact best-of-N value
``V_N = ∫ N r p(r) F(r)^{N−1} dr`` differs from ``μ_t + κ_N s`` by a gap that decays like
``F(a)^N``: the fitted slope of ``log |gap|`` against ``N`` is compared with ``log F(a)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import integrate, optimize, special

from ..arguments import (MATPLOTLIB, TQDM, UsageError, add_out, add_progress, add_quick,
                         open_fraction, positive_int)
from ..records import save_figure, write_text
from ..reporting import header
from ..runner import CellCheck

__all__ = ["DESCRIPTION", "configure_parser", "requirements", "run", "tilted_objective",
           "tilted_gradient", "lemma2_row", "lemma2_check", "SplicedDensity",
           "best_of_n_gap", "lemma1_check"]

DESCRIPTION = ("Lemma 2 (the population gradient) by finite differences and Lemma 1 (the "
               "surrogate's exponentially small error) by quadrature; exact, no randomness.")

#: Lemma 2 is checked at these θ; --quick checks the first only.
THETAS = ((0.0, 0.0), (0.4, -0.3), (-0.5, 0.8))
#: Lemma 1's N grid (40 values from 2 to 1024, log-spaced); --quick uses 12 from 32 on.
LEMMA1_SIZES = tuple(int(n) for n in np.unique(np.round(np.geomspace(2, 1024, 40))))
QUICK_LEMMA1_SIZES = tuple(int(n) for n in np.unique(np.round(np.geomspace(32, 1024, 12))))
LEMMA2_TOLERANCE = 1e-6
LEMMA1_TOLERANCE = 1e-3

_QUAD = dict(epsabs=1e-14, epsrel=1e-13, limit=400)
_LIMIT = 12.0  # φ(12) ≈ 5e-32: the tilted family's mass beyond ±12 is negligible
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _features(r):
    return np.array([math.tanh(r), 1.0 / (1.0 + r * r)])


class TiltedTail(NamedTuple):
    """Population tail vector ``(h, μ_t, s)`` of ``p_θ`` and the normalizer pieces."""

    threshold: float
    mean: float
    scale: float
    normalizer: float
    mean_features: np.ndarray


def _tilted_tail(theta, tail_fraction) -> TiltedTail:
    theta = np.asarray(theta, dtype=np.float64)

    def weight(r):
        return math.exp(-0.5 * r * r + float(theta @ _features(r))) / _SQRT_2PI

    z = integrate.quad(weight, -_LIMIT, _LIMIT, **_QUAD)[0]
    mean_t = np.array([integrate.quad(lambda r, c=c: _features(r)[c] * weight(r), -_LIMIT,
                                      _LIMIT, **_QUAD)[0] for c in range(2)]) / z

    def excess(h):
        return integrate.quad(weight, h, _LIMIT, **_QUAD)[0] / z - tail_fraction

    h = optimize.brentq(excess, -_LIMIT + 1, _LIMIT - 1, xtol=1e-15, rtol=1e-15, maxiter=200)
    mu = integrate.quad(lambda r: r * weight(r), h, _LIMIT, **_QUAD)[0] / (z * tail_fraction)
    var = integrate.quad(lambda r: (r - mu) ** 2 * weight(r), h, _LIMIT,
                         **_QUAD)[0] / (z * tail_fraction)
    return TiltedTail(h, mu, math.sqrt(var), z, mean_t)


def tilted_objective(theta, *, tail_fraction=0.1, n_target=128) -> float:
    """``J(θ) = μ_t(θ) + κ_N s(θ)`` of the tilted family, by quadrature."""
    from tailext import kappa

    tail = _tilted_tail(theta, tail_fraction)
    return tail.mean + kappa(tail_fraction, n_target) * tail.scale


def tilted_gradient(theta, *, tail_fraction=0.1, n_target=128) -> np.ndarray:
    """Lemma 2's right-hand side ``E_θ[ψ(R; τ*(θ)) (T(R) − E_θ T)]`` by quadrature."""
    from tailext import kappa

    theta = np.asarray(theta, dtype=np.float64)
    tail = _tilted_tail(theta, tail_fraction)
    k_n = kappa(tail_fraction, n_target)
    h, mu, s = tail.threshold, tail.mean, tail.scale

    def integrand(r, c):
        # ψ in the form docs/math.md#psi states it
        psi = ((r - h) + k_n / (2 * s) * ((r - mu) ** 2 - (h - mu) ** 2)) / tail_fraction
        density = math.exp(-0.5 * r * r + float(theta @ _features(r))) / _SQRT_2PI
        return psi * (_features(r)[c] - tail.mean_features[c]) * density / tail.normalizer

    return np.array([integrate.quad(integrand, h, _LIMIT, args=(c,), **_QUAD)[0]
                     for c in range(2)])


def _finite_difference(theta, step, **options):
    """Richardson-extrapolated central differences: error O(step⁴)."""
    theta = np.asarray(theta, dtype=np.float64)
    out = np.empty(2)
    for c in range(2):
        e = np.eye(2)[c]

        def central(h):
            return (tilted_objective(theta + h * e, **options)
                    - tilted_objective(theta - h * e, **options)) / (2 * h)

        out[c] = (4.0 * central(step) - central(2.0 * step)) / 3.0
    return out


def lemma2_row(theta, *, tail_fraction=0.1, n_target=128, step=1e-3) -> dict:
    """Finite-difference ``∇J`` against ``E[ψ S]`` at one ``θ``, with the max error."""
    fd = _finite_difference(theta, step, tail_fraction=tail_fraction, n_target=n_target)
    exact = tilted_gradient(theta, tail_fraction=tail_fraction, n_target=n_target)
    return {"theta": list(theta), "finite_difference": fd.tolist(),
            "expected_psi_score": exact.tolist(),
            "max_abs_error": float(np.abs(fd - exact).max())}


def lemma2_check(thetas=THETAS, *, tail_fraction=0.1, n_target=128, step=1e-3) -> list[dict]:
    """:func:`lemma2_row` at each ``θ``."""
    return [lemma2_row(theta, tail_fraction=tail_fraction, n_target=n_target, step=step)
            for theta in thetas]


class SplicedDensity(NamedTuple):
    """``N(0, 1)`` above ``a = Φ⁻¹(1 − upper_mass)``; ``λ Φ(a) e^{λ(r − a)}`` below."""

    upper_mass: float = 0.3
    rate: float = 1.0

    @property
    def splice(self) -> float:
        return float(special.ndtri(1.0 - self.upper_mass))

    def log_cdf(self, r):
        a = self.splice
        if r >= a:
            return float(special.log_ndtr(r))
        return float(special.log_ndtr(a)) + self.rate * (r - a)

    def pdf(self, r):
        a = self.splice
        if r >= a:
            return math.exp(-0.5 * r * r) / _SQRT_2PI
        return self.rate * math.exp(self.log_cdf(r))


def best_of_n_gap(density: SplicedDensity, n: int, *, tail_fraction=0.1):
    """Gap ``V_N − (μ_t + κ_N s)`` as ``(scaled gap, log F(a)^{N−1}, surrogate error)``.

    Above ``a`` the density and CDF coincide with the normal ones, so
    ``V_N − e_N = ∫_{-∞}^{a} N r [p F^{N−1} − φ Φ^{N−1}] dr``; both pieces are integrated
    with the common factor ``F(a)^{N−1}`` taken out (``log`` CDFs), so the gap keeps its
    relative precision down to 1e-300 and below. The tail vector ``(h, μ_t, s)`` is computed
    from the spliced density itself by quadrature.
    """
    from tailext import expected_max_normal, kappa

    a = density.splice
    log_fa = float(special.log_ndtr(a))
    # both integrands concentrate within ~1/N of a as N grows: give quad the scale
    width = max(1.0 / (n * density.rate), math.exp(log_fa) / (n * math.exp(-0.5 * a * a)
                                                               / _SQRT_2PI))
    lower = a - 40.0 - 60.0 / density.rate
    points = [a - c * width for c in (0.5, 2.0, 8.0, 30.0) if a - c * width > lower]

    def spliced(r):
        return n * r * density.pdf(r) * math.exp((n - 1) * (density.log_cdf(r) - log_fa))

    def normal(r):
        return (n * r * math.exp(-0.5 * r * r) / _SQRT_2PI
                * math.exp((n - 1) * (float(special.log_ndtr(r)) - log_fa)))

    scaled = (integrate.quad(spliced, lower, a, points=points, **_QUAD)[0]
              - integrate.quad(normal, lower, a, points=points, **_QUAD)[0])
    # tail vector of the spliced density (tail inside the Gaussian part when β < upper mass)
    h = optimize.brentq(lambda x: -math.expm1(density.log_cdf(x)) - tail_fraction, a, 40.0,
                        xtol=1e-15)
    mu = integrate.quad(lambda r: r * density.pdf(r), h, 40.0, **_QUAD)[0] / tail_fraction
    s = math.sqrt(integrate.quad(lambda r: (r - mu) ** 2 * density.pdf(r), h, 40.0,
                                 **_QUAD)[0] / tail_fraction)
    surrogate = mu + kappa(tail_fraction, n) * s
    # V_N = e_N + gap; the surrogate equals e_N up to quadrature error (Gaussian tail)
    surrogate_error = surrogate - expected_max_normal(n)
    return scaled, (n - 1) * log_fa, surrogate_error


def lemma1_check(density=SplicedDensity(), *, tail_fraction=0.1, sizes=None,
                 fit_from=32) -> dict:
    """Gap ``V_N − (μ_t + κ_N s)`` for ``N = 2..1024`` and its exponential rate.

    ``log |gap| = c + rate · N + p · log N`` is fitted by least squares on ``N ≥ fit_from``
    (the ``log N`` term absorbs a polynomial prefactor; here the gap behaves like
    ``F(a)^N / N``) and ``rate`` is compared with the predicted ``log F(a)``.
    """
    sizes = np.unique(np.round(np.geomspace(2, 1024, 40)).astype(int)) if sizes is None \
        else np.asarray(sizes)
    log_gaps, signs, surrogate_errors = [], [], []
    for n in sizes:
        scaled, log_factor, surrogate_error = best_of_n_gap(density, int(n),
                                                            tail_fraction=tail_fraction)
        log_gaps.append(math.log(abs(scaled)) + log_factor)
        signs.append(int(np.sign(scaled)))
        surrogate_errors.append(surrogate_error)
    log_gaps = np.array(log_gaps)
    use = sizes >= fit_from
    design = np.column_stack([np.ones(use.sum()), sizes[use], np.log(sizes[use])])
    (intercept, slope, power), *_ = np.linalg.lstsq(design, log_gaps[use], rcond=None)
    predicted = float(special.log_ndtr(density.splice))
    return {"upper_mass": density.upper_mass, "rate": density.rate,
            "splice": density.splice, "sizes": sizes.tolist(),
            "log_abs_gap": log_gaps.tolist(), "gap_sign": signs,
            "surrogate_minus_gaussian_e_n": [float(e) for e in surrogate_errors],
            "fit_from": fit_from, "fitted_log_rate": float(slope),
            "fitted_intercept": float(intercept), "fitted_power": float(power),
            "predicted_log_rate": predicted,
            "relative_rate_error": float(abs(slope - predicted) / abs(predicted))}


def configure_parser(parser) -> None:
    add_out(parser)
    add_quick(parser, f"Lemma 2 at one θ instead of {len(THETAS)}, Lemma 1 on "
                      f"{len(QUICK_LEMMA1_SIZES)} values of N instead of {len(LEMMA1_SIZES)}")
    parser.add_argument("--tail-fraction", type=open_fraction, default=0.1,
                        help="tail fraction β, below 0.3 (default 0.1)")
    parser.add_argument("--n-target", type=positive_int, default=128,
                        help="N of Lemma 2's objective μ_t + κ_N s (default 128)")
    add_progress(parser)


def requirements(args):
    return [MATPLOTLIB] + ([TQDM] if args.progress else [])


def _theta_key(theta) -> str:
    return "lemma2/theta=" + ",".join(f"{t:g}" for t in theta)


class Lemmas(CellCheck):
    """One cell per Lemma 2 θ, one for Lemma 1; no seed (exact quadrature)."""

    name, record_name = "lemmas", "lemmas.json"

    def __init__(self, *, quick: bool, tail_fraction: float, n_target: int, progress: bool):
        self.mode = "quick" if quick else "full"
        self.progress = progress
        self.thetas = THETAS[:1] if quick else THETAS
        self.sizes = QUICK_LEMMA1_SIZES if quick else LEMMA1_SIZES
        self.configuration = {
            "tail_fraction": tail_fraction, "n_target": n_target,
            "thetas": [list(t) for t in self.thetas], "lemma1_sizes": list(self.sizes),
            "lemma1_fit_from": 32, "finite_difference_step": 1e-3,
            "spliced_density": {"upper_mass": SplicedDensity().upper_mass,
                                "rate": SplicedDensity().rate}}
        self.cells = [_theta_key(t) for t in self.thetas] + ["lemma1"]
        self._thetas = dict(zip(self.cells, self.thetas))

    def compute(self, key, record):
        c = self.configuration
        if key == "lemma1":
            return lemma1_check(SplicedDensity(**c["spliced_density"]),
                                tail_fraction=c["tail_fraction"], sizes=np.array(self.sizes),
                                fit_from=c["lemma1_fit_from"])
        return lemma2_row(self._thetas[key], tail_fraction=c["tail_fraction"],
                          n_target=c["n_target"], step=c["finite_difference_step"])

    def derive(self, record):
        cells = record["results"]["cells"]
        rows = [cells[k] for k in self.cells if k.startswith("lemma2/") and k in cells]
        out = {}
        if rows:
            worst = max(row["max_abs_error"] for row in rows)
            out["lemma2"] = {"max_abs_error": worst, "tolerance": LEMMA2_TOLERANCE,
                             "passed": worst <= LEMMA2_TOLERANCE}
        if "lemma1" in cells:
            error = cells["lemma1"]["relative_rate_error"]
            out["lemma1"] = {"relative_rate_error": error, "tolerance": LEMMA1_TOLERANCE,
                             "passed": error < LEMMA1_TOLERANCE}
        return out

    def status(self, record):
        results = record["results"]
        return 0 if all(results[k]["passed"] for k in ("lemma2", "lemma1")) else 1

    def outputs(self, record, out):
        written = [write_text(out / "lemmas.md", markdown(record))]
        cells = record["results"]["cells"]
        rows = [cells[k] for k in self.cells if k.startswith("lemma2/") and k in cells]
        if rows:
            written.append(plot_lemma2(rows, out / "lemma2.png"))
        if "lemma1" in cells:
            written.append(plot_lemma1(cells["lemma1"], out / "lemma1.png"))
        return written


def run(args) -> int:
    from ..arguments import overrides
    from ..runner import run_check

    if args.tail_fraction >= SplicedDensity().upper_mass:
        raise UsageError(f"--tail-fraction must be below {SplicedDensity().upper_mass}: "
                         f"Lemma 1's density is Gaussian only above its "
                         f"{1 - SplicedDensity().upper_mass:.0%} quantile, got "
                         f"{args.tail_fraction}.")
    check = Lemmas(quick=args.quick, tail_fraction=args.tail_fraction,
                   n_target=args.n_target, progress=args.progress)
    return run_check(check, Path(args.out), overrides=overrides(args))


def _passed(result) -> str:
    return "**holds**" if result["passed"] else "**FAILS**"


def markdown(record: dict) -> str:
    """``lemmas.md``: both lemmas, verdicts in words with the numbers."""
    c = record["configuration"]
    results, cells = record["results"], record["results"]["cells"]
    lines = header(record, "Lemmas 1 and 2, numerically",
                   f"β = {c['tail_fraction']}, N = {c['n_target']} (Lemma 2); Lemma 2 at "
                   f"{len(c['thetas'])} θ, Lemma 1 on {len(c['lemma1_sizes'])} values of N "
                   f"from {c['lemma1_sizes'][0]} to {c['lemma1_sizes'][-1]}.")
    if "lemma2" in results:
        r = results["lemma2"]
        lines += ["## Lemma 2: ∇(μ_t + κ_N s) = E[ψ(R; τ*) S]", "",
                  f"Tilted family p_θ(r) ∝ φ(r) exp(θ·T(r)), T(r) = (tanh r, 1/(1+r²)). "
                  f"Richardson-extrapolated central differences (step "
                  f"{c['finite_difference_step']}) of J(θ) = μ_t(θ) + κ_N s(θ) against "
                  f"E_θ[ψ(R; τ*(θ)) S_θ(R)], all by adaptive quadrature.", "",
                  "| θ | finite difference | E[ψ S] | max abs difference |", "|---|---|---|---|"]
        for key in [k for k in cells if k.startswith("lemma2/")]:
            row = cells[key]
            lines.append(f"| ({', '.join(f'{t:g}' for t in row['theta'])}) | "
                         f"({', '.join(f'{v:.10f}' for v in row['finite_difference'])}) | "
                         f"({', '.join(f'{v:.10f}' for v in row['expected_psi_score'])}) | "
                         f"{row['max_abs_error']:.1e} |")
        lines += ["", f"Verdict: the largest difference is {r['max_abs_error']:.1e} against "
                  f"a tolerance of {r['tolerance']:g}: Lemma 2 {_passed(r)}.", ""]
    if "lemma1" in results:
        r, fit = results["lemma1"], cells["lemma1"]
        lam = "" if fit["rate"] == 1 else f"{fit['rate']:g}·"
        exponent = "r − a" if fit["rate"] == 1 else f"{fit['rate']:g}(r − a)"
        lines += ["## Lemma 1: the surrogate's error decays like F(a)^N", "",
                  f"Reward density N(0, 1) above its {1 - fit['upper_mass']:.0%} quantile "
                  f"a = {fit['splice']:.4f} and {lam}Φ(a)·e^({exponent}) "
                  f"below it. The exact best-of-N value V_N is compared with μ_t + κ_N s of "
                  f"the same density; ln|V_N − (μ_t + κ_N s)| = c + rate·N + p·ln N is fitted "
                  f"on N ≥ {fit['fit_from']}.", "",
                  f"Verdict: fitted rate {fit['fitted_log_rate']:.5f} per unit N (natural "
                  f"log) against the predicted ln F(a) = {fit['predicted_log_rate']:.5f}, "
                  f"{r['relative_rate_error']:.2%} apart (tolerance "
                  f"{r['tolerance']:.1%}): Lemma 1 {_passed(r)}. Fitted power of N: "
                  f"{fit['fitted_power']:.3f} (the gap behaves like F(a)^N / N).", ""]
    return "\n".join(lines)


def plot_lemma2(rows, path) -> Path:
    """Finite differences against E[ψ S], one marker per θ, on the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for row in rows:
        ax.scatter(row["expected_psi_score"], row["finite_difference"],
                   label=f"θ = ({', '.join(f'{t:g}' for t in row['theta'])})")
    values = [v for r in rows for v in r["expected_psi_score"]]
    lims = [min(values) - 0.05, max(values) + 0.05]
    ax.plot(lims, lims, "k--", lw=1, label="equality")
    ax.set_xlabel("E[ψ(R; τ*) S]  (quadrature)")
    ax.set_ylabel("finite difference of μ_t + κ_N s")
    worst = max(r["max_abs_error"] for r in rows)
    ax.set_title(f"Lemma 2: max |difference| = {worst:.1e}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_lemma1(fit, path) -> Path:
    """ln |gap| against N with the fitted line; axis and rates in the same (natural) log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    sizes = np.array(fit["sizes"])
    ax.plot(sizes, fit["log_abs_gap"], "o", ms=3, label="ln |V_N − (μ_t + κ_N s)|")
    line = (fit["fitted_intercept"] + fit["fitted_log_rate"] * sizes
            + fit["fitted_power"] * np.log(sizes))
    ax.plot(sizes, line, "k--", lw=1,
            label=f"fit on N ≥ {fit['fit_from']}: slope {fit['fitted_log_rate']:.4f} per "
                  f"unit N\npredicted ln F(a) = {fit['predicted_log_rate']:.4f}")
    ax.set_xlabel("N")
    ax.set_ylabel("ln |gap|  (natural log)")
    ax.set_title("Lemma 1: the surrogate's error decays exponentially in N")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
