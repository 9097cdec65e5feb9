"""Concurrent calls from several Python threads under every numba threading layer.

Each layer runs in its own subprocess (numba picks the layer once per process, from
``NUMBA_THREADING_LAYER``). Under ``workqueue`` — numba's fallback when neither OpenMP nor
TBB can be loaded — concurrent parallel launches abort the process, so the kernels
serialize their parallel launches (:mod:`tailext._parallel`). A layer that cannot be loaded
on this machine is skipped, saying so (TBB needs the ``tbb`` package, with its ``lib``
directory on ``LD_LIBRARY_PATH`` when installed by pip). The serial and parallel builds of
every kernel must also agree bit for bit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import tailext
from tailext import _parallel

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import numpy as np, numba
@numba.njit(parallel=True)
def f(x):
    s = 0.0
    for i in numba.prange(x.shape[0]):
        s += x[i]
    return s
f(np.ones(10))
print(numba.threading_layer())
"""

CONCURRENT = """
import threading
import numpy as np, numba
import tailext

rewards = np.random.default_rng(0).normal(size=(2048, 64))  # above PARALLEL_MIN_ELEMENTS
methods = ["tea", "prefix_tea", "grpo", "bon_mean"]
options = {"prefix_tea": {"seed": 0}}  # its random prefix order, fixed
expected = {m: tailext.advantages(rewards, method=m, **options.get(m, {})) for m in methods}
failures = []

def work(index):
    try:
        for call in range(8):
            method = methods[(index + call) % len(methods)]
            if not np.array_equal(tailext.advantages(rewards, method=method,
                                                     **options.get(method, {})),
                                  expected[method]):
                failures.append(method)
    except Exception as error:  # reported below, not swallowed
        failures.append(repr(error))

threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(numba.threading_layer(), numba.get_num_threads(), failures)
"""


def _run(code, layer):
    env = {**os.environ, "NUMBA_THREADING_LAYER": layer, "NUMBA_NUM_THREADS": "2",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


@pytest.mark.parametrize("layer", ["workqueue", "omp", "tbb"])
def test_concurrent_calls_under_every_threading_layer(layer):
    probe = _run(PROBE, layer)
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines() or ["?"]
        reason = next((line for line in lines if "threading layer" in line), lines[-1])
        pytest.skip(f"numba's {layer} threading layer cannot be loaded here ({reason.strip()}"
                    f"; {lines[-1].strip()})")
    done = _run(CONCURRENT, layer)
    assert done.returncode == 0, done.stderr[-2000:]
    name, threads, failures = done.stdout.split(maxsplit=2)
    assert name == layer and int(threads) == 2
    assert failures.strip() == "[]"


@pytest.mark.parametrize("method", ["tea", "tea_raw", "prefix_tea", "grpo", "mean_centred",
                                    "rloo", "bon_max_mean", "bon_max_second", "bon_mean",
                                    "maxk_loo1", "chow_bon_rl", "cat_bon"])
def test_serial_and_parallel_builds_agree_exactly(method, monkeypatch):
    """The parallel build (forced here for a small batch) gives the serial build's bits."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    rewards = np.random.default_rng(5).normal(size=(300, 48))
    options = {"seed": 3} if method in ("chow_bon_rl", "prefix_tea") else {}
    serial = tailext.advantages(rewards, method=method, **options)
    monkeypatch.setattr(_parallel, "PARALLEL_MIN_ELEMENTS", 0)
    previous = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        parallel = tailext.advantages(rewards, method=method, **options)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(parallel, serial)
