"""The opening lines every report shares: what ran, in which mode, how complete, on what.

Everything comes from the record (measured times and environment), nothing from the code's
idea of the machine.
"""

from __future__ import annotations

__all__ = ["header", "seconds", "run_line"]


def seconds(value) -> str:
    """``"41 s"``, ``"12 min 5 s"``, ``"0.4 s"``."""
    if value is None:
        return "n/a"
    if value < 10:
        return f"{value:.1f} s"
    if value < 600:
        return f"{value:.0f} s"
    return f"{int(value // 60)} min {value % 60:.0f} s"


def run_line(record: dict) -> str:
    """Versions, machine and measured time of the run."""
    env, timing = record["environment"], record["timing"]
    count = len(timing["invocations"])
    threads = env.get("threads", {})
    thread_text = ", ".join(f"{k} threads {v}" for k, v in threads.items()
                            if k in ("numba", "torch") and v is not None)
    versions = ", ".join(f"{k} {env[k]}" for k in ("python", "numpy", "scipy", "numba", "torch")
                         if env.get(k))
    return (f"Run: tailext {record['version']}; wall {seconds(timing['wall_s'])}, CPU "
            f"{seconds(timing['cpu_s'])} (all threads) over {count} invocation"
            f"{'s' if count != 1 else ''}; {env['platform']}, {env['cpu_count']} CPUs"
            + (f", {thread_text}" if thread_text else "") + f"; {versions}.")


def _flag_value(value) -> str:
    if value is True:
        return ""
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def header(record: dict, title: str, configuration: str) -> list[str]:
    """Title, mode, completeness, the configuration in words and the run line."""
    done = record["completeness"]
    if done["mode"] == "quick":
        mode = ("**Quick run** (`--quick`): a reduced configuration for CI (below). Read it "
                "as a smoke test of direction, not with the full run's precision.")
        changed = done.get("overrides") or {}
        if changed:
            mode += " Options changed from it: " + ", ".join(
                f"`{flag} {_flag_value(value)}`".replace(" `", "`") for flag, value in
                changed.items()) + "."
    else:
        mode = "**Full run**"
        changed = done.get("overrides") or {}
        mode += (" with options changed from the default configuration: "
                 + ", ".join(f"`{flag} {_flag_value(value)}`" for flag, value in changed.items())
                 + "." if changed else " (the default configuration).")
    lines = [f"# {title}", "", mode, ""]
    if not done["complete"]:
        lines += [f"**PARTIAL: {done['finished']} of {done['total']} cells finished** (the "
                  f"run was interrupted; rerun the same command to resume). Everything "
                  f"below covers the finished cells only.", ""]
    seed = "no randomness" if record["seed"] is None else f"seed {record['seed']}"
    return lines + [f"Configuration: {seed}; {configuration}", "", run_line(record), ""]
