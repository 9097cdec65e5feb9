"""Precision of every numpy rule over the float64 range: error against the exact answer.

For each rule and each magnitude, the rewards are ``r = (u + c)·2^k`` with ``u`` unit-scale
rows on a ``2^-28`` grid (normal noise, few-level ties, a constant row) and ``c`` an integer
offset (0, or about 10^6 times the row's spread). Every such ``r`` is exactly representable
and so is ``r − max r`` (Sterbenz), and the rules are shift-invariant and scale-equivariant
(``p = 1``) or scale-invariant (``p = 0``, with ``ε`` scaling like the rewards), so the exact
answer for these input values is

    A(r; ε) = 2^(p·e) · A_ref((r − max r) · 2^-e; ε · 2^-e),

with ``A_ref`` the pure-numpy reference evaluated where its own rounding is that of
unit-scale float64 (:func:`tailext.reference.exact_advantages`). The error of a row is
``max |A − A_true|`` in units of ``2^-52 · max |A_true|`` (float64 rounding relative to the
row); a row whose exact advantages are all zero must be exactly zero. Where ``A_true`` is not
representable (overflow) the right outcome is a clear error.

Usage::

    python benchmarks/bench_precision.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

EPS = 2.0 ** -52
GRID = 2.0 ** -28  # u lives on this grid, so (u + c)·2^k is exact
#: label, exponent k, offset c (in units of 2^k; 0 = none).
MAGNITUDES = [("2^-1040 (subnormal)", -1040), ("1e-300", -997), ("1e-170", -565),
              ("1e-30", -100), ("1", 0), ("1e30", 100), ("1e154", 512), ("1e300", 997),
              ("±1.7e308", 1023)]
OFFSET = 3 * 2 ** 20  # ≈ 10^6 × the spread of u (which is ≈ 3)
#: (method, options): every rule, and the options that change its invariance (an absolute
#: floor, no ε, normalization).
CASES = [
    ("tea", {}), ("tea", {"scale_floor": 0.3}), ("tea_raw", {}),
    ("prefix_tea", {"ordering": "given"}),
    ("grpo", {}), ("grpo", {"eps": 0.0, "ddof": 0}), ("mean_centred", {}), ("rloo", {}),
    ("bon_max_mean", {}), ("bon_max_second", {}), ("bon_max_second", {"normalize": True}),
    ("bon_mean", {}), ("maxk_loo1", {}), ("chow_bon_rl", {"seed": 0}), ("cat_bon", {}),
]


def base_rows(seed, m=64):
    """Unit-scale rows ``u`` on the 2^-28 grid, |u| < 2: normal, 4-level ties, constant."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(3, m))
    normal *= 1.9 / np.abs(normal).max(axis=1, keepdims=True)
    ties = rng.integers(0, 4, size=(2, m)) * 0.6 - 0.9
    constant = np.full((1, m), 0.75)
    u = np.concatenate([normal, ties, constant])
    return np.round(u / GRID) * GRID


def rewards_at(u, k, offset):
    """``(u + offset)·2^k`` (exact), or None where it overflows."""
    with np.errstate(over="ignore"):
        r = np.ldexp(u + offset, k)
    return r if np.all(np.isfinite(r)) else None


def _label(method, options):
    shown = {k: v for k, v in options.items() if k != "seed"}
    return method + (f" ({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else "")


def reference_options(method, options):
    from tailext import get_rule

    rule = get_rule(method)
    complete = {**rule.options, **options}
    if method == "chow_bon_rl":
        return complete
    resolved = rule.resolve(options)
    return {**resolved, **{key: complete[key] for key in ("seed",) if key in complete}}


def compare(got, true):
    """Worst row error in units of 2^-52·max|A_true| (inf: a wrong zero, NaN or inf)."""
    worst = 0.0
    for g, t in zip(got, true):
        size = np.abs(t).max()
        if size == 0.0:
            if np.any(g != 0.0):
                return math.inf
            continue
        if not np.all(np.isfinite(g)):
            return math.inf
        worst = max(worst, float(np.abs(g - t).max() / max(size * EPS, 2.0 ** -1074)))
    return worst


def describe(got, true):
    if not np.all(np.isfinite(got)):
        return "nan/inf"
    nonzero = np.abs(true).max(axis=1) > 0
    if np.any(nonzero & (np.abs(got).max(axis=1) == 0)):
        return "zeros"
    return "wrong"


def measure_case(method, options, k, offset, seed):
    import tailext
    from tailext import reference

    rewards = rewards_at(base_rows(seed), k, offset)
    if rewards is None:
        return None
    with np.errstate(all="ignore"):
        true = reference.exact_advantages(rewards, method, reference_options(method, options))
    representable = bool(np.all(np.isfinite(true)))
    try:
        with np.errstate(all="ignore"):
            got = tailext.advantages(rewards, method=method, **options)
    except (ValueError, FloatingPointError, ZeroDivisionError, OverflowError) as error:
        return {"status": "error (right)" if not representable else "error (wrong)",
                "message": str(error)[:160], "ulps": None}
    if not representable:
        return {"status": "returned " + ("non-finite" if not np.all(np.isfinite(got))
                                         else "finite values") + " (wrong)", "ulps": None}
    error = compare(got, true)
    status = "ok" if error <= 1e4 else describe(got, true)
    return {"status": status, "ulps": None if math.isinf(error) else error}


def tail_vector_case(k, offset, seed):
    """``tail_vector`` error in units of 2^-52 × max(spread, |value|)."""
    import tailext
    from tailext import reference

    u = base_rows(seed)[:3]
    rewards = rewards_at(u, k, offset)
    if rewards is None:
        return None
    try:
        got = tailext.tail_vector(rewards)
    except ValueError as error:
        return {"status": "error (wrong)", "message": str(error)[:160], "ulps": None}
    want = reference.tail_vector(u, 0.25)
    worst = 0.0
    spread = np.ldexp(np.ptp(u, axis=1), k)
    for index, (g, w) in enumerate(zip(got, want)):
        true = np.ldexp(w + (offset if index < 2 else 0.0), k)
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(true))):
            return {"status": "nan/inf", "ulps": None}
        unit = np.maximum(spread, np.abs(true)) * EPS
        worst = max(worst, float((np.abs(g - true) / unit).max()))
    return {"status": "ok" if worst <= 1e4 else "wrong", "ulps": worst}


def input_cases():
    """Integer inputs beyond 2^53 and float16/float32 inputs against the exact answer."""
    import tailext
    from tailext import reference

    rows = []
    rng = np.random.default_rng(1)
    small = rng.integers(-50, 50, size=(3, 32))
    for method, options in CASES:
        ref_options = reference_options(method, options)
        want = reference.exact_advantages(small.astype(float), method, ref_options)
        big = small.astype(np.int64) + 2 ** 60
        try:
            got = tailext.advantages(big, method=method, **options)
            error = compare(got, want)
        except ValueError as exc:
            error, got = math.inf, str(exc)
        rows.append({"method": _label(method, options), "input": "int64 2^60 + small",
                     "ulps": None if math.isinf(error) else error,
                     "status": "ok" if error <= 1e4 else "wrong"})
        for dtype in (np.float16, np.float32):
            low = (rng.normal(size=(3, 32)) * 100).astype(dtype)
            exact = reference.exact_advantages(low.astype(np.float64), method, ref_options)
            got = tailext.advantages(low, method=method, **options)
            error = compare(got, exact)
            rows.append({"method": _label(method, options), "input": np.dtype(dtype).name,
                         "ulps": None if math.isinf(error) else error,
                         "status": "ok" if error <= 1e4 else "wrong"})
    return rows


def run(seed):
    results = []
    for method, options in CASES:
        for label, k in MAGNITUDES:
            for offset in (0, OFFSET):
                row = measure_case(method, options, k, offset, seed)
                if row is None:
                    continue
                results.append({"method": _label(method, options), "magnitude": label,
                                "offset": bool(offset), **row})
    for label, k in MAGNITUDES:
        for offset in (0, OFFSET):
            row = tail_vector_case(k, offset, seed)
            if row is not None:
                results.append({"method": "tail_vector", "magnitude": label,
                                "offset": bool(offset), **row})
    return results


def cell(row):
    if row["status"] == "ok":
        return f"{row['ulps']:.3g}"
    if row["status"] == "wrong" and row.get("ulps") is not None:
        return f"wrong ({row['ulps']:.2g})"
    return row["status"]


def markdown(record):
    results = record["results"]["rows"]
    columns = [(label, offset) for label, _ in MAGNITUDES for offset in (False, True)
               if any(r["magnitude"] == label and r["offset"] == offset for r in results)]
    head = [f"{label}{' +off' if offset else ''}" for label, offset in columns]
    lines = ["# Precision of the numpy rules over the float64 range", "",
             "Worst row error in units of 2^-52 × max |A_true| of the row (float64 rounding "
             "relative to the row); `+off`: offset ≈ 10^6 × the row's spread. 'error "
             "(right)': a clear error where the exact answer overflows float64. Rows: 3 "
             "normal, 2 four-level, 1 constant, m = 64; seed "
             f"{record['seed']}; tailext {record['configuration']['commit']}.", "",
             "| rule | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    methods = list(dict.fromkeys(r["method"] for r in results))
    for method in methods:
        cells = []
        for label, offset in columns:
            match = [r for r in results if r["method"] == method and r["magnitude"] == label
                     and r["offset"] == offset]
            cells.append(cell(match[0]) if match else "")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "Inputs that need exact conversion (error in the same units):", "",
              "| rule | int64 2^60 + small | float16 | float32 |", "|---|---|---|---|"]
    by_method = {}
    for row in record["results"]["inputs"]:
        by_method.setdefault(row["method"], {})[row["input"]] = cell(row)
    for method, cells in by_method.items():
        lines.append(f"| {method} | {cells.get('int64 2^60 + small', '')} | "
                     f"{cells.get('float16', '')} | {cells.get('float32', '')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from bench_common import Clock, finish_record, tailext_commit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmark-results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    clock = Clock()
    configuration = {"seed": args.seed, "magnitudes": MAGNITUDES, "offset": OFFSET,
                     "cases": [[m, o] for m, o in CASES], "commit": tailext_commit()}
    record = finish_record("bench_precision", args.out, seed=args.seed,
                           configuration=configuration, rows=run(args.seed), clock=clock,
                           markdown=markdown, inputs=input_cases())
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
