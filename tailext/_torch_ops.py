"""torch building blocks shared by the rules' torch implementations (imported lazily).

Every function takes ``[B, m]`` float32/float64 tensors and works on their device without a
device-to-host synchronization.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["centred", "std", "safe_divide", "zscore", "constant", "put_at"]


def centred(x):
    """``r − r̄`` as ``s − s̄`` with ``s = r − max(r)``: equal rewards give exact zeros."""
    shifted = x - x.amax(dim=1, keepdim=True)
    return shifted - shifted.mean(dim=1, keepdim=True)


def std(x, ddof):
    """Group standard deviation with divisor ``m − ddof`` → ``[B, 1]``."""
    return torch.sqrt((centred(x) ** 2).sum(dim=1, keepdim=True) / (x.shape[1] - ddof))


def safe_divide(numerator, denominator):
    """``numerator / denominator`` where the denominator is positive, else the numerator."""
    return numerator / torch.where(denominator > 0, denominator, torch.ones_like(denominator))


def zscore(x, eps, ddof):
    """``(r − r̄) / (sd + ε)``; a group of equal rewards gives zeros (also with ``ε = 0``)."""
    return safe_divide(centred(x), std(x, ddof) + eps)


def constant(values, like):
    """A host array on ``like``'s device and dtype without a device sync.

    A blocking host-to-device copy synchronizes with the device, so on CUDA the array is
    staged in pinned memory and copied asynchronously (the caching host allocator keeps the
    buffer alive until the copy has run).
    """
    host = torch.from_numpy(np.ascontiguousarray(values))
    if like.device.type == "cuda":
        host = host.pin_memory()
    return host.to(device=like.device, non_blocking=True).to(like.dtype)


def put_at(like, index, values):
    """Zeros shaped like ``like`` with ``values[B, 1]`` at column ``index[B, 1]``."""
    return torch.zeros_like(like).scatter(1, index, values)
