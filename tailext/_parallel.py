"""Serial and parallel builds of one batched numba kernel, chosen per call by size.

A ``prange`` kernel compiled with ``parallel=True`` pays a thread-pool wake-up on every call;
for a few groups that costs far more than the work, and on an oversubscribed machine the
OpenMP spin-wait made a ``[4, 48]`` TEA call ~250× slower (16 ms against 0.06 ms serial).
:func:`batched_kernel` compiles the same Python function twice — ``prange`` is a plain
``range`` in the serial build — and each call takes the parallel build only when the batch
is large enough to amortize the threads.
"""

from __future__ import annotations

import types

import numba
from numba import njit

__all__ = ["PARALLEL_MIN_ELEMENTS", "batched_kernel"]

#: Batches with fewer entries than this (first argument's ``size``) run serially.
PARALLEL_MIN_ELEMENTS = 1 << 16


class BatchedKernel:
    """Callable pair of builds; ``.serial`` and ``.parallel`` stay reachable for tests."""

    def __init__(self, function):
        self.parallel = njit(cache=True, parallel=True)(function)
        # A renamed copy gets its own on-disk cache entry (numba keys caches by qualname).
        twin = types.FunctionType(function.__code__, function.__globals__,
                                  function.__name__ + "_serial", function.__defaults__,
                                  function.__closure__)
        twin.__qualname__ = function.__qualname__ + "_serial"
        twin.__doc__ = function.__doc__
        self.serial = njit(cache=True)(twin)
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__

    def __call__(self, *args):
        if args[0].size < PARALLEL_MIN_ELEMENTS or numba.get_num_threads() == 1:
            return self.serial(*args)
        return self.parallel(*args)


def batched_kernel(function) -> BatchedKernel:
    """Decorator: compile ``function`` serially and in parallel, dispatch by batch size."""
    return BatchedKernel(function)
