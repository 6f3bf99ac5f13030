"""Exports (CSV, JSON lines, Parquet; atomic), the plot (a valid PNG of the expected size) and hyperparameters."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ValueRangeError
from mdt_tensor.io import MissingExtraError
from mdt_tensor.io.export import TABLE_COLUMNS, replay_rows, write_table
from mdt_tensor.io.hyperparams import chain_fields, params_from_chain
from mdt_tensor.io.series import demo_series, replay

from .conftest import NPZ, replay_cli

BIG = 2**62 + 1  # not representable in float64: integers must stay integers


def _rows() -> list[dict[str, Any]]:
    return [
        {"netuid": 1, "block": 10, "epoch": 0, "uid": 0, "hotkey": "a,b", "stake_wei": BIG, "incentive": 0.25,
         "dividends": 0.0, "consensus": 0.5, "trust": None, "validator_trust": 1.0, "server_emission_wei": BIG,
         "validator_emission_wei": 0},
        {"netuid": 1, "block": 10, "epoch": 0, "uid": 1, "hotkey": None, "stake_wei": 0, "incentive": 0.75,
         "dividends": 1.0, "consensus": 0.5, "trust": 0.5, "validator_trust": 0.0, "server_emission_wei": 3,
         "validator_emission_wei": 7},
    ]


def test_csv_and_jsonl_keep_integers_exact(tmp_path: Path) -> None:
    write_table(_rows(), tmp_path / "t.csv")
    with open(tmp_path / "t.csv", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == list(TABLE_COLUMNS)
    assert int(read[0]["stake_wei"]) == BIG and read[0]["hotkey"] == "a,b" and read[1]["hotkey"] == ""
    write_table(_rows(), tmp_path / "t.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert lines == _rows()


def test_parquet_round_trip(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    write_table(_rows(), tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").to_pylist() == _rows()


def test_parquet_without_pyarrow_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingExtraError, match="pip install pyarrow"):
        write_table(_rows(), tmp_path / "t.parquet")
    code, _, err = replay_cli(NPZ, "--out", tmp_path / "t.parquet")
    assert code == 2 and "needs pyarrow: pip install pyarrow" in err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "t.jsonl"
    target.write_text("the previous, complete result\n")
    rows = _rows() + [{**_rows()[0], "incentive": float("nan")}]  # fails on the third line
    with pytest.raises(ValueError):
        write_table(rows, target)
    assert target.read_text() == "the previous, complete result\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = write_table(_rows(), tmp_path / "t.csv")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown table format '\.txt'"):
        write_table(_rows(), tmp_path / "t.txt")


def test_replay_rows_follow_the_results() -> None:
    result = replay(demo_series(2, 6, seed=0), emission=1000, payout="exact")
    rows = replay_rows(result)
    assert len(rows) == 12 and [r["uid"] for r in rows[:6]] == list(range(6))
    assert rows[7]["hotkey"] == result.snapshots[1].hotkeys[1]  # type: ignore[index]
    assert sum(r["server_emission_wei"] + r["validator_emission_wei"] for r in rows[6:]) == 1000
    assert rows[2]["incentive"] == pytest.approx(float(result.results[0].incentive_float[2]))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]  # the header chunk is intact
    assert data[-12:-8] == b"\x00\x00\x00\x00" and data[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


def test_plot_is_a_png_of_the_expected_size(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from mdt_tensor.io.plot import plot_replay

    result = replay(demo_series(3, 16, seed=1), exact=False)
    assert _png_size(plot_replay(result, tmp_path / "b.png", size=(6.0, 4.0), dpi=50)) == (300, 200)
    code, _, err = replay_cli(NPZ, "--fast", "--plot", tmp_path / "c.png")
    assert code == 0, err
    assert _png_size(tmp_path / "c.png") == (1200, 900)


def test_plot_without_matplotlib_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    from mdt_tensor.io.plot import plot_replay

    with pytest.raises(MissingExtraError, match=r"pip install 'mdt-tensor\[plot\]'"):
        plot_replay(replay(demo_series(1, 4)), tmp_path / "p.png")
    code, _, err = replay_cli(NPZ, "--plot", tmp_path / "p.png")
    assert code == 2 and "--plot needs matplotlib" in err and not (tmp_path / "p.png").exists()


def test_params_from_chain_maps_the_sdk_names() -> None:
    sdk = {
        "kappa": 30000, "bonds_moving_avg": 975_000, "alpha_high": 60000, "alpha_low": 50000,
        "liquid_alpha_enabled": True, "alpha_sigmoid_steepness": 1000.0, "yuma_version": 3,
        "activity_cutoff": 7200, "max_validators": 64, "tempo": 99, "rho": 10, "immunity_period": 5000,
        "max_weight_limit": 0.5, "some_future_field": 1,
    }
    params = params_from_chain(sdk)
    assert params == mt.yuma.YumaParams(
        kappa=30000, bonds_moving_average=975_000, alpha_high=60000, alpha_low=50000, liquid_alpha=True,
        alpha_sigmoid_steepness=1000, yuma3=True, activity_cutoff=7200, max_allowed_validators=64, tempo=99,
    )
    assert chain_fields(sdk)[2] == ["some_future_field"]
    assert params_from_chain({"yuma_version": 2}, base=params).yuma3 is False

    @dataclasses.dataclass
    class SubnetHyperparameters:  # the SDK's dataclass, as an object
        kappa: int
        tempo: int

    assert params_from_chain(SubnetHyperparameters(kappa=1, tempo=2)).tempo == 2


@pytest.mark.parametrize("mapping, error, message", [
    ({"kappa": True}, DTypeError, "`kappa` to be an integer"),
    ({"kappa": "32767"}, DTypeError, "`kappa` to be an integer"),
    ({"tempo": -1}, ValueRangeError, r"`tempo` in \[0, 65535\]"),
    ({"alpha_sigmoid_steepness": 10.5}, ValueRangeError, "whole number"),
    ({"bonds_moving_avg": float("nan")}, ValueRangeError, "whole number"),
    ({"liquid_alpha_enabled": 1}, DTypeError, "true or false"),
    ({"yuma_version": 4}, ValueRangeError, "2 or 3"),
    ({"alpha_low": 60000, "alpha_high": 50000}, ValueRangeError, "alpha_low <= alpha_high"),
])
def test_params_from_chain_refuses_bad_values(mapping: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        params_from_chain(mapping)


def test_strict_refuses_unknown_names_and_the_cli_notes_them(tmp_path: Path) -> None:
    with pytest.raises(ValueRangeError, match="Unknown hyperparameter name.*kapa"):
        params_from_chain({"kapa": 1}, strict=True)
    path = tmp_path / "hp.json"
    path.write_text(json.dumps({"kapa": 1, "yuma_version": 3, "rho": 10}))
    code, _, err = replay_cli(NPZ, "--fast", "--hyperparameters", path)
    assert code == 0 and "ignored unknown hyperparameter(s): kapa" in err
