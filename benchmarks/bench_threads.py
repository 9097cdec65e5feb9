"""Cost of the parallel-launch lock of :mod:`tailext._parallel`, per numba threading layer.

For each layer (a subprocess each, ``NUMBA_THREADING_LAYER``), 4 Python threads call
``tailext.advantages(rewards, "tea")`` on ``[4096, 64]`` (the parallel build, 2 numba
threads) ``--calls`` times each; the wall time of the lot is measured with launches locked
(as tailext does under ``workqueue``) and, where the layer is thread-safe (``omp``,
``tbb``), unlocked (as tailext runs them); plus the cost of one uncontended lock round. A
layer that cannot be loaded is reported as such.

Usage::

    python benchmarks/bench_threads.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("workqueue", "omp", "tbb")

CHILD = """
import json, sys, threading, time
import numpy as np, numba
import tailext
from tailext import _parallel

calls, rounds = int(sys.argv[1]), int(sys.argv[2])
rewards = np.random.default_rng(0).normal(size=(4096, 64))
tailext.advantages(rewards, method="tea")  # compile / load, learn the layer

layer = numba.threading_layer()

def lot(locked):
    _parallel.launches_locked = (lambda: True) if locked else (lambda: False)
    def work():
        for _ in range(calls):
            tailext.advantages(rewards, method="tea")
    threads = [threading.Thread(target=work) for _ in range(4)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start

result = {"layer": layer, "numba_threads": numba.get_num_threads(), "calls": 4 * calls}
result["locked_s"] = min(lot(True) for _ in range(rounds))
if layer != "workqueue":
    result["unlocked_s"] = min(lot(False) for _ in range(rounds))
start = time.perf_counter()
for _ in range(100000):
    with _parallel._LAUNCH_LOCK:
        pass
result["lock_round_ns"] = (time.perf_counter() - start) / 100000 * 1e9
print(json.dumps(result))
"""


def measure(layer, calls, rounds):
    env = {**os.environ, "NUMBA_THREADING_LAYER": layer, "NUMBA_NUM_THREADS": "2",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", CHILD, str(calls), str(rounds)], env=env,
                          cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["?"]
        return {"layer": layer, "error": next((x for x in lines if "threading layer" in x),
                                              lines[-1]).strip()}
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(record):
    results, calls = record["results"]["rows"], record["configuration"]["calls_per_thread"]
    lines = ["# Concurrent calls: the parallel-launch lock", "",
             f"4 Python threads × {calls} calls of `advantages(rewards, 'tea')` on "
             "[4096, 64] float64 (parallel build, 2 numba threads); best of "
             f"{record['configuration']['rounds']} lots, wall. tailext locks launches only "
             "under workqueue.",
             "", "| layer | locked | unlocked | one uncontended lock round |",
             "|---|---|---|---|"]
    for row in results:
        if "error" in row:
            lines.append(f"| {row['layer']} | not available: {row['error']} | | |")
            continue
        unlocked = (f"{row['unlocked_s']:.3f} s" if "unlocked_s" in row
                    else "aborts the process (not thread-safe)")
        lines.append(f"| {row['layer']} | {row['locked_s']:.3f} s | {unlocked} | "
                     f"{row['lock_round_ns']:.0f} ns |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from bench_common import Clock, finish_record, tailext_commit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmark-results"))
    parser.add_argument("--calls", type=int, default=25, help="calls per thread")
    parser.add_argument("--rounds", type=int, default=3,
                        help="lots per layer and setting (the best is kept)")
    args = parser.parse_args(argv)
    clock = Clock()
    rows = [measure(layer, args.calls, args.rounds) for layer in LAYERS]
    record = finish_record("bench_threads", args.out, seed=0, rows=rows, clock=clock,
                           configuration={"calls_per_thread": args.calls, "threads": 4,
                                          "rounds": args.rounds, "shape": "4096x64",
                                          "python": sys.executable,
                                          "commit": tailext_commit()},
                           markdown=markdown)
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
