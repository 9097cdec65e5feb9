"""Precision of every rule in the torch adapter for low-precision inputs.

For each rule, input dtype (float32, bfloat16, float16) and reward case (a scale and an offset
applied to seeded N(0, 1) rewards), the rewards are rounded to the dtype and the torch result
is compared with the float64 numpy result **on the same rounded values**. The error of a row
is ``max_i |A_i − A*_i| / max_i |A*_i|`` (the row's scale of the exact advantages); the table
gives the largest row error and, separately, the fraction of rows the torch result got all
zero while the exact one is not (silent zeros), non-finite results, and errors raised.

Usage::

    python benchmarks/torch_precision.py --out benchmarks/results/torch_precision

Writes ``torch_precision.json`` (a record of the shared schema, ``tailext.validate.records``:
configuration, seed, environment, timing, every cell, on one line) and ``torch_precision.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The cases measured before the per-row frame: (label, scale, offset in units of the scale).
ISSUE_CASES = (("1e5+N(0,1)", 1.0, 1e5), ("1e20·N(0,1)", 1e20, 0.0),
               ("1e-25·N(0,1)", 1e-25, 0.0))
#: The requested range: scales 1e-30..1e30, offsets 0..1e6 × the spread.
GRID = tuple((f"{scale:.0e}·({offset:.0e}+N(0,1))", scale, offset)
             for scale in (1e-30, 1e-20, 1e-10, 1e-3, 1.0, 1e3, 1e10, 1e20, 1e30)
             for offset in (0.0, 1e3, 1e6))
CASES = ISSUE_CASES + GRID
DTYPES = ("float32", "bfloat16", "float16")


def measure_cell(method, options, dtype, scale, offset, rewards):
    """Errors of one (rule, dtype, case) → a result dict."""
    import torch

    import tailext
    import tailext.torch as tt

    values = (rewards + offset) * scale
    tensor = torch.tensor(values, dtype=torch.float64).to(getattr(torch, dtype))
    exact_input = tensor.double().numpy()
    if not np.all(np.isfinite(exact_input)) or np.all(np.ptp(exact_input, axis=1) == 0):
        return {"status": "not representable"}  # overflows, or every row rounds to one value
    expected = tailext.advantages(exact_input, method=method, **options)
    try:
        got = tt.advantages(tensor, method=method, **options).double().numpy()
    except ValueError as error:  # the start of the message says which check fired
        return {"status": "error", "message": str(error)[:100]}
    size = np.abs(expected).max(axis=1)
    finite = np.isfinite(got).all(axis=1)
    error = np.abs(got - expected).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(size > 0, error / size, np.where(error == 0, 0.0, np.inf))
    zeros = (np.abs(got).max(axis=1) == 0) & (size > 0)
    worst = float(np.max(np.where(finite, relative, np.inf)))
    # None: unbounded (a non-finite result, or an error where the exact row is all 0); a
    # record holds no inf
    return {"status": "ok", "max_rel_error": worst if np.isfinite(worst) else None,
            "median_rel_error": float(np.median(relative[finite])) if finite.any() else None,
            "zero_rows": float(zeros.mean()), "nonfinite_rows": float((~finite).mean())}


def run(groups, size, seed):
    from bench_common import rule_variants

    rewards = np.random.default_rng(seed).normal(size=(groups, size))
    results = []
    for name, (method, options) in rule_variants().items():
        for dtype in DTYPES:
            for label, scale, offset in CASES:
                start = time.perf_counter()
                cell = measure_cell(method, options, dtype, scale, offset, rewards)
                cell.update(method=name, options=options, dtype=dtype, case=label,
                            seconds=time.perf_counter() - start)
                cell = {key: float(f"{value:.4g}") if isinstance(value, float) else value
                        for key, value in cell.items()}  # 4 digits: a third of the size
                results.append(cell)
    return results


def _text(cell):
    if cell["status"] == "not representable":
        return "–"
    if cell["status"] == "error":
        return "error"
    text = "inf" if cell["max_rel_error"] is None else f"{cell['max_rel_error']:.1e}"
    if cell["zero_rows"]:
        text += f" (zeros {100 * cell['zero_rows']:.0f}%)"
    if cell["nonfinite_rows"]:
        text += f" (non-finite {100 * cell['nonfinite_rows']:.0f}%)"
    return text


def _worst(cells):
    """The grid cell with the largest error (errors and silent zeros count as worst)."""
    def badness(cell):
        if cell["status"] == "error":
            return np.inf
        error = np.inf if cell["max_rel_error"] is None else cell["max_rel_error"]
        return error + cell["zero_rows"] + cell["nonfinite_rows"]
    measured = [c for c in cells if c["status"] != "not representable"]
    return max(measured, key=badness) if measured else None


def markdown(record):
    config, env = record["configuration"], record["environment"]
    lines = [f"# torch adapter precision ({config['shape']}, seed {config['seed']}, tailext "
             f"{env['tailext']}, commit {config['commit']})", "",
             "Largest row error `max|A − A*| / max|A*|` against float64 numpy on the same "
             "rounded inputs (`zeros`: rows returned all zero where the exact result is not; "
             "`error`: the adapter raised, e.g. a float16 result beyond 65504); "
             "`–`: the dtype cannot represent the case. The grid is scales 1e-30..1e30 × "
             "offsets 0, 1e3, 1e6 (in units of the scale); its worst cell is shown.", ""]
    issue = [c[0] for c in ISSUE_CASES]
    grid = {c[0] for c in GRID}
    for dtype in DTYPES:
        cells = [c for c in record["results"]["rows"] if c["dtype"] == dtype]
        lines += [f"## {dtype}", "", "| method | " + " | ".join(issue)
                  + " | worst of the grid | its case |", "|---|" + "---|" * (len(issue) + 2)]
        for method in dict.fromkeys(c["method"] for c in cells):
            mine = [c for c in cells if c["method"] == method]
            by_case = {c["case"]: _text(c) for c in mine}
            worst = _worst([c for c in mine if c["case"] in grid])
            tail = ["–", "–"] if worst is None else [_text(worst), worst["case"]]
            lines.append(f"| {method} | " + " | ".join(by_case[c] for c in issue) + " | "
                         + " | ".join(tail) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    from bench_common import Clock, finish_record, tailext_commit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shape", default="256x64", help="B x m (default 256x64)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    groups, size = (int(p) for p in args.shape.split("x"))
    commit = tailext_commit()
    clock = Clock()
    results = run(groups, size, args.seed)
    # one line: 1100 cells, ~3x smaller than indented
    record = finish_record("torch_precision", args.out, seed=args.seed,
                           configuration={"shape": args.shape, "seed": args.seed,
                                          "cases": CASES, "dtypes": DTYPES, "commit": commit},
                           rows=results, clock=clock, markdown=markdown, indent=None)
    print(markdown(record))


if __name__ == "__main__":
    main()
