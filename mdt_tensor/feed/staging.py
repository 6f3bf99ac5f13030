"""Two host buffers and two device buffers, so that one epoch's rows land while the other computes.

Rows are written straight into a host buffer ``(V, n)`` (page-locked when the target is a CUDA
device, so the copy can be asynchronous), then copied to the device with ``non_blocking=True`` on
a side stream. The caller's stream waits for that copy on the GPU (no host sync); a host buffer
is refilled only after its previous copy has finished, and a device buffer is overwritten only
after the work the caller queued before the copy (on its current stream) has run.
"""

from __future__ import annotations

import numpy as np
import torch

__all__: list[str] = []


class Staging:
    """Slots 0 and 1, each a host ``(V, n)`` buffer plus ``(V,)`` mask and their device twins."""

    def __init__(self, rows: int, n: int, dtype: torch.dtype, device: torch.device) -> None:
        self.device = device
        self.is_cuda = device.type == "cuda"
        pin = self.is_cuda and torch.cuda.is_available()
        self.host = [torch.zeros((rows, n), dtype=dtype, pin_memory=pin) for _ in range(2)]
        self.host_mask = [torch.zeros(rows, dtype=torch.bool, pin_memory=pin) for _ in range(2)]
        self._host_np = [buffer.numpy() for buffer in self.host]
        if device.type == "cpu":
            self.out, self.out_mask = self.host, self.host_mask
        else:
            self.out = [torch.zeros((rows, n), dtype=dtype, device=device) for _ in range(2)]
            self.out_mask = [torch.zeros(rows, dtype=torch.bool, device=device) for _ in range(2)]
        self.stream = torch.cuda.Stream(device) if self.is_cuda else None
        self._copied: list[torch.cuda.Event | None] = [None, None]

    @property
    def pinned(self) -> bool:
        return bool(self.host[0].is_pinned()) if torch.cuda.is_available() else False

    def host_rows(self, slot: int) -> np.ndarray:
        """The host buffer of ``slot`` as a writable numpy view; waits for its previous copy."""
        event = self._copied[slot]
        if event is not None:
            event.synchronize()
            self._copied[slot] = None
        return self._host_np[slot]

    def publish(self, slot: int, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``mask`` and make ``slot``'s rows visible on the device; returns (weights, mask)."""
        self.host_mask[slot].numpy()[:] = mask
        if self.device.type == "cpu":
            return self.host[slot], self.host_mask[slot]
        if self.stream is None:  # another accelerator: an ordinary copy
            self.out[slot].copy_(self.host[slot], non_blocking=True)
            self.out_mask[slot].copy_(self.host_mask[slot], non_blocking=True)
            return self.out[slot], self.out_mask[slot]
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self.stream):
            self.stream.wait_stream(compute)  # earlier work may still read this device buffer
            self.out[slot].copy_(self.host[slot], non_blocking=True)
            self.out_mask[slot].copy_(self.host_mask[slot], non_blocking=True)
            event = torch.cuda.Event()
            event.record(self.stream)
        compute.wait_event(event)  # the caller's kernels run after the copy; the host does not wait
        self._copied[slot] = event
        return self.out[slot], self.out_mask[slot]
