"""Serial and parallel builds of one batched numba kernel, chosen per call by size.

A ``prange`` kernel compiled with ``parallel=True`` pays a thread-pool wake-up on every call;
for a few groups that costs far more than the work, and on an oversubscribed machine the
OpenMP spin-wait made a ``[4, 48]`` TEA call ~250× slower (16 ms against 0.06 ms serial).
:func:`batched_kernel` compiles the same Python function twice — ``prange`` is a plain
``range`` in the serial build — and each call takes the parallel build only when the batch
is large enough to amortize the threads.

Concurrent calls from several Python threads are safe under every numba threading layer:
numba's ``workqueue`` layer (its fallback when neither OpenMP nor TBB can be loaded) aborts
the process when two threads launch parallel kernels at once, so parallel launches take one
process-wide lock (the serial build needs none). The lock is taken under every layer: a
launch already uses all of numba's threads, and letting OpenMP or TBB run launches
side by side only oversubscribes the cores — measured with 4 Python threads × 25 TEA calls
on ``[4096, 64]`` (2 cores, 2 numba threads): OpenMP 0.24 s locked against 0.34 s unlocked,
TBB 0.62 s against 0.67 s; an uncontended lock round costs 0.3–1.6 µs against a launch of
about 1 ms (``benchmarks/bench_threads.py``). Parallel kernels of other libraries are not
covered by this lock.
"""

from __future__ import annotations

import threading
import types

import numba
from numba import njit

__all__ = ["PARALLEL_MIN_ELEMENTS", "batched_kernel"]

#: Batches with fewer entries than this (first argument's ``size``) run serially.
PARALLEL_MIN_ELEMENTS = 1 << 16

_LAUNCH_LOCK = threading.Lock()


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
        with _LAUNCH_LOCK:
            return self.parallel(*args)


def batched_kernel(function=None, *, fastmath=False):
    """Decorator: compile ``function`` serially and in parallel (both with numba's
    ``fastmath`` flags), dispatch by batch size; ``@batched_kernel`` or
    ``@batched_kernel(fastmath=...)``."""
    if function is None:
        return lambda f: BatchedKernel(f, fastmath)
    return BatchedKernel(function, fastmath)
