"""Command-line flags shared by the checks, and their validation.

Every value is checked when argparse reads it (the ``type=`` functions here raise
``argparse.ArgumentTypeError`` with a sentence), and each check's ``validate(args)`` checks
the combinations, all before any work starts. The command line (``tailext.cli``) turns
every failure into one line ``tailext validate CHECK: error: …`` and exit status 2.

The same flag means the same thing in every check: ``--out``, ``--quick``, ``--seed``,
``--no-progress``, ``--threads`` and, where torch runs, ``--device``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
from pathlib import Path

__all__ = ["UsageError", "positive_int", "non_negative_int", "seed", "positive_float",
           "non_negative_float", "open_fraction", "device", "output_directory",
           "add_out", "add_quick", "add_seed", "add_progress", "add_threads", "add_device",
           "missing_requirements", "Requirement", "overrides", "cuda_problem",
           "use_torch_device", "MATPLOTLIB", "TQDM", "TORCH"]


class UsageError(Exception):
    """A command-line value or combination the check refuses (reported as exit status 2)."""


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer ≥ 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer ≥ 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def seed(text: str) -> int:
    """A master seed: an integer in ``[0, 2**63)`` (numpy seeds cannot be negative)."""
    value = _integer(text)
    if not 0 <= value < 2 ** 63:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**63 - 1 (numpy "
                                         f"seeds cannot be negative), got {text!r}")
    return value


def _real(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _real(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0."""
    value = _real(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be non-negative, got {text!r}")
    return value


def open_fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    value = _real(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text!r}")
    return value


_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def device(text: str) -> str:
    """A torch device name: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def output_directory(text: str) -> Path:
    """A directory to write into: it may exist (then it is resumed) but must not be a file,
    and the nearest existing folder above it must be writable."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{parent} is not a directory, so {text} cannot "
                                         f"be created")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{parent} is not writable")
    return path


def add_out(parser):
    parser.add_argument("--out", type=output_directory, required=True, metavar="DIR",
                        help="output directory; rerunning the same command into it resumes "
                             "an interrupted run")


def add_quick(parser, text: str):
    parser.add_argument("--quick", action="store_true",
                        help=f"reduced configuration for CI: {text}. Quick and full results "
                             f"are kept apart: a --quick run refuses a full run's directory "
                             f"and the reverse")


def add_seed(parser, default: int):
    parser.add_argument("--seed", type=seed, default=default,
                        help=f"master seed of every random stream (default {default})")


def add_progress(parser):
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar")


def add_threads(parser, default, what: str):
    shown = "all cores" if default is None else default
    parser.add_argument("--threads", type=positive_int, default=default,
                        help=f"{what} threads (default: {shown}); does not change any "
                             f"number")


def add_device(parser, default: str, what: str):
    parser.add_argument("--device", type=device, default=default,
                        help=f"torch device for {what}: cpu, cuda or cuda:N "
                             f"(default {default})")


#: Flags that choose how or where a check runs, not what it computes.
EXECUTION_FLAGS = {"out", "quick", "progress", "threads", "backend", "device", "seed",
                   "workers"}


def overrides(args) -> dict:
    """The options of ``args`` that change the experiment from its default (or --quick)
    configuration, by flag name (``{"--steps": 5}``); execution flags are left out."""
    parser = getattr(args, "_parser", None)
    if parser is None:
        return {}
    changed = {}
    for action in parser._actions:
        dest = action.dest
        if dest in EXECUTION_FLAGS or dest == "help" or not action.option_strings:
            continue
        value = getattr(args, dest, None)
        if value != action.default:
            changed[action.option_strings[-1]] = value
    return changed


class Requirement:
    """An importable module a check needs, and how to get it."""

    def __init__(self, module: str, install: str):
        self.module, self.install = module, install

    def missing(self) -> bool:
        return importlib.util.find_spec(self.module) is None


def missing_requirements(requirements) -> str | None:
    """One sentence naming the missing modules and what to install, or None."""
    missing = [r for r in requirements if r.missing()]
    if not missing:
        return None
    names = " and ".join(r.module for r in missing)
    installs = "; ".join(dict.fromkeys(r.install for r in missing))
    return f"needs {names}, which {'is' if len(missing) == 1 else 'are'} not installed ({installs})"


#: The requirements of the plain checks: figures and progress bars.
MATPLOTLIB = Requirement("matplotlib", "pip install 'tailext[validate]'")
TQDM = Requirement("tqdm", "pip install 'tailext[validate]'")
TORCH = Requirement("torch", "pip install 'tailext[torch]', or torch==2.13.0 for the CPU "
                             "wheel")


def cuda_problem(name: str) -> str | None:
    """Why torch device ``name`` cannot be used here, or None (imports torch)."""
    if not name.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return f"--device {name}: torch {torch.__version__} sees no CUDA device here"
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        return (f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) "
                f"are visible")
    return None


def use_torch_device(device: str, threads: int) -> None:
    """Check ``--device`` (UsageError when it cannot be used) and, on the CPU, give torch
    ``threads`` threads: the start of every check that trains with torch."""
    problem = cuda_problem(device)
    if problem:
        raise UsageError(problem + ".")
    import torch

    if torch.device(device).type == "cpu":
        torch.set_num_threads(threads)
