"""A rank that raises fails the whole job at once, with its error on every rank; a killed rank
fails the others within the collective timeout; no output looks complete after a failure."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import mdt_tensor as mt
from mdt_tensor import distributed as md

from .conftest import values
from .launch import launch
from .scenarios import batch_inputs


def test_a_raising_rank_fails_every_rank_promptly_with_its_error(job) -> None:
    world, workdir, outcomes = job
    bad = world - 1
    for report in values(outcomes, "fail_batch"):
        assert report["message"] is not None, "the job should have failed"
        assert f"rank {bad}: ValueRangeError" in report["message"] and "70000" in report["message"]
        assert list(report["failures"]) == [bad]
        assert report["seconds"] < 3.0  # the status exchange, not the 20 s timeout
    folder = workdir / "failed"
    assert not folder.exists() or list(folder.iterdir()) == []  # no manifest, no part, no temporary file


def test_a_raising_rank_fails_the_column_sharded_epoch(job) -> None:
    world, _, outcomes = job
    for report in values(outcomes, "fail_columns"):
        assert report["message"] is not None
        assert f"rank {world - 1}: ValueRangeError" in report["message"] and "bonds" in report["message"]
        assert list(report["failures"]) == [world - 1]


def test_a_raising_job_function_fails_map_jobs(job) -> None:
    world, _, outcomes = job
    owner = next(r for r in range(world) if 5 in md.shard_range(7, r, world))
    for report in values(outcomes, "fail_map"):
        assert f"rank {owner}: KeyError" in report["message"] and "snapshot 5" in report["message"]


def _killed_rank_job(rank: int, world: int, folder: Path) -> None:
    if rank == 1:
        os._exit(3)  # dies without a word, before the job's first collective
    state, updates = batch_inputs()
    md.run_epochs(state, updates, out_dir=folder)


def test_a_killed_rank_fails_the_others_within_the_timeout(tmp_path: Path) -> None:
    timeout = 3.0
    folder = tmp_path / "out"
    start = time.monotonic()
    outcomes = launch(3, lambda rank, world: _killed_rank_job(rank, world, folder), tmp_path, timeout_s=timeout, join_s=30)
    assert time.monotonic() - start < timeout + 15
    assert outcomes[1].exit_code == 3
    for outcome in (outcomes[0], outcomes[2]):
        assert outcome.error_type == "CollectiveError", outcome.error
        assert "a rank died or did not reach it" in outcome.error
        assert outcome.seconds < timeout + 5
    assert not (folder / "manifest.json").exists()
    assert not folder.exists() or not any(p.suffix == ".npz" for p in folder.iterdir())


def test_no_process_group_is_a_clear_error() -> None:
    state, updates = batch_inputs()
    with pytest.raises(md.ProcessGroupError, match="initialised torch.distributed process group"):
        md.run_epochs(state, updates)
    with pytest.raises(md.ProcessGroupError):
        md.column_sharded_epoch(md.shard_columns(mt.yuma.SubnetState(weights=[[0, 1], [1, 0]], stake=[1, 1]), 0, 1))
