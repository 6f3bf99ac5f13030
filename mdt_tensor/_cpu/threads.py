"""The small thread pool the CPU kernels share, and helpers that run cache-sized blocks on it.

numpy releases the GIL inside its loops, so a few Python threads over disjoint blocks of one
array use every core without the cost of torch's OpenMP start-up on small pieces.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["cpu_thread_pool", "run_blocks", "blocks_in_caller", "chunked_numpy", "serial_pieces"]

#: Elements per block of :func:`chunked_numpy`: 16K int64 values stay in L1/L2.
CHUNK = 1 << 14
#: The most elements a torch operation may touch in a pool thread: torch runs an operation
#: of up to its parallel grain (``at::internal::GRAIN_SIZE``) in the calling thread. A larger
#: one starts an OpenMP team in that thread, and once the process has more OpenMP threads than
#: cores, libgomp stops spinning between parallel regions: every later torch operation of the
#: process (the caller's too) then pays a futex wake-up, several times its cost on small tensors.
TORCH_SERIAL_ELEMENTS = 1 << 15

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_in_caller: ContextVar[bool] = ContextVar("mdt_blocks_in_caller", default=False)


def _forget_pool_after_fork() -> None:
    global _pool
    _pool = None  # the parent's worker threads do not exist in a forked child


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def cpu_thread_pool() -> ThreadPoolExecutor:
    """The process-wide pool of ``torch.get_num_threads()`` workers, created on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()), thread_name_prefix="mdt-cpu")
        return _pool


@contextmanager
def blocks_in_caller() -> Iterator[None]:
    """Inside this context :func:`run_blocks` runs every block in the calling thread.

    For callers that interleave the kernels with torch work of their own (the Yuma epoch): right
    after a torch parallel region libgomp's spinning workers hold the other cores, so the pool
    threads gain nothing there, and each pool thread's malloc arena keeps the freed temporaries
    of its blocks (the epoch's peak memory then varied by tens of MB from run to run).
    """
    token = _in_caller.set(True)
    try:
        yield
    finally:
        _in_caller.reset(token)


def run_blocks(function: Callable[..., Any], blocks: list[Any]) -> None:
    """Call ``function(*block)`` for every block, on the pool when there is more than one
    (in the calling thread inside :func:`blocks_in_caller`)."""
    if len(blocks) <= 1 or torch.get_num_threads() == 1 or _in_caller.get():
        for block in blocks:
            function(*block)
        return
    for future in [cpu_thread_pool().submit(function, *block) for block in blocks]:
        future.result()


def serial_pieces(rows: int, row_elements: int) -> list[slice]:
    """Slices of ``rows`` rows of ``row_elements`` elements each, at most ``TORCH_SERIAL_ELEMENTS``
    elements per slice: the pieces a pool thread hands to torch one by one (see there). One
    slice with one torch thread (:func:`run_blocks` then runs every block in the caller)."""
    if torch.get_num_threads() == 1:
        return [slice(0, rows)]
    step = max(1, TORCH_SERIAL_ELEMENTS // max(row_elements, 1))
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]


def chunked_numpy(function: Callable[..., tuple[Any, Any]], *operands: Tensor) -> tuple[Tensor, Tensor]:
    """``function(*numpy_chunks, numpy) -> (int64, bool)`` over cache-sized chunks of CPU tensors.

    Fresh multi-MB temporaries cost page faults; chunks of 16K elements stay in cache, and the
    chunks run on the shared thread pool. Returns the int64 values and bool flags, shaped like
    ``operands[0]``.
    """
    shape = operands[0].shape
    flat = [operand.reshape(-1).contiguous().numpy() for operand in operands]
    size = flat[0].size
    values = np.empty(size, dtype=np.int64)
    flags = np.empty(size, dtype=bool)

    def chunk(start: int, stop: int) -> None:
        values[start:stop], flags[start:stop] = function(*(f[start:stop] for f in flat), np)

    run_blocks(chunk, [(start, min(start + CHUNK, size)) for start in range(0, size, CHUNK)])
    return torch.from_numpy(values).reshape(shape), torch.from_numpy(flags).reshape(shape)
