"""Serial and parallel builds of one batched numba kernel, chosen per call by size.

A ``prange`` kernel compiled with ``parallel=True`` pays a thread-pool wake-up on every call;
for a few groups that costs far more than the work, and on an oversubscribed machine the
OpenMP spin-wait made a ``[4, 48]`` TEA call ~250× slower (16 ms against 0.06 ms serial).
:func:`batched_kernel` compiles the same Python function twice — ``prange`` is a plain
``range`` in the serial build — and each call takes the parallel build only when the batch
is large enough to amortize the threads.

Concurrent calls from several Python threads are safe under every numba threading layer:
numba's ``workqueue`` layer (its fallback when neither OpenMP nor TBB can be loaded) aborts
the process when two threads launch parallel kernels at once, so while the layer is
``workqueue`` — or not yet known, before the first parallel launch — parallel launches take
one process-wide lock (the serial build needs none). OpenMP and TBB run concurrent launches
as they are: locking them too made no consistent difference (4 Python threads × 25 TEA
calls on ``[4096, 64]``, 2 cores, 2 numba threads, best of 5, two runs: OpenMP 0.171 / 0.142
s locked against 0.124 / 0.143 s unlocked, TBB 0.180 / 0.168 s against 0.174 / 0.264 s;
workqueue, locked, 0.096 / 0.088 s; ``benchmarks/bench_threads.py``); an uncontended lock
round costs 0.14–0.4 µs. Parallel kernels of other libraries are not covered by this lock.
"""

from __future__ import annotations

import threading
import types

import numba
from numba import njit

__all__ = ["PARALLEL_MIN_ELEMENTS", "batched_kernel", "launches_locked"]

#: Batches with fewer entries than this (first argument's ``size``) run serially.
PARALLEL_MIN_ELEMENTS = 1 << 16

_LAUNCH_LOCK = threading.Lock()
_layer = None  # numba's threading layer, known after the first parallel launch


def launches_locked() -> bool:
    """Whether parallel launches take the lock: the layer is ``workqueue`` or not yet known."""
    return _layer is None or _layer == "workqueue"


class BatchedKernel:
    """Callable pair of builds; ``.serial`` and ``.parallel`` stay reachable for tests."""

    def __init__(self, function, fastmath=False):
        self.parallel = njit(cache=True, parallel=True, fastmath=fastmath)(function)
        # A renamed copy gets its own on-disk cache entry (numba keys caches by qualname).
        twin = types.FunctionType(function.__code__, function.__globals__,
                                  function.__name__ + "_serial", function.__defaults__,
                                  function.__closure__)
        twin.__qualname__ = function.__qualname__ + "_serial"
        twin.__doc__ = function.__doc__
        self.serial = njit(cache=True, fastmath=fastmath)(twin)
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__

    def __call__(self, *args):
        if args[0].size < PARALLEL_MIN_ELEMENTS or numba.get_num_threads() == 1:
            return self.serial(*args)
        if not launches_locked():
            return self.parallel(*args)
        global _layer
        with _LAUNCH_LOCK:
            out = self.parallel(*args)
            _layer = numba.threading_layer()
        return out


def batched_kernel(function=None, *, fastmath=False):
    """Decorator: compile ``function`` serially and in parallel (both with numba's
    ``fastmath`` flags), dispatch by batch size; ``@batched_kernel`` or
    ``@batched_kernel(fastmath=...)``."""
    if function is None:
        return lambda f: BatchedKernel(f, fastmath)
    return BatchedKernel(function, fastmath)
