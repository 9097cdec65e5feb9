"""Result records: one schema and one atomic writer for every validation check and benchmark.

A *record* is one JSON object per run (``<out>/<check>.json``)::

    check         what ran: "appendix-e", "rates", …, "bench_advantages", …
    schema        the version of this layout (SCHEMA_VERSION)
    version       the tailext version that wrote it
    seed          the master seed (None for exact, seedless checks)
    configuration everything the numbers depend on; resuming compares it key by key
    environment   python, numpy, scipy, numba and torch versions, platform, CPU count, threads
    timing        started / finished (UTC, ISO 8601), wall_s and cpu_s summed over every
                  invocation, and ``invocations``: one entry per run of the command
    completeness  mode ("quick" or "full"), finished and total cells, complete (bool)
    results       the numbers; ``results["cells"]`` maps each finished cell to its result

Every file is written atomically (a temporary file in the same directory, then
``os.replace``), so an interrupt never leaves a torn record, report, figure or array file.
JSON is written with ``allow_nan=False``: a record never holds a silent NaN.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = ["SCHEMA_VERSION", "RecordError", "Clock", "environment", "new_record",
           "read_record", "validate_record", "write_record", "write_json", "write_text",
           "save_figure", "save_arrays", "load_arrays", "atomic_path"]

SCHEMA_VERSION = 1

#: Top-level keys of a record and their types (``validate_record`` checks them).
FIELDS = {"check": str, "schema": int, "version": str, "seed": (int, type(None)),
          "configuration": dict, "environment": dict, "timing": dict,
          "completeness": dict, "results": dict}
MODES = ("quick", "full")


class RecordError(ValueError):
    """A file that is not a readable record of this schema."""


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def to_json_value(value):
    """``value`` as the plain JSON types it will be read back as (tuples become lists)."""
    return json.loads(json.dumps(value, allow_nan=False, default=_jsonable))


@contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    The temporary name keeps ``path``'s suffix, so writers that pick a format from it
    (``savefig``, ``np.savez``) behave the same. On any exception (Ctrl-C included) the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                   suffix=path.suffix)
    os.close(handle)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path, value, *, indent: int | None = 1) -> Path:
    """Write ``value`` as JSON atomically (numpy arrays and scalars become lists and numbers;
    NaN and inf are refused)."""
    return write_text(path, json.dumps(value, indent=indent, allow_nan=False,
                                       default=_jsonable) + "\n")


def save_figure(figure, path) -> Path:
    """``figure.savefig`` to ``path`` atomically, then close the figure."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=120)
    finally:
        plt.close(figure)
    return Path(path)


def save_arrays(path, **arrays) -> Path:
    """``np.savez`` of ``arrays`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    return Path(path)


def load_arrays(path) -> dict:
    """The arrays of a :func:`save_arrays` file, as a dict of ndarrays."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _version(package: str):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment(packages=()) -> dict:
    """Versions, machine and threads of this process (torch only if it is already imported:
    importing it just to report a version would cost seconds); ``packages`` adds the
    installed versions of more distributions (``("verl",)``)."""
    import numba
    import scipy

    import tailext

    threads = {"numba": numba.get_num_threads(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    torch_version = _version("torch")
    devices = None
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch_version = torch.__version__
        threads["torch"] = torch.get_num_threads()
        if torch.cuda.is_available():
            devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"python": platform.python_version(), "tailext": tailext.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "numba": numba.__version__,
            "torch": torch_version, **{name: _version(name) for name in packages},
            "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "threads": threads, "cuda_devices": devices}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def new_record(check: str, *, seed, configuration: dict, mode: str, total: int) -> dict:
    """An empty record of ``check`` (no cell finished yet)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    import tailext

    return {"check": check, "schema": SCHEMA_VERSION, "version": tailext.__version__,
            "seed": seed, "configuration": to_json_value(configuration),
            "environment": environment(),
            "timing": {"started": None, "finished": None, "wall_s": 0.0, "cpu_s": 0.0,
                       "invocations": []},
            "completeness": {"mode": mode, "finished": 0, "total": int(total),
                             "complete": False},
            "results": {"cells": {}}}


def _total(values):
    """The sum, or None when any value is unknown (records converted from older files)."""
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


class Clock:
    """Wall and CPU time of one invocation, added to a record's ``timing``.

    CPU time is the process's (every thread; ``time.process_time``), which a loaded machine
    inflates far less than the wall time.
    """

    def __init__(self):
        self.started = _now()
        self._entry = None  # index of this invocation in the record's list, once stamped
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def seconds(self) -> tuple[float, float]:
        """``(wall, cpu)`` seconds since the clock started."""
        return time.perf_counter() - self._wall, time.process_time() - self._cpu

    def stamp(self, record: dict, *, cells_run: int, interrupted: bool) -> dict:
        """Write this invocation into ``record["timing"]`` (replacing its own earlier entry
        when called again) and refresh the record's environment (keeping extra packages)."""
        import tailext

        wall, cpu = self.seconds()
        timing = record["timing"]
        entry = {"started": self.started, "finished": _now(), "wall_s": wall, "cpu_s": cpu,
                 "cells_run": cells_run, "interrupted": interrupted,
                 "version": tailext.__version__}
        invocations = timing["invocations"]
        if self._entry is None:
            self._entry = len(invocations)
            invocations.append(entry)
        else:
            invocations[self._entry] = entry
        timing.update(started=invocations[0]["started"], finished=entry["finished"],
                      wall_s=_total(i["wall_s"] for i in invocations),
                      cpu_s=_total(i["cpu_s"] for i in invocations))
        record["environment"] = {**record["environment"], **environment()}
        return record


def validate_record(record, *, source="record") -> dict:
    """``record`` if it has every field of the schema with the right type, else RecordError."""
    if not isinstance(record, dict):
        raise RecordError(f"{source} is not a JSON object.")
    for key, kind in FIELDS.items():
        if key not in record:
            raise RecordError(f"{source} has no {key!r} field (not a tailext record of "
                              f"schema {SCHEMA_VERSION}).")
        if not isinstance(record[key], kind):
            raise RecordError(f"{source}: {key!r} has type {type(record[key]).__name__}.")
    if record["schema"] != SCHEMA_VERSION:
        raise RecordError(f"{source} has schema {record['schema']}, this tailext reads "
                          f"{SCHEMA_VERSION}.")
    done = record["completeness"]
    if done.get("mode") not in MODES or not isinstance(done.get("complete"), bool):
        raise RecordError(f"{source}: completeness must give mode and complete.")
    for key in ("wall_s", "cpu_s", "invocations"):
        if key not in record["timing"]:
            raise RecordError(f"{source}: timing has no {key!r}.")
    return record


def read_record(path) -> dict | None:
    """The record at ``path``; None if there is no file. Raises RecordError when the file is
    not a record (unreadable JSON, missing fields)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RecordError(f"{path} is not readable JSON ({error}).") from None
    return validate_record(record, source=str(path))


def write_record(path, record: dict, *, indent: int | None = 1) -> Path:
    """Check ``record`` against the schema and write it atomically (``indent=None``: one
    line, for records with thousands of rows)."""
    return write_json(path, validate_record(record), indent=indent)
