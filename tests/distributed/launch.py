"""Start a gloo job of forked processes on 127.0.0.1 (torchrun's variables), collect each rank's outcome.

Forked children start in milliseconds (torch is already imported), where fresh interpreters take
seconds each on a busy 2-core machine. Each child runs with one torch thread (as DataLoader
workers do after a fork), joins through ``mdt_tensor.cli.distributed.init_from_env`` and leaves
with ``os._exit`` so that nothing of the parent's pytest session runs in it.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Outcome:
    """One rank's end: its value, or the type and message of what it raised, or how it died."""

    rank: int
    value: Any = None
    error_type: str | None = None
    error: str | None = None
    exit_code: int | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_type is None and self.exit_code == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child(rank: int, world: int, port: int, timeout_s: float, target: Callable[[int, int], Any], out: Path) -> None:
    code = 0
    try:
        import torch

        torch.set_num_threads(1)
        from mdt_tensor.cli.distributed import close, init_from_env

        environ = {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
        env = init_from_env("gloo", timeout_s, environ)
        start = time.perf_counter()
        try:
            record = {"value": target(rank, world)}
        except BaseException as exc:  # reported to the parent
            record = {"error_type": type(exc).__name__, "error": f"{exc}\n{traceback.format_exc()}"}
        record["seconds"] = time.perf_counter() - start
        out.write_bytes(pickle.dumps(record))
        if "error_type" not in record:
            close(env)
    except BaseException:
        traceback.print_exc()
        code = 1
    os._exit(code)


def _warm_up() -> None:
    """Import in the parent what a child would import slowly on its first error message:
    ``torch.unravel_index`` (used by ``first_index``) loads torch's reference ops on first call,
    seconds on a busy machine. Forked children inherit the loaded modules."""
    import torch

    torch.unravel_index(torch.tensor(1), (1, 2))


def launch(world: int, target: Callable[[int, int], Any], workdir: Path, *, timeout_s: float = 5.0,
           join_s: float = 60.0) -> list[Outcome]:
    """Run ``target(rank, world)`` on ``world`` gloo ranks; every rank's :class:`Outcome`."""
    _warm_up()
    context = multiprocessing.get_context("fork")
    port = free_port()
    files = [workdir / f"rank-{rank}.pkl" for rank in range(world)]
    processes = [context.Process(target=_child, args=(rank, world, port, timeout_s, target, files[rank]))
                 for rank in range(world)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + join_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    outcomes = []
    for rank, process in enumerate(processes):
        if process.is_alive():
            process.kill()
            process.join()
        outcome = Outcome(rank, exit_code=process.exitcode)
        if files[rank].exists():
            record = pickle.loads(files[rank].read_bytes())
            outcome.value = record.get("value")
            outcome.error_type, outcome.error = record.get("error_type"), record.get("error")
            outcome.seconds = record["seconds"]
        outcomes.append(outcome)
    return outcomes
