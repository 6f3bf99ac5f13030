"""``python -m mdt_tensor`` as a user runs it: four real subprocesses, started together.

The demo, a generated series replayed with ``--payout exact`` (every epoch pays exactly the
emission asked for), a planted pickle that would run code (it must not) and ``--debug``'s
traceback. Each costs seconds of torch import, so the real files and the many other bad inputs
run in-process through the same ``main`` (``test_rules.py``, ``tests/io``).
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from mdt_tensor.io import save_npz
from mdt_tensor.io.series import demo_series

ROOT = Path(__file__).resolve().parents[2]


class _RunsCode:
    def __init__(self, function: Any, *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.function, self.args


def _inputs(work: Path) -> dict[str, list[str]]:
    series = work / "series"
    series.mkdir()
    for snapshot in demo_series(6, 16, seed=5):
        save_npz(snapshot, series / f"block-{snapshot.block}.npz")
    planted = work / "block-9.pkl"
    planted.write_bytes(pickle.dumps({"weights": _RunsCode(os.system, f"touch {work / 'ran'}"), "stake": [1.0]}))
    empty = work / "empty.npz"
    empty.write_bytes(b"")
    return {
        "demo": ["epoch", "--subnets", "2", "--uids", "32", "--epochs", "2", "--top", "3", "--json", str(work / "demo.json")],
        "series": ["replay", str(series), "--payout", "exact", "--emission", "0.75 MDT", "--out", str(work / "rows.csv")],
        "planted": ["replay", str(planted), "--out", str(work / "planted.csv")],
        "debug": ["--debug", "epoch", "--snapshot", str(empty)],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, subprocess.CompletedProcess[str]]]:
    work = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    started = {
        name: subprocess.Popen([sys.executable, "-m", "mdt_tensor", *argv], cwd=work, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, argv in _inputs(work).items()
    }
    done = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=180)
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return work, done


def _ok(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, run.stderr
    assert "error" not in run.stderr, run.stderr  # the progress bar of several epochs goes there
    return run.stdout


def _one_line(run: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert run.returncode == code and run.stdout == "", (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    return lines[0]


def test_the_demo(runs: tuple[Path, dict[str, subprocess.CompletedProcess[str]]]) -> None:
    work, done = runs
    text = _ok(done["demo"])
    assert "2 subnet(s) x 32 uids, 2 epoch(s), exact" in text and "subnet 1:" in text
    summary = json.loads((work / "demo.json").read_text())
    assert [len(s["top_incentive"]) for s in summary["per_subnet"]] == [3, 3]


def test_a_series_with_exact_payout_sums_to_the_emission_per_epoch(runs: tuple[Path, dict[str, subprocess.CompletedProcess[str]]]) -> None:
    work, done = runs
    assert "replayed 6 epoch(s) of subnet 1" in _ok(done["series"])
    paid: dict[tuple[str, str], int] = defaultdict(int)
    with open(work / "rows.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            paid[row["netuid"], row["epoch"]] += int(row["server_emission_wei"]) + int(row["validator_emission_wei"])
    assert sorted(paid) == [("1", str(t)) for t in range(6)]
    assert set(paid.values()) == {750_000_000}


def test_a_planted_pickle_is_refused_and_never_runs(runs: tuple[Path, dict[str, subprocess.CompletedProcess[str]]]) -> None:
    work, done = runs
    line = _one_line(done["planted"])
    assert line.startswith("mdt-tensor replay: error: ") and "block-9.pkl" in line and "refused to load `posix.system`" in line
    assert not (work / "ran").exists(), "the file's code ran"
    assert not (work / "planted.csv").exists()


def test_debug_shows_the_traceback(runs: tuple[Path, dict[str, subprocess.CompletedProcess[str]]]) -> None:
    run = runs[1]["debug"]
    assert run.returncode == 1 and "Traceback" in run.stderr
    assert run.stderr.rstrip().splitlines()[-1].endswith("empty.npz: is empty")
