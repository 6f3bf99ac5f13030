"""Weights for an epoch taken from validators' endpoints (``mdt-tensor epoch --from-endpoints``).

A URLs file lists one endpoint per line, either ``URL`` (the row is the line's position among the
endpoint lines) or ``UID URL``; blank lines and ``#`` comments are skipped. The fetched rows
replace the listed uids' rows of a base weight matrix; a row that fails keeps the base row (the
chain keeps the weights a validator last set) and is named in the report.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import torch

from ..errors import ShapeError, ValueRangeError
from .client import RowStatus, WeightBatch, fetch_weight_stack

__all__ = ["read_urls_file", "weights_from_endpoints", "fetch_epoch_weights", "format_feed_report"]


def read_urls_file(path: Path | str) -> list[tuple[int, str]]:
    """``(uid, url)`` pairs from a URLs file (see the module docstring).

    Raises:
        ValueRangeError: a malformed line (named by file and line number), a repeated uid, or no
            endpoint at all.
    """
    pairs: list[tuple[int, str]] = []
    for number, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 1:
            uid, url = len(pairs), parts[0]
        elif len(parts) == 2 and parts[0].isdigit():
            uid, url = int(parts[0]), parts[1]
        else:
            raise ValueRangeError(f"{path}:{number}: expected 'URL' or 'UID URL', got {raw.strip()!r}")
        if not url.startswith(("http://", "https://")):
            raise ValueRangeError(f"{path}:{number}: expected an http(s) URL, got {url!r}")
        if any(uid == seen for seen, _ in pairs):
            raise ValueRangeError(f"{path}:{number}: uid {uid} is listed twice")
        pairs.append((uid, url))
    if not pairs:
        raise ValueRangeError(f"{path}: no endpoints listed")
    return pairs


async def weights_from_endpoints(base_weights: Any, endpoints: list[tuple[int, str]], **options: Any) -> tuple[torch.Tensor, WeightBatch]:
    """``base_weights`` ``(n, n)`` (or ``(1, n, n)``) with the listed uids' rows fetched from their endpoints.

    Returns the new int64 weights (same shape and device as the base) and the fetch's batch (its
    report rows are in ``endpoints`` order). ``options`` go to :func:`fetch_weight_stack`.
    """
    base = torch.as_tensor(base_weights)
    square = base[0] if base.ndim == 3 and base.shape[0] == 1 else base
    if square.ndim != 2 or square.shape[0] != square.shape[1]:
        raise ShapeError(f"Expected base weights (n, n) of one subnet, but got {tuple(base.shape)}.")
    n = int(square.shape[-1])
    bad = next((uid for uid, _ in endpoints if not 0 <= uid < n), None)
    if bad is not None:
        raise ValueRangeError(f"Expected endpoint uids in [0, {n}), but got uid {bad}.")
    batch = await fetch_weight_stack([url for _, url in endpoints], n, device="cpu", **options)
    merged = square.detach().to("cpu", torch.int64).clone()
    uids = torch.tensor([uid for uid, _ in endpoints], dtype=torch.int64)
    ok = batch.mask.cpu()
    merged[uids[ok]] = batch.weights.cpu()[ok].to(torch.int64)
    return merged.reshape(base.shape).to(base.device), batch


def fetch_epoch_weights(urls_file: Path | str, base_weights: Any, **options: Any) -> tuple[torch.Tensor, WeightBatch]:
    """The synchronous entry point for the CLI: :func:`read_urls_file` then :func:`weights_from_endpoints`."""
    return asyncio.run(weights_from_endpoints(base_weights, read_urls_file(urls_file), **options))


def format_feed_report(batch: WeightBatch, *, limit: int = 20) -> str:
    """A short text report: counts per status, then one line per failed endpoint (up to ``limit``)."""
    counts = {status: sum(r.status is status for r in batch.reports) for status in RowStatus}
    lines = [f"endpoints: {len(batch.reports)}, " + ", ".join(f"{s.value} {c}" for s, c in counts.items() if c)
             + f" ({batch.seconds:.3f} s)"]
    for r in batch.failures[:limit]:
        lines.append(f"  row {r.index} {r.url}: {r.status.value} ({r.reason}) {r.detail}")
    if len(batch.failures) > limit:
        lines.append(f"  ... and {len(batch.failures) - limit} more")
    return "\n".join(lines)
