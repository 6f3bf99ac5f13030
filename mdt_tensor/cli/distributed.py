"""``--distributed`` for ``mdt-tensor epoch`` and ``replay``: torchrun's process group and each rank's share.

Launched as ``torchrun --nproc-per-node N -m mdt_tensor epoch --distributed ...``, every rank
runs the same command. :func:`init_from_env` joins the process group torchrun describes (gloo on
CPU, NCCL with one GPU per rank, a collective timeout); the epoch jobs are sharded by
``mt.distributed.run_epochs`` and gathered on rank 0 (:func:`epoch_job`); a replay reads only this
rank's share of the snapshot files (:func:`map_files`); rank 0 alone prints and writes the exports
with the single-process code on the merged results (:func:`write_on_root`), so exact-mode files
equal the single-process ones byte for byte. Any rank's failure makes every rank exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from .. import distributed, yuma
from ..distributed.comm import DistributedJobError, Guard, ProcessGroupError
from ..errors import MdtError
from .failures import error_line, guarded

__all__ = ["DistEnv", "init_from_env", "close", "add_arguments", "epoch_job", "map_files", "on_every_rank", "on_root",
           "write_on_root", "run_command"]

R = TypeVar("R")
Backend = Literal["auto", "gloo", "nccl"]
_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: The SubnetState fields a single subnet holds per uid (they gain a job axis of one).
_BATCHED = ("weights", "stake", "last_update", "block_at_registration", "validator_permit", "bonds",
            "weights_present", "previous_consensus")


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job.

    Attributes:
        rank, world_size, local_rank: as torchrun numbers them.
        backend: ``"gloo"`` or ``"nccl"``.
        device: where this rank computes (``cuda:LOCAL_RANK`` under NCCL, else the CPU).
        owns_group: :func:`init_from_env` created the group (and :func:`close` destroys it).
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device
    owns_group: bool

    @property
    def is_root(self) -> bool:
        return self.rank == 0


def init_from_env(backend: Backend = "auto", timeout_s: float = 300.0, environ: Mapping[str, str] | None = None) -> DistEnv:
    """Join the process group that torchrun's variables describe (or the one already initialised).

    Args:
        backend: ``"auto"``: NCCL when CUDA is available, else gloo.
        timeout_s: the collective timeout: a rank that dies or hangs fails the job after at most
            this long (gloo; under NCCL it also needs ``TORCH_NCCL_ASYNC_ERROR_HANDLING=1``, the default).
        environ: the variables (default ``os.environ``): ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
            ``MASTER_PORT``, optional ``LOCAL_RANK``.

    Raises:
        ProcessGroupError: the variables are missing (not launched by torchrun), or NCCL without CUDA.
    """
    env = os.environ if environ is None else environ
    if backend not in ("auto", "gloo", "nccl"):
        raise ValueError(f"Expected `backend` in ('auto', 'gloo', 'nccl'), but got {backend!r}.")
    if not timeout_s > 0:
        raise ValueError(f"Expected `timeout_s` > 0, but got {timeout_s!r}.")
    owns = not (dist.is_available() and dist.is_initialized())
    if owns:
        missing = [name for name in _TORCHRUN_VARIABLES if name not in env]
        if missing:
            raise ProcessGroupError(
                f"--distributed needs torchrun's environment, but {', '.join(missing)} is not set: run "
                "`torchrun --nproc-per-node N -m mdt_tensor COMMAND --distributed ...`."
            )
        wanted = ("nccl" if torch.cuda.is_available() else "gloo") if backend == "auto" else backend
        if wanted == "nccl" and not torch.cuda.is_available():
            raise ProcessGroupError("--dist-backend nccl needs CUDA, which this machine does not have.")
        if wanted == "nccl":
            torch.cuda.set_device(int(env.get("LOCAL_RANK", env["RANK"])))
        dist.init_process_group(
            wanted, init_method=f"tcp://{env['MASTER_ADDR']}:{env['MASTER_PORT']}", rank=int(env["RANK"]),
            world_size=int(env["WORLD_SIZE"]), timeout=timedelta(seconds=timeout_s),
        )
    chosen = str(dist.get_backend()).lower()
    local_rank = int(env.get("LOCAL_RANK", dist.get_rank()))
    device = torch.device("cuda", torch.cuda.current_device()) if "nccl" in chosen else torch.device("cpu")
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, chosen, device, owns)


def close(env: DistEnv) -> None:
    """Leave the process group if :func:`init_from_env` created it."""
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--distributed``, ``--dist-timeout`` and ``--dist-backend`` for a subcommand's parser."""
    group = parser.add_argument_group("distributed (launch with torchrun)")
    group.add_argument("--distributed", action="store_true",
                       help="share the jobs over torchrun's ranks (gloo on CPU, NCCL with one GPU per rank)")
    group.add_argument("--dist-timeout", type=float, default=300.0, metavar="SECONDS",
                       help="collective timeout: a dead or hung rank fails the job after this long (default 300)")
    group.add_argument("--dist-backend", choices=("auto", "gloo", "nccl"), default="auto",
                       help="process-group backend (default auto: nccl with CUDA, else gloo)")


def epoch_job(
    state: yuma.SubnetState,
    weight_updates: Any,
    params: yuma.YumaParams,
    emission: Any,
    env: DistEnv,
    **options: Any,
) -> yuma.EpochResult | None:
    """The epoch command's computation over the ranks: the full results on rank 0, None elsewhere.

    ``state`` is the whole batch on every rank (the demo network is synthesised alike everywhere);
    a single subnet ``(n, n)`` is run as a batch of one. ``weight_updates`` None runs one epoch
    (``mt.yuma.epoch``), else ``(T, subnets, n, n)`` epochs (``mt.yuma.run_epochs``); ``options``
    are their keyword arguments (``exact``, ``payout``, ``dtype``). The result has the
    single-process shapes.
    """
    single = np.ndim(state.weights) == 2
    if single:
        state = yuma.SubnetState(**{
            name: (value[None] if name in _BATCHED and value is not None and not isinstance(value, int) else value)
            for name, value in vars(state).items()
        })
        if weight_updates is not None:
            weight_updates = weight_updates[:, None]
    run = distributed.run_epochs(state, weight_updates, params, emission, gather="root", device=env.device, **options)
    if run.results is None or not single:
        return run.results
    axis = 0 if weight_updates is None else 1
    return yuma.EpochResult(**{name: value.squeeze(axis) for name, value in vars(run.results).items()})


def map_files(paths: Sequence[Path], job: Callable[[Path], R], env: DistEnv) -> list[R] | None:
    """``[job(p) for p in paths]`` with each rank reading only its share; the list on rank 0 only.

    The share is a contiguous block of ``paths`` (keep them in their replay order); the results
    come back in that order, so rank 0 can export them exactly as a single process would.
    """
    del env  # the share follows the default group, which init_from_env joined
    return distributed.map_jobs(list(paths), job, gather="root")


def on_every_rank(step: Callable[[], R], env: DistEnv, what: str) -> R:
    """``step()`` on every rank, then one fate for all: if any rank raised, every rank raises its error.

    For work every rank does alike before the first collective (checking options, reading the
    input): a rank that fails there would otherwise leave the others waiting for the timeout.
    """
    guard = Guard(None, what)
    value = guard.run(step, lambda: None)
    guard.check("status")
    return value  # type: ignore[return-value]  # not None: check() raised if the step failed


def on_root(step: Callable[[], R], env: DistEnv, what: str) -> R | None:
    """``step()`` on rank 0 (None elsewhere); if it raises, every rank raises its error."""
    guard = Guard(None, what)
    value = guard.run(step, lambda: None) if env.is_root else None
    guard.check("status")
    return value


def write_on_root(path: Path, write: Callable[[Path], None], env: DistEnv) -> None:
    """Rank 0 writes ``path`` with ``write(temporary)`` then renames it; every rank learns the outcome.

    The temporary file is hidden beside ``path`` and keeps its suffix (writers that choose the
    format by extension see the right one). The other ranks wait for rank 0 (within the
    collective timeout) and raise its error if the write failed, so every rank exits with the
    same status and no half-written file remains.
    """
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")

    def step() -> None:
        try:
            write(temporary)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    on_root(step, env, f"writing {path}")


def run_command(handler: Callable[[argparse.Namespace, DistEnv], int], args: argparse.Namespace) -> int:
    """Run a subcommand's distributed handler: join the group, apply the CLI's rules, leave the group.

    Failures follow :mod:`mdt_tensor.cli.failures` (bad input or a failed rank: exit 2; one line,
    printed by rank 0 only, or a traceback with ``--debug``); every rank returns the same status.
    """
    command, debug = getattr(args, "command", None), bool(getattr(args, "debug", False))
    try:
        env = init_from_env(args.dist_backend, args.dist_timeout)
    except (MdtError, ValueError, RuntimeError) as exc:
        if debug:
            raise
        print(error_line(command, exc if isinstance(exc, MdtError) else ProcessGroupError(str(exc))), file=sys.stderr)
        return 2
    def call() -> int:
        try:
            return handler(args, env)
        except DistributedJobError as exc:
            raise _shorter(exc, env.world_size) from exc

    try:
        return guarded(command, call, debug=debug, report=env.is_root)
    finally:
        close(env)


def _shorter(exc: DistributedJobError, world_size: int) -> DistributedJobError:
    """``exc``, or the same error said once when every rank failed alike (a bad option or a shared bad file)."""
    messages = set(exc.failures.values())
    if len(exc.failures) == world_size > 1 and len(messages) == 1:
        return DistributedJobError(f"on every rank: {messages.pop()}", exc.failures)
    return exc
