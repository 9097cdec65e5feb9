"""``tailext validate appendix-e``: the paper's Appendix E diagnostic (docs/math.md#diagnostic).

Bias, variance and prompt-batch MSE of TEA (the direct estimator) and the total-budget
Prefix-TEA gradient ``(L, J) = (2, 3)`` and ``(2, 4)`` on the synthetic Gaussian-tail model,
for ``m ∈ {256, …, 4096}``, one resumable cell per ``m``. Writes ``appendix_e.json``,
``appendix_e.md`` (our table beside the paper's Table 15, slopes judged in words),
``figure4.png`` and ``figure5.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..arguments import (MATPLOTLIB, TORCH, TQDM, UsageError, add_device, add_out,
                         add_progress, add_quick, add_seed, add_threads, cuda_problem,
                         open_fraction, positive_int)
from ..montecarlo.check import MonteCarloCheck, study_rows
from ..montecarlo.summary import format_bias, format_slope, rate_slope, slope_verdict
from ..records import save_figure, write_text
from ..reporting import header

__all__ = ["DESCRIPTION", "configure_parser", "requirements", "run", "build_config",
           "PAPER_TABLE_15", "mse_comparison"]

DESCRIPTION = ("The paper's Appendix E diagnostic: bias, variance and MSE of TEA and "
               "Prefix-TEA against the paper's Table 15, with Figures 4 and 5.")

STUDY = "table15"
GROUP_SIZES = (256, 512, 1024, 2048, 4096)
PROMPT_BATCHES = (1, 2048, 65536)
DEFAULT_SEED = 20240915

#: Replications per m and block size. Default: 131072 per m (TEA bias SE ≤ 5 % of the bias
#: at every m with a wide margin, see docs/validation.md); quick: 4096.
DEFAULT_REPLICATIONS, DEFAULT_BLOCK = 131072, 4096
QUICK_REPLICATIONS, QUICK_BLOCK = 4096, 256

#: Paper's Table 15 (docs/math.md#diagnostic-statistics), keyed like our estimators:
#: m → (bias, variance).
PAPER_TABLE_15 = {
    "tea": dict(zip(GROUP_SIZES, zip((0.021, 9.972e-3, 4.848e-3, 3.180e-3, 1.274e-3),
                                     (0.024, 0.012, 6.114e-3, 3.073e-3, 1.544e-3)))),
    "prefix_tea_L2_J3": dict(zip(GROUP_SIZES, zip((0.015, 2.030e-3, 8.919e-4, 2.924e-4,
                                                   5.924e-5),
                                                  (1.144, 0.447, 0.199, 0.096, 0.047)))),
    "prefix_tea_L2_J4": dict(zip(GROUP_SIZES, zip((0.016, 2.286e-3, 4.661e-4, 2.736e-4,
                                                   1.831e-5),
                                                  (0.839, 0.356, 0.166, 0.079, 0.038)))),
}


def configure_parser(parser) -> None:
    add_out(parser)
    add_quick(parser, f"{QUICK_REPLICATIONS} replications per m instead of "
                      f"{DEFAULT_REPLICATIONS}, under a minute")
    add_seed(parser, DEFAULT_SEED)
    parser.add_argument("--backend", choices=("numba", "torch"), default="numba",
                        help="Monte Carlo kernels: numba (CPU) or torch (any device); the "
                             "same numbers to 1e-11")
    add_device(parser, "cpu", "the torch backend")
    parser.add_argument("--replications", type=positive_int, default=None,
                        help="replications per m: a multiple of 8, at least 16 (default "
                             f"{DEFAULT_REPLICATIONS}, or {QUICK_REPLICATIONS} with --quick)")
    parser.add_argument("--tail-fraction", type=open_fraction, default=0.1,
                        help="tail fraction β (default 0.1; the paper's is not given, 0.1 "
                             "lands near its Table 15)")
    parser.add_argument("--n-target", type=positive_int, default=128,
                        help="target best-of-N size N (default 128)")
    add_threads(parser, None, "numba")
    add_progress(parser)


def requirements(args):
    return [MATPLOTLIB] + ([TQDM] if args.progress else []) + (
        [TORCH] if args.backend == "torch" else [])


def block_layout(replications: int, default_block: int) -> int:
    """The largest block size up to ``default_block`` that divides ``replications`` into at
    least 8 seeded blocks."""
    if replications < 16 or replications % 8:
        raise UsageError(f"--replications must be a multiple of 8 and at least 16 (they are "
                         f"split into 8 or more seeded blocks), got {replications}.")
    block = min(default_block, replications // 8)
    while replications % block:
        block -= 1
    return block


def check_device(args) -> None:
    """``--device`` applies to the torch backend only, and must exist."""
    if args.backend != "torch":
        if args.device != "cpu":
            raise UsageError(f"--device {args.device} needs --backend torch (numba runs on "
                             f"the CPU).")
        return
    problem = cuda_problem(args.device)
    if problem:
        raise UsageError(problem + ".")


def build_config(*, quick=False, backend="numba", device="cpu", seed=DEFAULT_SEED,
                 tail_fraction=0.1, n_target=128, replications=None):
    """The default (or ``--quick``) configuration of the diagnostic; UsageError when the
    options cannot give one (e.g. prefixes that do not fit the smallest ``m``)."""
    from tailext import prefix_plan

    from ..montecarlo.engine import SimulationConfig
    from ..montecarlo.model import diagnostic_model

    count, block = ((QUICK_REPLICATIONS, QUICK_BLOCK) if quick
                    else (DEFAULT_REPLICATIONS, DEFAULT_BLOCK))
    if replications is not None:
        count, block = replications, block_layout(replications, block)
    config = SimulationConfig(diagnostic_model(tail_fraction, n_target), GROUP_SIZES,
                              (count,) * len(GROUP_SIZES), block, int(seed),
                              backend=backend, device=device)
    for spec in config.estimators[1:]:
        for m in GROUP_SIZES:
            try:
                prefix_plan(m // 2, tail_fraction=tail_fraction, order=spec.order,
                            n_prefixes=spec.n_prefixes)
            except ValueError as error:
                raise UsageError(f"--tail-fraction {tail_fraction}: {spec.label} cannot run "
                                 f"at m = {m} ({error})") from None
    return config


def _rows_of(rows, estimator):
    return [r for r in rows if r["estimator"] == estimator]


def _check(args):
    check_device(args)
    config = build_config(quick=args.quick, backend=args.backend, device=args.device,
                          seed=args.seed, tail_fraction=args.tail_fraction,
                          n_target=args.n_target, replications=args.replications)
    return AppendixE(config, mode="quick" if args.quick else "full", seed=args.seed,
                     progress=args.progress)


class AppendixE(MonteCarloCheck):
    """One study (``table15``), one cell per m; slopes and verdicts derived from the rows."""

    name, record_name = "appendix-e", "appendix_e.json"

    def __init__(self, config, **kwargs):
        super().__init__({STUDY: config}, prompt_batches=PROMPT_BATCHES, **kwargs)
        self.config = config

    def derive(self, record):

        rows = study_rows(record, STUDY)
        estimators = self.config.estimators
        slopes = {spec.name: {q: rate_slope(rows, spec.name, q) for q in ("bias", "variance")}
                  for spec in estimators}
        corrected = {spec.name: {q: rate_slope(rows, spec.name, q, correction=True)
                                 for q in ("bias", "variance")} for spec in estimators}
        # Variances are judged with the next-order 1/m term (the theorems give the leading
        # order; at 0.5 % precision the m^-2 terms bend a pure power law), biases on the
        # pure power law: on this grid the rounding offset δ = ceil(βm) − βm cycles, so the
        # bias coefficient itself moves from point to point (docs/math.md#rounding-offset)
        # and no smooth correction models it.
        plain, with_term = "pure power law", "with the 1/m term"
        verdicts = [slope_verdict("TEA bias falls like 1/m (Theorem 1)",
                                  slopes["tea"]["bias"], -1.0, fit_model=plain),
                    slope_verdict("TEA variance falls like 1/m (Theorem 1)",
                                  corrected["tea"]["variance"], -1.0, fit_model=with_term)]
        for spec in estimators[1:]:
            verdicts += [
                slope_verdict(f"{spec.label} variance falls like 1/m or faster (Theorem 2's "
                              f"O(1/m) bound)", corrected[spec.name]["variance"], -1.0,
                              test="at_most", fit_model=with_term),
                slope_verdict(f"{spec.label} bias falls like m^-2 or faster (Theorem 2 "
                              f"predicts m^-(L+1) = m^-{spec.order + 1})",
                              slopes[spec.name]["bias"], -2.0, test="at_most",
                              fit_model=plain)]
        return {**super().derive(record), "slopes": slopes, "slopes_corrected": corrected,
                "verdicts": verdicts,
                "paper_table_15": {name: {str(m): {"bias": b, "variance": v}
                                          for m, (b, v) in table.items()}
                                   for name, table in PAPER_TABLE_15.items()}}

    def outputs(self, record, out):
        from ..montecarlo.figures import plot_bias_variance

        return [write_text(out / "appendix_e.md", markdown_table(record)),
                plot_bias_variance(study_rows(record, STUDY), out / "figure4.png",
                                   paper=PAPER_TABLE_15, title=_figure_title(record)),
                plot_figure5(record, out / "figure5.png")]


def run(args) -> int:
    from ..arguments import overrides
    from ..runner import run_check

    if args.threads is not None:
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    return run_check(_check(args), Path(args.out), overrides=overrides(args))


def _figure_title(record) -> str:
    study = record["configuration"]["studies"][STUDY]
    mode = "quick run" if record["completeness"]["mode"] == "quick" else "full run"
    return (f"Appendix E (Figure 4): β = {study['tail_fraction']}, N = {study['n_target']}, "
            f"{study['replications'][0]} replications per m, seed {study['seed']} ({mode})")


def markdown_table(record: dict) -> str:
    """Our bias/variance/MSE beside the paper's Table 15, one table per estimator, and the
    rates judged in words."""

    study = record["configuration"]["studies"][STUDY]
    batches = record["configuration"]["prompt_batches"]
    model = record["results"].get("model", {}).get(STUDY)
    rows = study_rows(record, STUDY)
    floor = f", scale floor s*/2 = {model['scale_floor']:.4f}" if model else ""
    lines = header(record, "Appendix E diagnostic: ours beside the paper's Table 15",
                   f"β = {study['tail_fraction']}, N = {study['n_target']}{floor}; "
                   f"{study['replications'][0]} replications per m in blocks of "
                   f"{study['block_size']}; backend {study['backend']}"
                   + (f" on {study['device']}" if study["device"] else "") + ".")
    lines += [
        "Bias = ‖E ĝ − g*‖₂ ± one standard error; *n.r.* = not resolved (below two standard "
        "errors; the bracket is the upper bound bias + 2 SE). Variance = E‖ĝ − E ĝ‖². "
        "MSE_B = bias² + variance / B.", ""]
    for name, table in PAPER_TABLE_15.items():
        mine = _rows_of(rows, name)
        if not mine:
            continue
        lines += [f"## {mine[0]['label']}", "",
                  "| m | bias (ours) | bias (paper) | variance (ours) | variance (paper) | "
                  + " | ".join(f"MSE B={b}" for b in batches) + " |",
                  "|---|---|---|---|---|" + "---|" * len(batches)]
        for row in mine:
            paper_bias, paper_var = table[row["m"]]
            mse = " | ".join(f"{row['mse'][str(b)]:.3e}" if row["resolved"]
                             else f"≤ {row['mse_upper'][str(b)]:.3e}" for b in batches)
            lines.append(f"| {row['m']} | {format_bias(row)} | {paper_bias:.3e} | "
                         f"{row['variance']:.3e} ± {row['variance_se']:.1e} | "
                         f"{paper_var:.3e} | {mse} |")
        lines.append("")
    slopes = record["results"].get("slopes", {})
    if slopes:
        labels = {r["estimator"]: r["label"] for r in rows}
        corrected = record["results"].get("slopes_corrected", {})
        lines += ["## Fitted log-log slopes (95 % CI)", "",
                  "| estimator | bias, pure power law | variance, pure power law | variance, "
                  "with the 1/m term |", "|---|---|---|---|"]
        for name, fits in slopes.items():
            term = corrected.get(name, {}).get("variance")
            lines.append(f"| {labels.get(name, name)} | {format_slope(fits['bias'])} | "
                         f"{format_slope(fits['variance'])} | "
                         f"{format_slope(term) if term else '–'} |")
        lines += ["", "## Verdicts", ""]
        lines += [f"- {v['text']}" for v in record["results"]["verdicts"]]
        lines.append("")
    return "\n".join(lines)


def mse_comparison(record: dict, estimator: str, batches: np.ndarray) -> np.ndarray:
    """``[len(m), len(B)]``: +1 where ``estimator`` beats TEA in MSE beyond the bias
    uncertainty (its upper MSE below TEA's lower), −1 where TEA wins the same way, 0 where the
    ±2 SE bias ranges leave it undecided. ``record`` needs ``"rows"`` (the study's rows)."""
    ours = _rows_of(record["rows"], estimator)
    tea = {r["m"]: r for r in _rows_of(record["rows"], "tea")}
    ours = [row for row in ours if row["m"] in tea]
    out = np.zeros((len(ours), len(batches)), dtype=int)

    def mse(row, bias):
        return bias ** 2 + row["variance"] / batches

    def lower(row):
        return max(row["bias_estimate"] - 2 * row["bias_se"], 0.0)

    for i, row in enumerate(ours):
        base = tea[row["m"]]
        wins = mse(row, row["bias_upper"]) < mse(base, lower(base))
        loses = mse(base, base["bias_upper"]) < mse(row, lower(row))
        out[i] = np.where(wins, 1, np.where(loses, -1, 0))
    return out


def plot_figure5(record: dict, path: Path) -> Path:
    """The (m, B) map where Prefix-TEA's prompt-batch MSE is below TEA's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap


    rows = {"rows": study_rows(record, STUDY)}
    batches = np.logspace(0, 7, 57)
    names = [n for n in PAPER_TABLE_15 if n != "tea" and _rows_of(rows["rows"], n)]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5.5 * max(len(names), 1), 4.2),
                             squeeze=False)
    cmap = ListedColormap(["#d95f02", "#eeeeee", "#1b9e77"])
    for ax, name in zip(axes[0], names):
        grid = mse_comparison(rows, name, batches)
        m = [r["m"] for r in _rows_of(rows["rows"], name)][:grid.shape[0]]
        ax.pcolormesh(batches, np.arange(len(m)), grid, cmap=cmap, vmin=-1, vmax=1,
                      shading="nearest")
        ax.set_xscale("log")
        ax.set_yticks(range(len(m)), [str(v) for v in m])
        for b in record["configuration"]["prompt_batches"]:
            ax.axvline(b, color="k", lw=0.5, ls=":")
        ax.set_xlabel("prompt batch B")
        ax.set_ylabel("group size m")
        ax.set_title(f"{_rows_of(rows['rows'], name)[0]['label']} vs TEA\n"
                     "green: lower MSE, orange: higher, grey: undecided (±2 SE)", fontsize=9)
    fig.suptitle(_figure_title(record).replace("Figure 4", "Figure 5"), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
