"""What each rank runs in the shared gloo jobs of the distributed tests (one launch per world size)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import mdt_tensor as mt
from mdt_tensor import distributed as md

from .jobs import make_state, make_updates, one_subnet, select

YUMA3 = mt.yuma.YumaParams(yuma3=True, liquid_alpha=True)
COLUMN_PARAMS = {
    "original": mt.yuma.YumaParams(),
    "yuma3": mt.yuma.YumaParams(yuma3=True),
    "dense": mt.yuma.YumaParams(path="dense"),
    "half_penalty": mt.yuma.YumaParams(bonds_penalty=30000, bonds_moving_average=975_000),
}
JOBS, UIDS, EPOCHS, BIG_UIDS = 5, 10, 2, 23


def batch_inputs() -> tuple[mt.yuma.SubnetState, torch.Tensor]:
    state = make_state(JOBS, UIDS, seed=1)
    return state, make_updates(state, EPOCHS, seed=2)


def local_sizes(world: int) -> list[int]:
    """Uneven shares for ``local=True``: rank r holds r + 1 jobs."""
    return [r + 1 for r in range(world)]


def big_subnet() -> mt.yuma.SubnetState:
    return one_subnet(make_state(1, BIG_UIDS, seed=4), 0)


def uneven_columns(n: int, rank: int, world: int) -> range:
    """Blocks of very different widths: 1, 2, ... columns, the last rank the rest."""
    starts = [sum(range(1, r + 1)) for r in range(world)] + [n]
    return range(starts[rank], starts[rank + 1])


def _failing_batch(rank: int, world: int, workdir: Path) -> dict[str, Any]:
    state, updates = batch_inputs()
    mine = md.shard_range(JOBS, rank, world)
    local_state, local_updates = select(state, mine), updates[:, mine.start:mine.stop]
    if rank == world - 1:  # this rank's snapshot is corrupt
        local_state.weights = local_state.weights.clone()
        local_state.weights[0, 1, 2] = 70000
    start = time.perf_counter()
    try:
        md.run_epochs(local_state, local_updates, local=True, out_dir=workdir / "failed")
    except md.DistributedJobError as exc:
        return {"message": str(exc), "failures": exc.failures, "seconds": time.perf_counter() - start}
    return {"message": None}


def _failing_columns(rank: int, world: int) -> dict[str, Any]:
    shard = md.shard_columns(big_subnet(), rank, world)
    if rank == world - 1:
        shard.bonds = torch.as_tensor(shard.bonds).clone()
        shard.bonds[0, 0] = -5  # this rank raises while reading its block
    try:
        md.column_sharded_epoch(shard)
    except md.DistributedJobError as exc:
        return {"message": str(exc), "failures": exc.failures}
    return {"message": None}


def run_all(rank: int, world: int, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    state, updates = batch_inputs()
    time.sleep(0.05 * (world - rank))  # the ranks finish in reverse order
    out["exact_all"] = md.run_epochs(state, updates)
    out["fast_root"] = md.run_epochs(state, updates, YUMA3, exact=False, gather="root")
    out["epoch_none"] = md.run_epochs(state, None, YUMA3, gather="none")
    out["few_jobs"] = md.run_epochs(select(state, range(2)), updates[:, :2], exact=False)
    numpy_state = mt.yuma.SubnetState(**{k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in vars(state).items()})
    out["numpy"] = md.run_epochs(numpy_state, updates.numpy(), emission=torch.arange(1, JOBS + 1) * 10**9)

    sizes = local_sizes(world)
    big = make_state(sum(sizes), UIDS, seed=3)
    big_updates = make_updates(big, EPOCHS, seed=5)
    mine = range(sum(sizes[:rank]), sum(sizes[: rank + 1]))
    out["local"] = md.run_epochs(select(big, mine), big_updates[:, mine.start:mine.stop], local=True)
    out["files"] = md.run_epochs(state, updates, out_dir=workdir / "parts", chunk_jobs=1)

    subnet = big_subnet()
    for exact in (True, False):
        for name, params in COLUMN_PARAMS.items():
            out[f"columns_{name}_{exact}"] = md.column_sharded_epoch(md.shard_columns(subnet, rank, world), params, exact=exact)
    cols = uneven_columns(BIG_UIDS, rank, world)
    uneven = mt.yuma.SubnetState(**{**vars(subnet), "weights": subnet.weights[:, cols.start:cols.stop],
                                    "bonds": subnet.bonds[:, cols.start:cols.stop]})
    out["columns_uneven"] = md.column_sharded_epoch(uneven)

    out["map"] = md.map_jobs(list(range(7)), lambda job: (job, job * job, rank))
    out["map_root"] = md.map_jobs(["a", "b"], str.upper, gather="root")
    out["fail_batch"] = _failing_batch(rank, world, workdir)
    out["fail_columns"] = _failing_columns(rank, world)

    def fail_on_job_5(job: int) -> int:
        if job == 5:
            raise KeyError(f"snapshot {job} has no stake")
        return job
    try:
        md.map_jobs(list(range(7)), fail_on_job_5)
        out["fail_map"] = None
    except md.DistributedJobError as exc:
        out["fail_map"] = {"message": str(exc), "failures": exc.failures}
    out["cli"] = _cli(rank, world, workdir)
    return out


# ----------------------------------------------------------------------------- the CLI's pieces

SNAPSHOTS = 5


def write_snapshots(folder: Path) -> list[Path]:
    """A series of ``.npz`` snapshots (``S`` stake, ``W`` u16 weights), as ``mdt-tensor epoch --snapshot`` reads."""
    state = make_state(SNAPSHOTS, 8, seed=7)
    paths = []
    for i in range(SNAPSHOTS):
        path = folder / f"sn-{i:03d}.npz"
        np.savez(path, S=state.stake[i].numpy(), W=state.weights[i].numpy())
        paths.append(path)
    return paths


def snapshot_rows(path: Path) -> list[str]:
    """One job: read a snapshot, run its epoch, return export rows (what a replay exports)."""
    with np.load(path) as data:
        state = mt.yuma.SubnetState(weights=torch.from_numpy(data["W"]), stake=torch.from_numpy(data["S"]))
    result = mt.yuma.epoch(state, exact=True)
    return [f"{path.name},{uid},{float(i)!r},{float(d)!r},{int(e)}" for uid, (i, d, e) in
            enumerate(zip(result.incentive_float, result.dividends_float, result.emission))]


def write_rows(rows: list[list[str]], target: Path) -> None:
    target.write_text("file,uid,incentive,dividends,emission\n" + "".join(line + "\n" for job in rows for line in job))


def _cli(rank: int, world: int, workdir: Path) -> dict[str, Any]:
    from mdt_tensor.cli import distributed as cli

    env = cli.init_from_env()  # the group the launcher created
    out: dict[str, Any] = {"env": (env.rank, env.world_size, env.backend, env.owns_group)}
    single = big_subnet()
    out["epoch_single"] = cli.epoch_job(single, None, mt.yuma.YumaParams(), 10**9, env, exact=True)
    state, updates = batch_inputs()
    out["epoch_batch"] = cli.epoch_job(state, updates, mt.yuma.YumaParams(), 10**9, env, exact=True)
    paths = sorted(workdir.glob("sn-*.npz"))
    rows = cli.map_files(paths, snapshot_rows, env)
    cli.write_on_root(workdir / "export.csv", lambda target: write_rows(rows or [], target), env)

    def broken(target: Path) -> None:
        target.write_text("half a file")
        raise OSError("disk full")
    try:
        cli.write_on_root(workdir / "broken.csv", broken, env)
        out["broken"] = None
    except md.DistributedJobError as exc:
        out["broken"] = str(exc)
    return out
