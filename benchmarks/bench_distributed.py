"""Distributed epoch jobs: the same work on 1 and on 2 CPU processes (gloo on 127.0.0.1).

Measured in the same run, every process with one torch thread (so 2 processes use the 2 cores
one process would not):

* ``mt.distributed.run_epochs`` of a batch of subnets x epochs on 2 ranks, results gathered on
  every rank, against ``mt.yuma.run_epochs`` of the same batch in one process (target: at least
  1.6x faster, i.e. 80% scaling efficiency);
* ``mt.distributed.column_sharded_epoch`` of one subnet on 2 ranks against ``mt.yuma.epoch`` of it
  in one process (informational: the sharded path uses the general fixed-point helpers).

Each row reports the scaling efficiency ``t1 / (2 * t2)`` and the communication share: the time
rank 0 spent inside collectives (transfers and waiting for the other rank) over its total. The
processes are forked from this one, so their start-up is not timed; the job is timed per call.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

import mdt_tensor as mt
from benchmarks._harness import Comparison, Context
from mdt_tensor import distributed as md


def _batch(jobs: int, n: int, epochs: int) -> tuple[mt.yuma.SubnetState, torch.Tensor]:
    """A synthetic batch: a quarter validators with log-normal stake, sparse u16 weights, +-10% re-scoring."""
    g = torch.Generator().manual_seed(0)
    validator = torch.arange(n) < max(2, n // 4)
    stake = torch.exp(torch.randn(jobs, n, generator=g, dtype=torch.float64) * 1.5 + 20).floor().to(torch.int64)
    stake = torch.where(validator, stake, stake // 10_000)
    weights = torch.randint(0, 65536, (jobs, n, n), generator=g) * (torch.rand(jobs, n, n, generator=g) < 0.5)
    weights = weights * validator.view(1, n, 1)
    noise = 1 + 0.2 * (torch.rand((epochs, jobs, n, n), generator=g, dtype=torch.float64) - 0.5)
    updates = torch.floor(weights * noise).clamp(0, 65535).to(torch.int64)
    return mt.yuma.SubnetState(weights=weights, stake=stake, block=10_000), updates


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank(rank: int, world: int, port: int, job: Callable[[], float], repeat: int, queue: Any) -> None:
    """One forked rank: join the group, time ``job`` (which returns its seconds in collectives)."""
    try:
        torch.set_num_threads(1)
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=timedelta(seconds=120))
        job()  # warm-up
        walls, comms = [], []
        for _ in range(repeat):
            dist.barrier()
            start = time.perf_counter()
            comms.append(job())
            walls.append(time.perf_counter() - start)
        dist.destroy_process_group()
        queue.put((rank, statistics.median(walls), statistics.median(comms)))
    except BaseException as exc:  # reported, then the parent raises
        queue.put((rank, None, repr(exc)))
    os._exit(0)


def _on_ranks(world: int, job: Callable[[], float], repeat: int) -> tuple[float, float]:
    """``(seconds per call, seconds in collectives per call)`` of rank 0 (the slowest rank's wall)."""
    context = multiprocessing.get_context("fork")
    queue = context.SimpleQueue()
    port = _free_port()
    processes = [context.Process(target=_rank, args=(r, world, port, job, repeat, queue)) for r in range(world)]
    for p in processes:
        p.start()
    reports = [queue.get() for _ in processes]
    for p in processes:
        p.join(30)
    failed = [r for r in reports if r[1] is None]
    if failed:
        raise RuntimeError(f"benchmark rank failed: {failed}")
    rank0 = next(r for r in reports if r[0] == 0)
    return max(r[1] for r in reports), rank0[2]


def _one_process(job: Callable[[], Any], repeat: int) -> float:
    """Seconds per call in a forked single process with one thread (the conditions of a rank)."""
    def no_collectives() -> float:
        job()
        return 0.0

    return _on_ranks(1, no_collectives, repeat)[0]


def run(ctx: Context) -> list[Comparison]:
    jobs, n, epochs = ctx.size((32, 256, 8), (16, 128, 4), (4, 16, 2))
    state, updates = _batch(jobs, n, epochs)
    repeat = ctx.repeat

    one = _one_process(lambda: mt.yuma.run_epochs(state, updates), repeat)
    two, comm = _on_ranks(2, lambda: md.run_epochs(state, updates).comm_seconds, repeat)
    rows = [Comparison(
        f"run_epochs, {jobs} subnets x {n} uids x {epochs} epochs, exact, 2 ranks", two,
        "mt.yuma.run_epochs in 1 process", one, min_speedup=1.6,
        extra={"scaling efficiency": f"{one / (2 * two):.0%}", "communication share": f"{comm / two:.0%}"},
    )]

    big = ctx.size(2048, 512, 32)
    subnet_state, _ = _batch(1, big, 1)
    subnet = mt.yuma.SubnetState(weights=subnet_state.weights[0], stake=subnet_state.stake[0], block=10_000)
    single = _one_process(lambda: mt.yuma.epoch(subnet), repeat)

    def sharded() -> float:
        shard = md.shard_columns(subnet, dist.get_rank(), dist.get_world_size())
        return md.column_sharded_epoch(shard).comm_seconds

    two_cols, comm_cols = _on_ranks(2, sharded, repeat)
    rows.append(Comparison(
        f"column_sharded_epoch, 1 subnet x {big} uids, exact, 2 ranks", two_cols, "mt.yuma.epoch in 1 process",
        single, extra={"scaling efficiency": f"{single / (2 * two_cols):.0%}",
                       "communication share": f"{comm_cols / two_cols:.0%}", "target": "none (informational)"},
    ))
    return rows
