"""The device syncs of tailext.torch on CUDA are the documented ones, counted per call.

``torch.cuda.set_sync_debug_mode("warn")`` makes every synchronizing CUDA operation warn
once, so the warnings of one call (after a warm-up call) are its syncs. Documented
(``tailext/torch.py``): ``advantages`` costs one sync with ``check_finite=True`` and none
without; ``advantages_from_groups`` with host ids is sync-free without ``check_finite``,
tensor ids add one sync (``torch.unique`` and the distinct sizes), and ``check_finite``
adds the one sync of ``advantages``. Skipped without a CUDA device; run on one by
``python -m pytest -m cuda`` (or ``benchmarks/gpu_check.py``).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tailext  # noqa: E402
import tailext.torch as tt  # noqa: E402

METHODS = tailext.available_methods()
SYNC_MESSAGE = "called a synchronizing CUDA operation"

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA device (counts device syncs)")]


def _options(method):
    return {"seed": 3} if "seed" in tailext.get_rule(method).options else {}


@contextlib.contextmanager
def counted_syncs():
    """Yields a list that, on exit, holds one entry per device sync made inside."""
    torch.cuda.synchronize()
    syncs = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield syncs
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs += [w for w in caught if SYNC_MESSAGE in str(w.message)]


def syncs_of(call):
    call()  # warm-up: kernels load, the caching allocators fill
    with counted_syncs() as syncs:
        call()
    return len(syncs)


def test_the_counter_counts_syncs_and_nothing_else():
    x = torch.ones(8, device="cuda")
    assert syncs_of(lambda: x.sum()) == 0
    assert syncs_of(lambda: x.sum().item()) == 1
    assert syncs_of(lambda: (x.sum().item(), bool(x.any()))) == 2


@pytest.mark.parametrize("method", METHODS)
def test_advantages_syncs_once_with_check_finite_and_never_without(method):
    rng = np.random.default_rng(5)
    rewards = torch.tensor(rng.normal(size=(32, 24)), device="cuda")
    valid = torch.tensor(rng.random((32, 24)) > 0.2, device="cuda")
    options = _options(method)
    for kwargs, expected in (({}, 1), ({"valid": valid}, 1), ({"check_finite": False}, 0),
                             ({"valid": valid, "check_finite": False}, 0)):
        count = syncs_of(lambda: tt.advantages(rewards, method, **kwargs, **options))
        assert count == expected, (sorted(kwargs), count)


@pytest.mark.parametrize("method", METHODS)
def test_advantages_from_groups_syncs_as_documented(method):
    """Groups of two sizes (16 and 24, interleaved): host ids 0 syncs (+1 with
    check_finite), ids as a device tensor 1 (+1)."""
    rng = np.random.default_rng(6)
    ids = np.concatenate([np.repeat(np.arange(6), 16), np.repeat(np.arange(6, 10), 24)])
    ids = ids[rng.permutation(len(ids))]
    rewards = torch.tensor(rng.normal(size=len(ids)), device="cuda")
    device_ids = torch.tensor(ids, device="cuda")
    options = _options(method)
    counts = {(kind, check): syncs_of(lambda: tt.advantages_from_groups(
                  rewards, group_ids, method, check_finite=check, **options))
              for kind, group_ids in (("host", ids), ("tensor", device_ids))
              for check in (False, True)}
    assert counts == {("host", False): 0, ("host", True): 1,
                      ("tensor", False): 1, ("tensor", True): 2}
