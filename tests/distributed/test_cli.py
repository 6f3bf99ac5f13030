"""The pieces of ``--distributed``: torchrun's variables, the epoch job gathered on rank 0, each rank
reading its share of the snapshot files, and exports written by rank 0 equal to a single process's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mdt_tensor as mt
from mdt_tensor import distributed as md
from mdt_tensor.cli import distributed as cli

from .compare import assert_same
from .conftest import values
from .scenarios import batch_inputs, big_subnet, snapshot_rows, write_rows, write_snapshots


def test_rank_0_gets_the_single_process_epoch_and_the_others_nothing(job) -> None:
    world, _, outcomes = job
    reports = values(outcomes, "cli")
    assert [r["env"] for r in reports] == [(rank, world, "gloo", False) for rank in range(world)]
    assert_same(reports[0]["epoch_single"], mt.yuma.epoch(big_subnet()), exact=True, what="single subnet")
    state, updates = batch_inputs()
    assert_same(reports[0]["epoch_batch"], mt.yuma.run_epochs(state, updates)[0], exact=True, what="batch")
    assert all(r["epoch_single"] is None and r["epoch_batch"] is None for r in reports[1:])


def test_export_from_shared_files_equals_the_single_process_export_byte_for_byte(job, tmp_path: Path) -> None:
    _, workdir, _ = job
    single = tmp_path / "export.csv"
    write_rows([snapshot_rows(path) for path in write_snapshots(tmp_path)], single)
    assert (workdir / "export.csv").read_bytes() == single.read_bytes()


def test_a_failed_export_fails_every_rank_and_leaves_no_file(job) -> None:
    _, workdir, outcomes = job
    for message in (r["broken"] for r in values(outcomes, "cli")):
        assert message is not None and "rank 0: OSError: disk full" in message
    assert not (workdir / "broken.csv").exists()
    assert not [p for p in workdir.iterdir() if ".tmp" in p.name]


def test_init_from_env_outside_torchrun_names_the_missing_variables() -> None:
    with pytest.raises(md.ProcessGroupError, match="RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT is not set"):
        cli.init_from_env(environ={})
    with pytest.raises(ValueError, match="timeout_s"):
        cli.init_from_env(timeout_s=0)


def test_the_distributed_options_parse() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--distributed", "--dist-timeout", "30", "--dist-backend", "gloo"])
    assert (args.distributed, args.dist_timeout, args.dist_backend) == (True, 30.0, "gloo")
    assert parser.parse_args([]).distributed is False


def test_run_command_outside_torchrun_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    args = argparse.Namespace(dist_backend="gloo", dist_timeout=5.0)
    assert cli.run_command(lambda a, env: 0, args) == 2
    assert capsys.readouterr().err.startswith("mdt-tensor: error: --distributed needs torchrun's environment")
    assert torch.distributed.is_initialized() is False
