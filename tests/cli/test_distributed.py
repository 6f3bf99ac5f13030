"""``--distributed`` end to end: ``main([... "--distributed"])`` on 2 gloo ranks (forked, loopback).

The exported files must be the single-process ones byte for byte (exact mode); a bad file on one
rank's share fails every rank with exit 2, one line printed by rank 0, and leaves no output.
The processes come from the launcher of ``tests/distributed`` (a torchrun subprocess works the
same way, see the README, but costs ~20 s here).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from mdt_tensor import cli
from mdt_tensor.io import save_npz
from mdt_tensor.io.series import demo_series

from ..distributed.launch import Outcome, launch

SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "sn15_block4769998.npz"
EPOCH = ["epoch", "--subnets", "3", "--uids", "12", "--epochs", "2", "--yuma3", "--quiet"]
REPLAY = ["replay", "--payout", "exact", "--emission", "0.5 MDT", "--quiet"]


def _series(folder: Path, count: int = 5) -> Path:
    folder.mkdir()
    for snapshot in demo_series(count, 10, seed=3):
        save_npz(snapshot, folder / f"block-{snapshot.block}.npz")
    return folder


def _commands(work: Path) -> dict[str, list[str]]:
    broken = _series(work / "broken")
    (broken / "block-1001080.npz").write_bytes(b"PK\x03\x04 cut short")  # the 4th of 5: rank 1's share
    return {
        "epoch": [*EPOCH, "--json", str(work / "dist-epoch.json")],
        "epoch_snapshot": ["epoch", "--snapshot", str(SNAPSHOT), "--quiet", "--json", str(work / "dist-snapshot.json")],
        "replay": [*REPLAY, str(work / "series"), "--out", str(work / "dist-replay.csv")],
        "replay_broken": [*REPLAY, str(broken), "--out", str(work / "broken.csv")],
        "epoch_bad_option": [*EPOCH, "--emission", "1 XYZ", "--json", str(work / "never.json")],
        "epoch_device": [*EPOCH, "--device", "cpu"],
    }


def _run_all(rank: int, work: Path, commands: dict[str, list[str]]) -> dict[str, Any]:
    report = {}
    for name, argv in commands.items():
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main([*argv, "--distributed", "--dist-timeout", "20"])
        report[name] = (code, err.getvalue())
    return report


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Outcome]]:
    work = tmp_path_factory.mktemp("cli-dist")
    _series(work / "series")
    commands = _commands(work)
    outcomes = launch(2, lambda rank, world: _run_all(rank, work, commands), work, timeout_s=20.0)
    for outcome in outcomes:
        assert outcome.ok, f"rank {outcome.rank}: {outcome.error_type} {outcome.error} (exit {outcome.exit_code})"
    return work, outcomes


def test_epoch_json_equals_the_single_process_file_byte_for_byte(job: tuple[Path, list[Outcome]], tmp_path: Path) -> None:
    work, outcomes = job
    assert [o.value["epoch"] for o in outcomes] == [(0, ""), (0, "")]
    single = tmp_path / "single.json"
    assert cli.main([*EPOCH, "--json", str(single)]) == 0
    assert (work / "dist-epoch.json").read_bytes() == single.read_bytes()


def test_one_snapshot_runs_on_rank_0_and_writes_the_single_process_bytes(job: tuple[Path, list[Outcome]],
                                                                          tmp_path: Path) -> None:
    work, outcomes = job
    assert [o.value["epoch_snapshot"] for o in outcomes] == [(0, ""), (0, "")]
    single = tmp_path / "single.json"
    assert cli.main(["epoch", "--snapshot", str(SNAPSHOT), "--quiet", "--json", str(single)]) == 0
    assert (work / "dist-snapshot.json").read_bytes() == single.read_bytes()


def test_replay_export_equals_the_single_process_file_byte_for_byte(job: tuple[Path, list[Outcome]], tmp_path: Path) -> None:
    work, outcomes = job
    assert [o.value["replay"] for o in outcomes] == [(0, ""), (0, "")]
    single = tmp_path / "single.csv"
    assert cli.main([*REPLAY, str(work / "series"), "--out", str(single)]) == 0
    assert (work / "dist-replay.csv").read_bytes() == single.read_bytes()


def test_a_bad_file_in_one_share_fails_every_rank_with_one_line_and_no_output(job: tuple[Path, list[Outcome]]) -> None:
    work, outcomes = job
    (code0, err0), (code1, err1) = (o.value["replay_broken"] for o in outcomes)
    assert (code0, code1, err1) == (2, 2, "")
    assert err0.count("\n") == 1 and err0.startswith("mdt-tensor replay: error: ")
    assert "rank 1: SnapshotError" in err0 and "block-1001080.npz" in err0
    assert not [p for p in work.iterdir() if p.name.startswith(("broken.csv", ".broken"))]


def test_bad_options_fail_every_rank_before_any_work(job: tuple[Path, list[Outcome]]) -> None:
    work, outcomes = job
    for name, message in (("epoch_bad_option", "error: on every rank: ValueRangeError: --emission '1 XYZ': Unknown unit"),
                          ("epoch_device", "error: --device: not with --distributed")):
        (code0, err0), (code1, err1) = (o.value[name] for o in outcomes)
        assert (code0, code1, err1) == (2, 2, ""), name
        assert err0.count("\n") == 1 and message in err0, err0
    assert not (work / "never.json").exists()
