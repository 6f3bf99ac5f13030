"""Sharded batches of epoch jobs on 2 and 3 gloo ranks against ``mt.yuma`` in this one process."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

import mdt_tensor as mt
from mdt_tensor import distributed as md

from .compare import assert_same
from .conftest import values
from .jobs import make_state, make_updates, select
from .scenarios import EPOCHS, JOBS, UIDS, YUMA3, batch_inputs, local_sizes


def test_every_rank_gets_the_single_process_results_bit_for_bit(job) -> None:
    world, _, outcomes = job
    state, updates = batch_inputs()
    want, want_final = mt.yuma.run_epochs(state, updates)
    runs = values(outcomes, "exact_all")
    for rank, run in enumerate(runs):
        assert run.total_jobs == JOBS and run.jobs == md.shard_range(JOBS, rank, world)
        assert_same(run.results, want, exact=True, what=f"rank {rank}")
        assert_same(run.final_state, want_final, exact=True, what=f"rank {rank} final")
    assert [r for run in runs for r in run.jobs] == list(range(JOBS))  # contiguous shares, in rank order


def test_fast_mode_gathers_on_rank_0_only(job) -> None:
    _, _, outcomes = job
    state, updates = batch_inputs()
    want, want_final = mt.yuma.run_epochs(state, updates, YUMA3, exact=False)
    runs = values(outcomes, "fast_root")
    assert_same(runs[0].results, want, exact=False, what="rank 0")
    assert_same(runs[0].final_state, want_final, exact=False, what="rank 0 final")
    assert all(run.results is None and run.final_state is None for run in runs[1:])


def test_single_epoch_kept_per_rank_matches_its_slice(job) -> None:
    world, _, outcomes = job
    state, _ = batch_inputs()
    for rank, run in enumerate(values(outcomes, "epoch_none")):
        share = md.shard_range(JOBS, rank, world)
        assert run.jobs == share and run.final_state is None
        assert_same(run.results, mt.yuma.epoch(select(state, share), YUMA3), exact=True, what=f"rank {rank}")


def test_more_ranks_than_jobs(job) -> None:
    world, _, outcomes = job
    state, updates = batch_inputs()
    want, _ = mt.yuma.run_epochs(select(state, range(2)), updates[:, :2], exact=False)
    runs = values(outcomes, "few_jobs")
    if world > 2:
        assert len(runs[-1].jobs) == 0
    for rank, run in enumerate(runs):
        assert_same(run.results, want, exact=False, what=f"rank {rank}")


def test_numpy_batch_with_per_job_emission_comes_back_as_numpy(job) -> None:
    _, _, outcomes = job
    state, updates = batch_inputs()
    want, _ = mt.yuma.run_epochs(state, updates, emission=torch.arange(1, JOBS + 1) * 10**9)
    for run in values(outcomes, "numpy"):
        assert isinstance(run.results.emission, np.ndarray)
        assert_same(run.results, want, exact=True)


def test_uneven_local_shares_concatenate_in_rank_order(job) -> None:
    world, _, outcomes = job
    sizes = local_sizes(world)
    big = make_state(sum(sizes), UIDS, seed=3)
    want, want_final = mt.yuma.run_epochs(big, make_updates(big, EPOCHS, seed=5))
    for rank, run in enumerate(values(outcomes, "local")):
        assert run.jobs == range(sum(sizes[:rank]), sum(sizes[: rank + 1]))
        assert_same(run.results, want, exact=True, what=f"rank {rank}")
        assert_same(run.final_state, want_final, exact=True, what=f"rank {rank} final")


def test_part_files_merge_to_the_single_process_results(job) -> None:
    world, workdir, outcomes = job
    state, updates = batch_inputs()
    want, want_final = mt.yuma.run_epochs(state, updates)
    folder = workdir / "parts"
    runs = values(outcomes, "files")
    assert all(run.results is None and run.manifest == folder / "manifest.json" for run in runs)
    got, got_final = md.load_parts(folder)
    assert_same(got, want, exact=True)
    assert_same(got_final, want_final, exact=True)
    parts = list(md.iter_parts(folder))
    assert [list(jobs) for jobs, _, _ in parts] == [[j] for j in range(JOBS)]  # chunk_jobs=1
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"] + [f"part-{j:09d}-{j + 1:09d}.npz" for j in range(JOBS)]
    first = dataclasses.replace(want, **{f.name: getattr(want, f.name)[:, :1] for f in dataclasses.fields(want)})
    assert_same(parts[0][1], first, exact=True)


def test_map_jobs_returns_results_in_job_order(job) -> None:
    world, _, outcomes = job
    for result in values(outcomes, "map"):
        assert [(j, s) for j, s, _ in result] == [(j, j * j) for j in range(7)]
        ranks = [r for _, _, r in result]
        assert ranks == sorted(ranks) and set(ranks) == set(range(world))  # each rank ran its own block
    roots = values(outcomes, "map_root")
    assert roots[0] == ["A", "B"] and all(r is None for r in roots[1:])
