"""A batch of epoch jobs sharded over the ranks of a ``torch.distributed`` process group.

The jobs are the leading (subnet / job) axis of a :class:`mt.yuma.SubnetState`, each with its
own sequence of epochs. Rank r runs the contiguous block ``shard_range(jobs, r, world)`` batched
on its device through ``mt.yuma.run_epochs`` (or ``mt.yuma.epoch``), then every rank reports its
status, and the results travel as one packed byte buffer per rank, reassembled in job order.
The exact epoch of a job does not depend on the other jobs of its batch, so the gathered result
is bit for bit a single-process run's, whatever the number of ranks and whatever order they
finish in. ``out_dir`` writes per-rank part files instead (``files.py``); ``map_jobs`` runs any
picklable per-job function the same way (e.g. one job per snapshot file).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import Tensor

from .. import yuma
from ..errors import DTypeError, ShapeError, ValueRangeError
from . import files
from .comm import Guard, shard_range

__all__ = ["DistributedRun", "run_epochs", "map_jobs"]

Gather = Literal["all", "root", "none"]
J = TypeVar("J")
R = TypeVar("R")
#: (field name, dtype name, shape after the job axis)
_Spec = tuple[str, str, tuple[int, ...]]


@dataclass
class DistributedRun:
    """What :func:`run_epochs` returns on one rank.

    Attributes:
        results: the :class:`mt.yuma.EpochResult` of every job (``gather="all"``, and rank 0 with
            ``"root"``), of this rank's jobs (``"none"``), or None (other ranks with ``"root"``,
            and every rank with ``out_dir``).
        final_state: the :class:`mt.yuma.SubnetState` after the last epoch, for the same jobs as
            ``results`` (None for a single epoch, ``weight_updates=None``).
        jobs: the global jobs this rank ran.
        total_jobs: the number of jobs in the whole batch.
        manifest: with ``out_dir``: the manifest of the complete run (read it with
            ``mt.distributed.load_parts`` or ``iter_parts``).
        comm_seconds: time this rank spent in collectives (transfers and waiting for the others).
    """

    results: yuma.EpochResult | None
    final_state: yuma.SubnetState | None
    jobs: range
    total_jobs: int
    manifest: Path | None = None
    comm_seconds: float = 0.0


def _is_array(x: Any) -> bool:
    return isinstance(x, (Tensor, np.ndarray))


def _job_count(state: yuma.SubnetState) -> int:
    if not isinstance(state, yuma.SubnetState):
        raise DTypeError(f"Expected `state` to be a mt.yuma.SubnetState, but got {type(state).__name__}.")
    shape = tuple(np.shape(state.weights))
    if len(shape) < 3:
        raise ShapeError(f"Expected `state.weights` of shape (jobs, *, n, n) with a leading job axis, but got {shape}.")
    return int(shape[0])


def _take(value: Any, jobs: range, device: torch.device, axis: int = 0) -> Any:
    """``value[jobs]`` along ``axis`` as a tensor on ``device``; scalars (shared by all jobs) as they are."""
    if value is None or isinstance(value, (int, float)) or np.ndim(value) <= axis:
        return value
    index = (slice(None),) * axis + (slice(jobs.start, jobs.stop),)
    part = value[index] if _is_array(value) else np.asarray(value)[index]
    return torch.as_tensor(part).to(device)


def _slice_state(state: yuma.SubnetState, jobs: range, device: torch.device) -> yuma.SubnetState:
    return yuma.SubnetState(**{f.name: _take(getattr(state, f.name), jobs, device) for f in fields(yuma.SubnetState)})


def _slice_updates(updates: Any, jobs: range, device: torch.device) -> Any:
    if _is_array(updates):
        return _take(updates, jobs, device, axis=1)
    return (_take(u, jobs, device) for u in updates)


def _as_fields(obj: Any, axis: int) -> dict[str, Tensor]:
    """The tensor fields of a result / state, the job axis moved first (scalars dropped)."""
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if value is None or isinstance(value, (int, float)):
            continue
        out[f.name] = torch.as_tensor(value).movedim(axis, 0)
    return out


def _run_shard(
    state: yuma.SubnetState, updates: Any, emission: Any, local: range, first_job: int, chunk: int,
    device: torch.device, options: dict[str, Any], out_dir: Path | None, parts: list[files.PartFile],
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Run the jobs ``local`` (indices into ``state``; global job ``first_job`` onwards) in chunks.

    Returns the result and final-state fields, job axis first (empty when written to ``out_dir``,
    where each chunk becomes a part file appended to ``parts``).
    """
    results: list[dict[str, Tensor]] = []
    finals: list[dict[str, Tensor]] = []
    axis = 0 if updates is None else 1
    for start in range(local.start, local.stop, chunk):
        piece = range(start, min(start + chunk, local.stop))
        sub = _slice_state(state, piece, device)
        e = _take(emission, piece, device)
        if updates is None:
            result, final = yuma.epoch(sub, emission=e, **options), None
        else:
            result, final = yuma.run_epochs(sub, _slice_updates(updates, piece, device), emission=e, **options)
        result_fields, final_fields = _as_fields(result, axis), ({} if final is None else _as_fields(final, 0))
        if out_dir is None:
            results.append(result_fields)
            finals.append(final_fields)
            continue
        offset = first_job - local.start
        part = files.part_for(out_dir, range(piece.start + offset, piece.stop + offset))
        parts.append(part)  # before writing: a failed write leaves a temporary file to discard
        files.write_part(part, {k: v.movedim(0, axis) for k, v in result_fields.items()}, final_fields)
    return _concat(results), _concat(finals)


def _concat(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return {k: torch.cat([item[k] for item in items]) for k in items[0]} if items else {}


def _specs(fields_: dict[str, Tensor], prefix: str) -> list[_Spec]:
    return [(prefix + k, str(v.dtype).removeprefix("torch."), tuple(v.shape[1:])) for k, v in fields_.items()]


def _pack(tensors: list[Tensor]) -> Tensor:
    """The tensors' bytes, one after the other (uint8, 1-D)."""
    chunks = [t.contiguous().reshape(-1).view(torch.uint8) for t in tensors]
    return torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.uint8)


def _unpack(chunk: Tensor, count: int, specs: list[_Spec]) -> dict[str, Tensor]:
    """Split one rank's bytes back into its ``count`` jobs' tensors."""
    out, offset = {}, 0
    for name, dtype_name, tail in specs:
        dtype = getattr(torch, dtype_name)
        size = count * math.prod(tail) * torch.empty(0, dtype=dtype).element_size()
        out[name] = chunk[offset:offset + size].clone().view(dtype).reshape(count, *tail)
        offset += size
    return out


def _assemble(merged: dict[str, Tensor], axis: int, as_numpy: bool, has_final: bool) -> tuple[yuma.EpochResult, Any]:
    def wrap(t: Tensor, dim: int) -> Any:
        t = t.movedim(0, dim) if t.ndim > dim else t
        return t.cpu().numpy() if as_numpy else t

    result = yuma.EpochResult(**{
        f.name: wrap(merged["result." + f.name], axis) for f in fields(yuma.EpochResult)
    })
    if not has_final:
        return result, None
    final = yuma.SubnetState(**{
        f.name: wrap(merged["final." + f.name], 0) if "final." + f.name in merged else None
        for f in fields(yuma.SubnetState)
    })
    return result, final


def run_epochs(
    state: yuma.SubnetState,
    weight_updates: Any = None,
    params: yuma.YumaParams = yuma.YumaParams(),
    emission: Any = 1_000_000_000,
    *,
    exact: bool = True,
    payout: Literal["chain", "exact"] = "chain",
    dtype: torch.dtype | None = None,
    group: Any = None,
    gather: Gather = "all",
    local: bool = False,
    out_dir: str | Path | None = None,
    chunk_jobs: int | None = None,
    device: str | torch.device | None = None,
    validate: bool = True,
) -> DistributedRun:
    """Run a batch of epoch jobs over the ranks of an initialised process group.

    Every rank calls this with the same arguments. The jobs are the leading axis of ``state``;
    rank r runs ``shard_range(jobs, r, world_size)`` batched on its device. Exact results are bit
    for bit those of ``mt.yuma.run_epochs`` (or ``mt.yuma.epoch``) on the whole batch in one
    process, for any number of ranks (more ranks than jobs included); fast results agree to float
    rounding (a batched float reduction may round differently for a different batch size).

    Args:
        state: ``(jobs, *, n, n)`` weights and the other :class:`mt.yuma.SubnetState` fields,
            each with the leading job axis (scalars are shared by all jobs). Only this rank's
            slice is read, so a memory-mapped numpy array is read in part. With ``local=True``:
            this rank's jobs only; the batch is the ranks' jobs in rank order.
        weight_updates: ``(T, jobs, *, n, n)`` u16 weights for ``T`` consecutive epochs (the job
            axis second), or an iterable of ``(jobs, *, n, n)`` arrays; None: one epoch on
            ``state.weights`` (``mt.yuma.epoch``).
        params, emission, exact, payout, dtype, validate: as in ``mt.yuma.run_epochs``;
            ``emission`` is an int or ``(jobs, *)``.
        group: the process group (default: the world).
        gather: ``"all"``: every rank gets every job's results; ``"root"``: rank 0 only;
            ``"none"``: each rank keeps its own jobs' results.
        local: ``state``, ``weight_updates`` and ``emission`` hold this rank's jobs only.
        out_dir: write the results as part files there instead of gathering them (``gather`` is
            then ignored); rank 0 writes the manifest only after every rank succeeded, and a
            failed run leaves neither manifest nor parts (see ``files.py``).
        chunk_jobs: run this rank's jobs this many at a time (bounds memory with ``out_dir``).
        device: where this rank computes (default: the current CUDA device under NCCL, else
            the CPU). Gathered results are on the group's communication device.

    Returns:
        :class:`DistributedRun`; results are torch tensors (numpy arrays when ``state.weights``
        is one).

    Raises:
        DistributedJobError: on every rank, when any rank's part raised (naming each failing
            rank and its error); CollectiveError when a rank died or the group's timeout passed.
        ProcessGroupError: no initialised process group.
    """
    if gather not in ("all", "root", "none"):
        raise ValueRangeError(f"Expected `gather` in ('all', 'root', 'none'), but got {gather!r}.")
    if chunk_jobs is not None and (isinstance(chunk_jobs, bool) or not isinstance(chunk_jobs, int) or chunk_jobs < 1):
        raise ValueRangeError(f"Expected `chunk_jobs` to be a positive int or None, but got {chunk_jobs!r}.")
    guard = Guard(group, "mdt_tensor.distributed.run_epochs")
    rank, world = guard.rank, guard.world_size
    where = torch.device(device) if device is not None else guard.device
    folder = None if out_dir is None else Path(out_dir)
    if folder is not None and rank == 0:
        guard.run(lambda: files.remove_manifest(folder), lambda: None)

    count = guard.run(lambda: _job_count(state), lambda: 0)
    counts = guard.check("job counts", count)
    if local:
        first = sum(counts[:rank])
        total, mine = sum(counts), range(count)
    else:
        if len(set(counts)) != 1:
            raise ShapeError(f"Expected every rank to pass the same batch of jobs, but the ranks hold {counts} jobs.")
        total = counts[0]
        mine = shard_range(total, rank, world)
        first = mine.start
    if total == 0:
        raise ShapeError("Expected at least one job in the batch, but the ranks hold none.")
    shares = [len(shard_range(total, r, world)) for r in range(world)] if not local else counts
    job_axis = 0 if weight_updates is None else 1

    options: dict[str, Any] = dict(params=params, exact=exact, payout=payout, dtype=dtype, validate=validate)
    parts: list[files.PartFile] = []
    chunk = chunk_jobs or max(len(mine), 1)
    result, final = guard.run(
        lambda: _run_shard(state, weight_updates, emission, mine, first, chunk, where, options, folder, parts),
        lambda: ({}, {}),
    )
    specs = _specs(result, "result.") + _specs(final, "final.")
    sending = gather != "none" and folder is None
    payload = guard.run(lambda: _pack([*result.values(), *final.values()] if sending else []), lambda: _pack([]))
    jobs_range = range(first, first + len(mine))
    if folder is not None:
        try:
            infos = guard.check("status", (specs if len(mine) else None, 0))
            _finish_files(guard, folder, parts, total, job_axis, None if weight_updates is None else _epochs(infos))
        except BaseException:
            files.discard(parts)
            raise
        return DistributedRun(None, None, jobs_range, total, folder / files.MANIFEST, guard.comm_seconds)

    infos = guard.check("status", (specs if len(mine) else None, payload.numel()))
    known = [spec for spec, _ in infos if spec is not None]
    if any(spec != known[0] for spec in known):
        raise ShapeError("Expected every rank's jobs to have the same shapes (pad subnets to one n with n_valid), "
                         f"but the ranks' result fields differ: {known}.")
    as_numpy = isinstance(state.weights, np.ndarray)
    has_final = weight_updates is not None
    if gather == "none":
        if not mine:
            return DistributedRun(None, None, jobs_range, total, comm_seconds=guard.comm_seconds)
        return DistributedRun(*_assemble(_prefixed(result, final), job_axis, as_numpy, has_final), jobs_range, total,
                              comm_seconds=guard.comm_seconds)
    sizes = [size for _, size in infos]
    chunks = (guard.all_gather_bytes("results", payload, sizes) if gather == "all"
              else guard.gather_bytes("results", payload, sizes))
    if chunks is None:
        return DistributedRun(None, None, jobs_range, total, comm_seconds=guard.comm_seconds)
    pieces = [_unpack(c, n, known[0]) for c, n in zip(chunks, shares) if n]
    merged = {name: torch.cat([p[name] for p in pieces]) for name, _, _ in known[0]}
    return DistributedRun(*_assemble(merged, job_axis, as_numpy, has_final), jobs_range, total,
                          comm_seconds=guard.comm_seconds)


def _epochs(infos: list[Any]) -> int | None:
    for spec, _ in infos:
        for name, _, tail in spec or []:
            if name == "result.dust":
                return int(tail[0]) if tail else None
    return None


def _prefixed(result: dict[str, Tensor], final: dict[str, Tensor]) -> dict[str, Tensor]:
    return {**{"result." + k: v for k, v in result.items()}, **{"final." + k: v for k, v in final.items()}}


def _finish_files(guard: Guard, folder: Path, parts: list[files.PartFile], total: int, job_axis: int,
                  epochs: int | None) -> None:
    """Every rank succeeded: commit the parts, then rank 0 writes the manifest (each step checked)."""
    guard.run(lambda: files.commit(parts), lambda: None)
    every_part = guard.check("commit", parts)
    if guard.rank == 0:
        all_parts = [part for ranks_parts in every_part for part in ranks_parts]
        guard.run(lambda: files.write_manifest(folder, all_parts, total, job_axis, epochs), lambda: None)
    guard.check("manifest")


def map_jobs(
    jobs: Sequence[J], function: Callable[[J], R], *, group: Any = None, gather: Gather = "all"
) -> list[R] | None:
    """``[function(job) for job in jobs]`` with the jobs shared out over the ranks, in job order.

    Rank r calls ``function`` on ``shard_range(len(jobs), r, world)`` only (e.g. reads only its
    share of the snapshot files); the (picklable) results are gathered in job order, so the list
    is the same whatever the number of ranks. A rank that raises fails the job on every rank
    with :class:`DistributedJobError`.

    Args:
        jobs: the job descriptions (the same sequence on every rank).
        function: run once per job of this rank.
        group: the process group.
        gather: ``"all"`` (default), ``"root"`` (rank 0 gets the list, the others None) or
            ``"none"`` (each rank gets its own jobs' results).
    """
    if gather not in ("all", "root", "none"):
        raise ValueRangeError(f"Expected `gather` in ('all', 'root', 'none'), but got {gather!r}.")
    guard = Guard(group, "mdt_tensor.distributed.map_jobs")
    mine = shard_range(len(jobs), guard.rank, guard.world_size)
    results = guard.run(lambda: [function(jobs[i]) for i in mine], lambda: [])
    guard.check("status")
    if gather == "none":
        return results
    per_rank = guard.gather_objects("results", results, root_only=gather == "root")
    return None if per_rank is None else [item for items in per_rank for item in items]

