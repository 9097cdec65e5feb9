"""Resumable runs: every check is a list of cells, each saved to the record as it finishes.

:func:`run_check` drives a :class:`CellCheck`:

1. **Resume or refuse.** If ``--out`` already holds the check's record, its mode (quick or
   full) and configuration (which names the seeding scheme,
   :data:`~tailext.validate.seeding.SCHEME`) must equal this run's; otherwise the run is
   refused with one line (:class:`~tailext.validate.arguments.UsageError`) before any
   work. Finished cells are taken from the record and never recomputed, so a record only
   ever gains cells: a more complete record is never replaced by a less complete one.
2. **Cells.** Each missing cell is computed and the record rewritten atomically right after.
3. **Derived results** (slopes, comparisons, verdicts) are computed from the finished cells.
4. **Outputs.** The record, then the report and figures, are written from the same record,
   with Ctrl-C deferred until they are all on disk: the files always agree with each other.

Ctrl-C at any point ends the run with a partial record, a report and figures of the finished
cells, one line saying what was kept, and exit status 130. Rerunning the same command
resumes; a resumed run gives the same record (cells, derived results) as an uninterrupted
one, because every cell draws from its own seeded streams.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from .arguments import UsageError
from .records import (Clock, RecordError, new_record, read_record, to_json_value,
                      write_record)
from .seeding import SCHEME

__all__ = ["CellCheck", "run_check", "deferred_interrupt", "stop_on_sigterm", "cell_saved"]


class CellCheck:
    """What a check tells the runner. Subclasses set the attributes and override methods.

    Attributes
    ----------
    name : str
        The check's command name (``"appendix-e"``).
    record_name : str
        File name of the record in ``--out`` (``"appendix_e.json"``).
    seed : int or None
    mode : {"quick", "full"}
    configuration : dict
        Everything the numbers depend on (JSON values); compared on resume.
    cells : list of str
        The cell keys, in the order they are computed.
    progress : bool
        Whether to show progress bars.
    overrides : dict
        Options changed from the mode's default configuration (``{"--steps": 5}``), stated
        in the reports; set from the command line (:func:`~tailext.validate.arguments.overrides`).
    claims_directory : bool
        Write the (empty) record before :meth:`prepare`, for checks that leave state in
        ``--out`` before their first cell finishes (checkpoints): another configuration is
        then refused instead of picking that state up.
    """

    name = record_name = ""
    overrides: dict = {}
    claims_directory = False
    seed = None
    mode = "full"
    configuration: dict = {}
    cells: list = []
    progress = True

    def prepare(self) -> None:
        """Build what computing cells needs (called once, only if a cell is missing)."""

    def compute(self, key: str, record: dict) -> dict:
        """The JSON result of cell ``key`` (``record`` holds the cells finished so far)."""
        raise NotImplementedError

    def derive(self, record: dict) -> dict:
        """Results derived from ``record["results"]["cells"]`` (possibly a partial set)."""
        return {}

    def outputs(self, record: dict, out: Path) -> list[Path]:
        """Write the report and figures of ``record``; return the paths written."""
        return []

    def status(self, record: dict) -> int:
        """Exit status of a complete run: 0, or 1 when a self-check failed."""
        return 0

    def cell_bar(self, todo):
        """Progress over the cells still to compute (tqdm-like); override for finer units."""
        from .progress import bar

        return bar(total=len(todo), desc=self.name, enabled=self.progress, unit="cell")

    def advance(self, progress, key: str) -> None:
        """Move ``progress`` on after cell ``key``."""
        progress.update(1)


def cell_saved(record: dict) -> None:
    """Called after each cell is saved. A no-op; tests replace it to interrupt a run after a
    chosen number of cells, deterministically."""


#: The signals that stop a run the way Ctrl-C does (the command line turns SIGTERM into
#: KeyboardInterrupt too, see tailext.cli).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def deferred_interrupt():
    """Postpone Ctrl-C (SIGINT) and SIGTERM until the block is done, then raise
    KeyboardInterrupt.

    Used while writing the record, report and figures, so that they agree with each other
    whenever the run is stopped. Outside the main thread (where signals cannot be handled)
    it does nothing; a signal that is ignored (SIGINT in a background job of a
    non-interactive shell) stays ignored, and a handler other than Python's own or the
    command line's is called after the block instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    received = []
    for number, handler in previous.items():
        if handler not in (None, signal.SIG_IGN, signal.SIG_DFL):
            signal.signal(number, lambda number, _: received.append(number))
    try:
        yield
    finally:
        for number, handler in previous.items():
            if handler not in (None, signal.SIG_IGN, signal.SIG_DFL):
                signal.signal(number, handler)
    if received:
        handler = previous[received[0]]
        if getattr(handler, "raises_keyboard_interrupt", False) \
                or handler is signal.default_int_handler:
            raise KeyboardInterrupt
        handler(received[0], None)


def stop_on_sigterm(number, frame):
    """SIGTERM handler of the command line: stop the run as Ctrl-C does."""
    raise KeyboardInterrupt


stop_on_sigterm.raises_keyboard_interrupt = True


def _difference(old, new, where="configuration"):
    """The first place where two JSON values differ, as ``"path: old there, new now"``."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(dict.fromkeys([*old, *new])):
            if key not in old:
                return f"{where}.{key} is new"
            if key not in new:
                return f"{where}.{key} is no longer set"
            found = _difference(old[key], new[key], f"{where}.{key}")
            if found:
                return found
        return None
    if old != new:
        return f"{where}: {_short(old)} there, {_short(new)} now"
    return None


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_or_start(check: CellCheck, out: Path) -> dict:
    """The record to continue: the one in ``out`` (checked) or a new one."""
    path = out / check.record_name
    try:
        record = read_record(path)
    except RecordError as error:
        raise UsageError(f"{error} Use another --out.") from None
    configuration = to_json_value({**check.configuration, "seeding": SCHEME})
    if record is None:
        record = new_record(check.name, seed=check.seed, configuration=configuration,
                            mode=check.mode, total=len(check.cells))
        record["completeness"]["overrides"] = to_json_value(check.overrides)
        return record
    if record["check"] != check.name:
        raise UsageError(f"{path} is a record of {record['check']!r}, not {check.name!r}; "
                         f"use another --out.")
    held = record["completeness"]["mode"]
    if held != check.mode:
        raise UsageError(f"{out} holds a {held} run of {check.name}; a {check.mode} run "
                         f"needs another --out (quick and full results are kept apart).")
    difference = _difference(record["configuration"], configuration)
    if difference:
        raise UsageError(f"{path} was written with another configuration ({difference}); "
                         f"use another --out, or the options that run used.")
    unknown = set(record["results"]["cells"]) - set(check.cells)
    if unknown:  # cannot happen for an unedited record: the configuration fixes the cells
        raise UsageError(f"{path} holds cells this configuration does not plan "
                         f"({sorted(unknown)[:3]}); use another --out.")
    return record


def _save(record: dict, check: CellCheck, path: Path, clock: Clock, *, cells_run: int,
          interrupted: bool) -> None:
    done = record["results"]["cells"]
    record["completeness"]["finished"] = len(done)
    clock.stamp(record, cells_run=cells_run, interrupted=interrupted)
    write_record(path, record)


def _listing(paths) -> str:
    return ", ".join(str(p) for p in paths)


def run_check(check: CellCheck, out, *, overrides=None) -> int:
    """Run (or resume) ``check`` into directory ``out``; returns the exit status.

    ``overrides`` (options changed from the mode's default configuration) are stated in
    the reports.

    Raises :class:`~tailext.validate.arguments.UsageError` before any work when ``out``
    holds an incompatible record.
    """
    out = Path(out)
    path = out / check.record_name
    if overrides is not None:
        check.overrides = overrides
    record = load_or_start(check, out)
    clock = Clock()
    cells = record["results"]["cells"]
    resumed = len(cells)
    todo = [key for key in check.cells if key not in cells]
    cells_run = 0
    interrupted = False
    changed = False
    try:
        if todo:
            if check.claims_directory and not path.exists():
                with deferred_interrupt():
                    _save(record, check, path, clock, cells_run=0, interrupted=False)
            check.prepare()
            progress = check.cell_bar(todo)
            try:
                for key in todo:
                    started = Clock()
                    result = to_json_value(check.compute(key, record))
                    wall, cpu = started.seconds()
                    with deferred_interrupt():
                        cells[key] = result
                        record["timing"].setdefault("cells", {})[key] = {"wall_s": wall,
                                                                          "cpu_s": cpu}
                        cells_run += 1
                        changed = True
                        _save(record, check, path, clock, cells_run=cells_run,
                              interrupted=False)
                    check.advance(progress, key)
                    cell_saved(record)
            finally:
                progress.close()
        if not record["completeness"]["complete"]:
            derived = to_json_value(check.derive(record))
            with deferred_interrupt():
                record["results"].update(derived)
                record["completeness"]["complete"] = True
                changed = True
                _save(record, check, path, clock, cells_run=cells_run, interrupted=False)
    except KeyboardInterrupt:
        # a Ctrl-C that lands after the last save of a complete record interrupts nothing
        interrupted = not record["completeness"]["complete"]
    written = []
    try:
        with deferred_interrupt():
            if interrupted and cells:
                record["results"].update(to_json_value(check.derive(record)))
                changed = True
            if changed:
                _save(record, check, path, clock, cells_run=cells_run,
                      interrupted=interrupted)
            if cells:
                written = [path, *check.outputs(record, out)]
    except KeyboardInterrupt:  # a Ctrl-C during the outputs: they were finished first
        interrupted = interrupted or not record["completeness"]["complete"]
    total = len(check.cells)
    wall, cpu = clock.seconds()
    times = f"wall {wall:.1f} s, CPU {cpu:.1f} s this invocation"
    if interrupted:
        if not cells:
            kept = (f"kept {path} (0 of {total} cells) and the state in {out}"
                    if path.exists() else "nothing written")
            print(f"interrupted: no cell of {check.name} had finished; {kept}; run the same "
                  f"command to resume ({times}).", file=sys.stderr)
        else:
            print(f"interrupted: kept {len(cells)} of {total} cells of {check.name} in "
                  f"{path}; wrote {_listing(written[1:]) or 'no report'} for them "
                  f"(partial); run the same command to resume ({times}).", file=sys.stderr)
        return 130
    reused = (f"{resumed} cell(s) from the record, {cells_run} computed" if resumed
              else f"{cells_run} cells computed")
    print(f"{check.name}: complete, {total} of {total} cells, {check.mode} run ({reused}); "
          f"wrote {_listing(written)} ({times}).")
    return check.status(record)
