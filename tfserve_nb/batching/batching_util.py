"""The arithmetic of batching, after TF Serving's ``batching/batching_util.cc`` and the
batch splitting of ``batch_scheduler_utils``: how a request is cut to fit, which allowed batch
size a batch is padded up to, and how tensors of one batch are padded to a common shape.
Pure functions on sizes and numpy arrays; :mod:`.batch_scheduler` uses them.
"""

from __future__ import annotations

import numpy as np

from ..core.status import invalid_argument


def split_sizes(size: int, room: int, limit: int) -> list[int]:
    """Upstream's ``InputSplitMetadata``: fill the open batch's ``room``, then whole batches."""
    sizes = []
    if room > 0:
        sizes.append(room)
        size -= room
    while size > 0:
        sizes.append(min(limit, size))
        size -= limit
    return sizes


def round_to_allowed(allowed_batch_sizes: tuple[int, ...], size: int) -> int:
    """Upstream's ``RoundToLowestAllowedBatchSize``: the first allowed size at least ``size``."""
    for allowed in allowed_batch_sizes:
        if allowed >= size:
            return allowed
    return size


def pad_to_common_shape(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Upstream's ``AddPadding``: pad non-batch dimensions to the batch's largest, with each
    tensor's own first element."""
    target = tuple(max(dims) for dims in zip(*(p.shape[1:] for p in parts), strict=True))
    padded = []
    for part in parts:
        if part.shape[1:] == target:
            padded.append(part)
            continue
        shape = (part.shape[0], *target)
        if part.size == 0:
            if 0 not in shape:
                raise invalid_argument("Got empty tensor in batch of non-empty tensors.")
            padded.append(np.empty(shape, dtype=part.dtype))
            continue
        out = np.full(shape, part.flat[0], dtype=part.dtype)
        out[tuple(slice(0, d) for d in part.shape)] = part
        padded.append(out)
    return padded
