"""``mdt-tensor epoch`` in-process through ``main``: the demo network, several epochs, snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mdt_tensor import cli

SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "sn15_block4769998.npz"


def test_epoch_on_the_demo_network_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "summary.json"
    assert cli.main(["epoch", "--subnets", "2", "--uids", "32", "--top", "3", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "subnet 0" in text and "subnet 1" in text and "dust" in text and "ms per epoch" in text
    summary = json.loads(out.read_text())
    assert summary["subnets"] == 2 and summary["uids"] == 32 and summary["exact"] is True
    for sub in summary["per_subnet"]:
        paid = sub["miner_emission_wei"] + sub["validator_emission_wei"]
        assert paid + sub["dust_wei"] == 10**9
        assert len(sub["top_incentive"]) == 3
    # amounts print exactly, to the wei (format_balance), not as rounded floats
    assert "emission per subnet and epoch: 1.000000000 MDT;" in text
    miners = summary["per_subnet"][0]["miner_emission_wei"]
    assert f"miners {miners // 10**9:,}.{miners % 10**9:09d} MDT," in text


def test_demo_network_is_deterministic_and_modes_agree(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{k}.json" for k in "abc")
    common = ["epoch", "--subnets", "2", "--uids", "24", "--quiet"]
    assert cli.main([*common, "--json", str(a)]) == 0
    assert cli.main([*common, "--json", str(b)]) == 0
    assert cli.main([*common, "--fast", "--payout", "exact", "--json", str(c)]) == 0
    first, second, fast = (json.loads(p.read_text()) for p in (a, b, c))
    assert first["per_subnet"] == second["per_subnet"]
    assert all(s["dust_wei"] == 0 for s in fast["per_subnet"])
    assert [t["uid"] for t in fast["per_subnet"][0]["top_dividends"]] == [
        t["uid"] for t in first["per_subnet"][0]["top_dividends"]
    ]


def test_several_epochs_yuma3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    assert cli.main(["epoch", "--subnets", "2", "--uids", "16", "--epochs", "3", "--yuma3", "--liquid-alpha",
                     "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["epochs"] == 3 and summary["yuma3"] is True
    assert "Yuma 3" in capsys.readouterr().out


def test_snapshot_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "snap.npz"
    np.savez(path, S=rng.random(8).astype(np.float32) * 1e3, W=rng.random((8, 8)).astype(np.float32))
    assert cli.main(["epoch", "--snapshot", str(path), "--top", "2"]) == 0
    assert "1 subnet(s) x 8 uids" in capsys.readouterr().out
    bad = tmp_path / "bad.npz"
    np.savez(bad, S=np.ones(3))
    assert cli.main(["epoch", "--snapshot", str(bad)]) == 2
    assert "missing the required field `weights`" in capsys.readouterr().err


def test_real_snapshot_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "sn15.json"
    assert cli.main(["epoch", "--snapshot", str(SNAPSHOT), "--quiet", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["uids"] == 256
    sub = summary["per_subnet"][0]
    assert sub["miner_emission_wei"] + sub["validator_emission_wei"] + sub["dust_wei"] == 10**9
