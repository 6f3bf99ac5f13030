"""Hand out the leftover units of a row to its largest keys (remainders), ties to the lower index.

A one-level radix select: keys are bucketed by their top bits, the buckets counted per row, and
only the keys inside the one bucket holding the cut are sorted (stably). Integer counting is
exact, so the result does not depend on the order of the histogram updates on any device.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__: list[str] = []


def bucket_bits_for(n: int) -> int:
    """Radix-select bucket bits for rows of n keys: about 16 keys per bucket, at most 2048 buckets."""
    return max(1, min(11, n.bit_length() - 4))


def cut_buckets(histogram: Tensor, counts: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The bucket holding each row's ``counts[b]``-th largest key, and how many keys to take there.

    ``histogram`` is ``(B, width)``: keys per bucket, n per row.
    """
    inclusive = histogram.cumsum(-1)
    # buckets >= c hold n - (inclusive - histogram)[c] keys, which does not increase with c
    cut = ((inclusive - histogram) <= (n - counts)[:, None]).sum(-1).sub_(1).clamp_(min=0)
    above = n - inclusive.gather(-1, cut[:, None])[:, 0]  # keys in buckets > cut
    return cut, counts - above


def take_ties(floors: Tensor, values: Tensor, row_ids: Tensor, col_ids: Tensor, need: Tensor) -> None:
    """Add one to ``floors`` at the ``need[b]`` largest keys ``values`` of the given cut-bucket entries.

    Entries come with the columns of each row ascending; equal keys go to the lower index.
    """
    if not row_ids.numel():
        return
    order = torch.sort(values, descending=True, stable=True).indices  # ties: lower index first
    order = order[torch.sort(row_ids[order], stable=True).indices]
    row_sorted = row_ids[order]
    starts = torch.searchsorted(row_sorted, row_sorted, right=False)
    rank = torch.arange(order.numel(), device=order.device) - starts
    pick = order[rank < need[row_sorted]]
    floors[row_ids[pick], col_ids[pick]] += 1


def largest_keys(buckets: Tensor, keys: Tensor, counts: Tensor, bucket_bits: int) -> Tensor:
    """One per each of the ``counts[b]`` largest keys of each row, else 0 (int64); equal keys go
    to the lower index.

    A full sort would cost far more than the rest of :func:`apportion`, so this is a one-level
    radix select: ``buckets`` (int64 in ``[0, 2**bucket_bits)``, non-decreasing in the key) are
    histogrammed per row, the bucket holding the cut is found from the cumulative counts,
    everything above it is taken, and only the keys inside that one bucket are sorted (stably,
    so equal keys keep index order). Integer counting is exact, so the result does not depend
    on the order of the (atomic, on CUDA) histogram updates.
    """
    rows, n = buckets.shape
    width = 1 << bucket_bits
    column = buckets if rows == 1 else buckets + (torch.arange(rows, device=buckets.device) * width)[:, None]
    ones = torch.ones(1, dtype=torch.int64, device=buckets.device).expand(rows * n)
    histogram = torch.zeros(rows * width, dtype=torch.int64, device=buckets.device)
    histogram = histogram.scatter_add_(0, column.reshape(-1), ones).reshape(rows, width)
    cut, need = cut_buckets(histogram, counts, n)
    chosen = (buckets > cut[:, None]).to(torch.int64)
    row_ids, col_ids = (buckets == cut[:, None]).nonzero(as_tuple=True)
    take_ties(chosen, keys[row_ids, col_ids], row_ids, col_ids, need)
    return chosen
