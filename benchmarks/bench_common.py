"""Shared by the torch benchmarks: which tailext was measured, and the rows to measure."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tailext.validate.records import Clock, new_record, write_record, write_text


def tailext_commit() -> str:
    """Short commit of the checkout ``import tailext`` resolves to, ``+dirty`` if it has
    uncommitted changes there (``unknown`` outside a git checkout)."""
    import tailext

    where = Path(tailext.__file__).resolve().parent

    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              cwd=where).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--", ".") else "")


#: Extra rows: Prefix-TEA with ``ordering="given"`` (the paper's rule; the default is "random").
VARIANTS = {"prefix_tea·given": ("prefix_tea", {"ordering": "given"})}


def rule_variants() -> dict:
    """``{row name: (method, options)}``: every registered rule under its defaults (random
    rules with ``seed=0``), and :data:`VARIANTS` where the measured tailext has the option
    (so the same script also measures a tailext from before it)."""
    import tailext

    rows = {}
    for method in tailext.available_methods():
        accepted = tailext.get_rule(method).options
        rows[method] = (method, {"seed": 0} if "seed" in accepted else {})
        rows.update({name: (rule, options) for name, (rule, options) in VARIANTS.items()
                     if rule == method and set(options) <= set(accepted)})
    return rows


def finish_record(name, out, *, seed, configuration, rows, clock, markdown, indent=1,
                  **results):
    """Write benchmark ``name``'s record (the shared schema, ``tailext.validate.records``)
    and its markdown into ``out``; ``rows`` and ``results`` become its results."""
    from bench_advantages import benchmark_environment

    record = new_record(name, seed=seed, configuration=configuration, mode="full",
                        total=len(rows))
    record["environment"] = benchmark_environment()
    record["results"] = {"rows": rows, **results}
    record["completeness"].update(finished=len(rows), complete=True)
    clock.stamp(record, cells_run=len(rows), interrupted=False)
    write_record(Path(out) / f"{name}.json", record, indent=indent)
    write_text(Path(out) / f"{name}.md", markdown(record))
    return record


__all__ = ["tailext_commit", "rule_variants", "finish_record", "Clock"]
