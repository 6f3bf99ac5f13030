"""One snapshot of memory: this process, the whole system, and each CUDA device.

The system figures are the system's own (``psutil.virtual_memory``), so a threshold of 90 %
means what a user expects: the machine is 90 % full. (The original reported this process's share
of RAM under that name, so its thresholds practically never fired.) CUDA figures come from
torch's allocator and the driver (``torch.cuda.mem_get_info``).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass

import psutil
import torch

from .._validation import check_int

__all__ = ["CudaMemory", "MemoryStats", "get_memory_stats", "cuda_memory"]


@dataclass(frozen=True)
class CudaMemory:
    """One CUDA device's memory.

    Attributes:
        device: the device index.
        allocated_bytes: bytes held by live tensors (torch's caching allocator).
        reserved_bytes: bytes the caching allocator holds from the driver (allocated + cached).
        peak_allocated_bytes: the largest ``allocated_bytes`` since the last peak reset.
        free_bytes, total_bytes: the driver's view of the whole device (every process).
    """

    device: int
    allocated_bytes: int
    reserved_bytes: int
    peak_allocated_bytes: int
    free_bytes: int
    total_bytes: int

    @property
    def percent_used(self) -> float:
        """How full the device is, for every process: ``(total - free) / total * 100``."""
        return 100.0 * (self.total_bytes - self.free_bytes) / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class MemoryStats:
    """Process, system and CUDA memory at one moment.

    Attributes:
        process_rss_bytes: resident set size of this process.
        process_vms_bytes: virtual memory size of this process.
        system_total_bytes: physical memory of the machine.
        system_available_bytes: memory the system can hand out without swapping.
        system_percent: the system's memory pressure in percent, as the system reports it
            (``psutil.virtual_memory().percent``, i.e. ``(total - available) / total * 100``).
        cuda: one :class:`CudaMemory` per device reported (empty without a GPU; see
            :func:`get_memory_stats` for which devices).
        gc_pending: ``gc.get_count()``: allocations minus deallocations per generation since
            its last collection (what the original misnamed "collections").
        gc_collections: collections run so far per generation (``gc.get_stats()``).
        gc_threshold: ``gc.get_threshold()``.
    """

    process_rss_bytes: int
    process_vms_bytes: int
    system_total_bytes: int
    system_available_bytes: int
    system_percent: float
    cuda: tuple[CudaMemory, ...]
    gc_pending: tuple[int, int, int]
    gc_collections: tuple[int, ...]
    gc_threshold: tuple[int, ...]

    @property
    def system_used_bytes(self) -> int:
        """``total - available``: the memory the system counts as used (matches ``system_percent``)."""
        return self.system_total_bytes - self.system_available_bytes

    @property
    def process_percent(self) -> float:
        """This process's resident memory as a share of physical memory, in percent."""
        return 100.0 * self.process_rss_bytes / self.system_total_bytes if self.system_total_bytes else 0.0

    # The original's field names, with the system meaning (see the module docstring).
    @property
    def total_bytes(self) -> int:
        return self.system_total_bytes

    @property
    def available_bytes(self) -> int:
        return self.system_available_bytes

    @property
    def used_bytes(self) -> int:
        return self.system_used_bytes

    @property
    def percent_used(self) -> float:
        return self.system_percent

    @property
    def gc_stats(self) -> dict[str, tuple[int, ...]]:
        """The GC figures as a dict (the original's field; honest key names)."""
        return {"pending": self.gc_pending, "collections": self.gc_collections, "threshold": self.gc_threshold}

    def percent(self, on: str) -> float:
        """The percentage a :class:`MemoryMonitor` watches: ``"system"``, ``"process"`` or ``"cuda:N"``."""
        if on == "system":
            return self.system_percent
        if on == "process":
            return self.process_percent
        index = int(on.split(":", 1)[1])
        for device in self.cuda:
            if device.device == index:
                return device.percent_used
        raise LookupError(f"these stats hold no figures for cuda:{index} (devices: {[d.device for d in self.cuda]})")


def cuda_memory(device: int) -> CudaMemory:
    """The memory figures of CUDA device ``device`` (initialises CUDA on it if needed)."""
    device = check_int(device, "device", low=0)
    free, total = torch.cuda.mem_get_info(device)
    return CudaMemory(
        device=device,
        allocated_bytes=int(torch.cuda.memory_allocated(device)),
        reserved_bytes=int(torch.cuda.memory_reserved(device)),
        peak_allocated_bytes=int(torch.cuda.max_memory_allocated(device)),
        free_bytes=int(free),
        total_bytes=int(total),
    )


def _cuda_devices(devices: Sequence[int] | None) -> list[int]:
    if devices is not None:
        return [check_int(d, "devices[]", low=0) for d in devices]
    # Reading a device's figures creates a CUDA context on it (hundreds of MB): by default,
    # report only when this process already uses CUDA.
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return []
    return list(range(torch.cuda.device_count()))


def get_memory_stats(devices: Sequence[int] | None = None) -> MemoryStats:
    """Process, system and CUDA memory now.

    Args:
        devices: CUDA device indices to report. ``None`` (default): every device if this process
            has already initialised CUDA, none otherwise (so that asking never creates a CUDA
            context); ``[]``: none.

    Returns:
        A :class:`MemoryStats`. It never walks the heap (the original counted every object
        with ``gc.get_objects()`` on each call).

    Example:
        >>> stats = get_memory_stats()
        >>> 0 < stats.process_rss_bytes < stats.system_total_bytes and 0 <= stats.system_percent <= 100
        True
    """
    info = psutil.Process().memory_info()
    system = psutil.virtual_memory()
    cuda = tuple(cuda_memory(d) for d in _cuda_devices(devices))
    pending = gc.get_count()
    return MemoryStats(
        process_rss_bytes=int(info.rss),
        process_vms_bytes=int(info.vms),
        system_total_bytes=int(system.total),
        system_available_bytes=int(system.available),
        system_percent=float(system.percent),
        cuda=cuda,
        gc_pending=(int(pending[0]), int(pending[1]), int(pending[2])),
        gc_collections=tuple(int(g["collections"]) for g in gc.get_stats()),
        gc_threshold=tuple(int(t) for t in gc.get_threshold()),
    )
