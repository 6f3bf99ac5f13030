"""Process-group plumbing of the distributed jobs: shares of a job list, status exchange, guarded collectives.

A distributed job fails as a whole. Each rank runs its local steps under a :class:`Guard`; a
step that raises leaves a placeholder of the right shape, so the rank still joins the next
collective, which carries a status flag. When any flag is set (or at an explicit
:meth:`Guard.check`), all ranks exchange their error messages in one small all-gather of objects
and raise the same :class:`DistributedJobError` naming every failing rank and its error. A
collective that itself fails (a rank died, or did not arrive within the process group's
timeout) raises :class:`CollectiveError` on the ranks still alive. Nothing here initialises a
process group: the caller (or ``torchrun`` plus ``mdt_tensor.cli.distributed.init_from_env``) does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from ..errors import MdtError

__all__ = [
    "DistributedJobError",
    "CollectiveError",
    "ProcessGroupError",
    "shard_range",
    "group_info",
    "Guard",
]

T = TypeVar("T")


class ProcessGroupError(MdtError, RuntimeError):
    """No initialised ``torch.distributed`` process group to run on."""


class DistributedJobError(MdtError, RuntimeError):
    """A distributed job failed; raised on every rank alike.

    Attributes:
        failures: ``{rank: "ErrorType: message"}`` for each rank whose own step raised (empty
            for a :class:`CollectiveError`, where the failing rank cannot be named).
    """

    def __init__(self, message: str, failures: dict[int, str] | None = None) -> None:
        super().__init__(message)
        self.failures = dict(failures or {})


class CollectiveError(DistributedJobError):
    """A collective failed: a rank died, or did not reach it within the process group's timeout."""


def shard_range(total: int, rank: int, world_size: int) -> range:
    """The jobs ``rank`` runs out of ``total``: a contiguous block, sizes differing by at most one.

    The first ``total % world_size`` ranks take one job more; ranks beyond ``total`` take none.

    Example:
        >>> [list(shard_range(5, r, 3)) for r in range(3)]
        [[0, 1], [2, 3], [4]]
        >>> list(shard_range(2, 3, 4))
        []
    """
    if total < 0 or world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"Expected total >= 0 and 0 <= rank < world_size, but got {total}, {rank}, {world_size}.")
    base, extra = divmod(total, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def group_info(group: Any = None) -> tuple[int, int]:
    """``(rank, world_size)`` in ``group`` (default: the whole world); raises if none is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        raise ProcessGroupError(
            "Expected an initialised torch.distributed process group (launch with torchrun and call "
            "torch.distributed.init_process_group, or mdt_tensor.cli.distributed.init_from_env), but none is."
        )
    return dist.get_rank(group), dist.get_world_size(group)


def comm_device(group: Any = None) -> torch.device:
    """Where the group's collectives take tensors: the current CUDA device for NCCL, else the CPU."""
    if "nccl" in str(dist.get_backend(group)).lower():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class Guard:
    """This rank's side of one distributed job: local steps, flagged collectives, one fate for all.

    Args:
        group: the process group (default: the world).
        job: a name for messages (e.g. ``"run_epochs"``).
    """

    def __init__(self, group: Any = None, job: str = "job") -> None:
        self.group = group
        self.job = job
        self.rank, self.world_size = group_info(group)
        self.device = comm_device(group)
        self.error: BaseException | None = None
        #: Seconds spent inside collectives so far (transfer plus waiting for the other ranks).
        self.comm_seconds = 0.0

    # ------------------------------------------------------------------ local steps

    def run(self, step: Callable[[], T], placeholder: Callable[[], T]) -> T:
        """``step()``, or ``placeholder()`` once this rank has failed (then the collectives go on)."""
        if self.error is None:
            try:
                return step()
            except Exception as exc:  # any failure of this rank's work fails the whole job
                self.error = exc
        return placeholder()

    # ------------------------------------------------------------------ collectives

    def _collective(self, name: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return call()
        except Exception as exc:  # gloo / NCCL: a peer closed its connection, or the timeout passed
            raise CollectiveError(
                f"{self.job}: the collective '{name}' failed on rank {self.rank} of {self.world_size}: a rank "
                f"died or did not reach it within the process group's timeout ({describe(exc)})"
            ) from exc
        finally:
            self.comm_seconds += time.perf_counter() - start

    def check(self, name: str, info: Any = None) -> list[Any]:
        """Exchange every rank's status (and a small picklable ``info``); raise if any rank failed.

        Returns:
            The ``info`` of every rank, in rank order.
        """
        mine = (None if self.error is None else describe(self.error), info)
        everyone: list[Any] = [None] * self.world_size
        self._collective(name, lambda: dist.all_gather_object(everyone, mine, group=self.group))
        failures = {rank: message for rank, (message, _) in enumerate(everyone) if message is not None}
        if failures:
            listed = "; ".join(f"rank {rank}: {message}" for rank, message in failures.items())
            raise DistributedJobError(
                f"{self.job} failed on {len(failures)} of {self.world_size} rank(s): {listed}", failures
            ) from self.error
        return [info for _, info in everyone]

    def all_reduce_sum(self, name: str, values: Tensor) -> Tensor:
        """The sum over ranks of ``values`` (any shape, int64 or float), with the status flag appended.

        Integer sums are exact, so they do not depend on the number of ranks or their order.
        """
        flat = values.reshape(-1).to(self.device)
        flag = torch.ones(1, dtype=flat.dtype, device=self.device) * (self.error is not None)
        buffer = torch.cat([flat, flag])
        self._collective(name, lambda: dist.all_reduce(buffer, group=self.group))
        if bool(buffer[-1] != 0):
            self.check(f"{name} (status)")
        return buffer[:-1].reshape(values.shape).to(values.device)

    def all_gather_bytes(self, name: str, payload: Tensor, sizes: list[int]) -> list[Tensor]:
        """Every rank's ``payload`` (uint8, 1-D, ``sizes[rank]`` bytes), in rank order, on every rank."""
        padded = self._padded(payload, max(sizes))
        out = [torch.empty_like(padded) for _ in range(self.world_size)]
        self._collective(name, lambda: dist.all_gather(out, padded, group=self.group))
        return [chunk[:size] for chunk, size in zip(out, sizes)]

    def gather_bytes(self, name: str, payload: Tensor, sizes: list[int], dst: int = 0) -> list[Tensor] | None:
        """As :meth:`all_gather_bytes`, but only rank ``dst`` receives (the others get None)."""
        padded = self._padded(payload, max(sizes))
        out = [torch.empty_like(padded) for _ in range(self.world_size)] if self.rank == dst else None
        self._collective(name, lambda: dist.gather(padded, out, dst=dst, group=self.group))
        return None if out is None else [chunk[:size] for chunk, size in zip(out, sizes)]

    def gather_objects(self, name: str, item: Any, root_only: bool) -> list[Any] | None:
        """Every rank's picklable ``item`` in rank order: on every rank, or on rank 0 only."""
        if not root_only:
            everyone: list[Any] = [None] * self.world_size
            self._collective(name, lambda: dist.all_gather_object(everyone, item, group=self.group))
            return everyone
        received: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
        self._collective(name, lambda: dist.gather_object(item, received, dst=0, group=self.group))
        return received

    def _padded(self, payload: Tensor, length: int) -> Tensor:
        padded = torch.zeros(max(length, 1), dtype=torch.uint8, device=self.device)
        padded[: payload.numel()] = payload.to(self.device)
        return padded
