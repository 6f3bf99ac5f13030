"""The rules every subcommand follows, in-process through ``main``: exit 0, 2 on bad input or
options with ONE line on stderr naming what was wrong, 1 on an internal error, ``--debug`` for
the traceback, and output files that are complete or absent."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mdt_tensor import cli
from mdt_tensor.cli import epoch as epoch_command

from ..io.test_hostile import CASES as BAD_FILES

DATA = Path(__file__).resolve().parents[1] / "data"
REAL_FILES = sorted(DATA.glob("*"))
DEMO = ["epoch", "--subnets", "1", "--uids", "8", "--quiet"]


def _one_error_line(capsys: pytest.CaptureFixture[str], prefix: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


def _single_file(build: Callable[[Path], list[Any]], tmp_path: Path) -> Path | None:
    built = build(tmp_path)
    if len(built) == 1 and isinstance(built[0], Path) and not built[0].is_dir():
        return built[0]
    return None


@pytest.mark.parametrize("name, build, message", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_every_bad_snapshot_file_exits_2_through_epoch_too(name: str, build: Callable[[Path], list[Any]], message: str,
                                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The io tests send each broken or hostile file through replay; epoch --snapshot must agree."""
    path = _single_file(build, tmp_path)
    if path is None:
        pytest.skip("not a single snapshot file (options or a series)")
    assert cli.main(["epoch", "--snapshot", str(path), "--json", str(tmp_path / "s.json")]) == 2, name
    line = _one_error_line(capsys, "mdt-tensor epoch: error: ")
    assert re.search(message, line), line
    assert not (tmp_path / "ran").exists(), "a file's code ran"
    assert not (tmp_path / "s.json").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


OPTION_CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("device xyz", lambda t: [*DEMO, "--device", "xyz"], r"epoch: error: --device xyz: not a torch device"),
    ("emission without unit", lambda t: [*DEMO, "--emission", "1000"], r"--emission '1000': no unit; write '1000 wei'"),
    ("emission unknown unit", lambda t: [*DEMO, "--emission", "1 XYZ"], r"--emission '1 XYZ': Unknown unit 'XYZ'"),
    ("emission negative", lambda t: [*DEMO, "--emission", "-1 MDT"], r"--emission '-1 MDT'"),
    ("emission too large", lambda t: [*DEMO, "--emission", "10000000000 MDT"], r"--emission .*2\*\*63"),
    ("emission sub-wei", lambda t: [*DEMO, "--emission", "0.5 wei"], r"--emission '0\.5 wei'"),
    ("json folder missing", lambda t: [*DEMO, "--json", str(t / "no" / "s.json")], r"--json .*: the folder .*no does not exist"),
    ("json is a folder", lambda t: [*DEMO, "--json", str(t)], r"--json .*: is a folder"),
    ("negative seed", lambda t: [*DEMO, "--seed", "-1"], r"epoch: error: argument --seed: expected a seed in \[0, 2\*\*63\), got -1"),
    ("huge seed", lambda t: [*DEMO, "--seed", str(2**63)], r"argument --seed: expected a seed"),
    ("seed not a number", lambda t: [*DEMO, "--seed", "x"], r"argument --seed: invalid seed value: 'x'"),
    ("zero uids", lambda t: [*DEMO, "--uids", "0"], r"argument --uids: expected a positive integer, got 0"),
    ("too large a demo", lambda t: ["epoch", "--subnets", "64", "--uids", "4096"], r"weight cells, more than the demo's"),
    ("unknown option", lambda t: [*DEMO, "--frobnicate"], r"mdt-tensor: error: unrecognized arguments: --frobnicate"),
    ("unknown command", lambda t: ["frobnicate"], r"invalid choice: 'frobnicate'"),
    ("snapshot missing", lambda t: [*DEMO, "--snapshot", str(t / "nope.npz")], r"nope\.npz: no such file"),
    ("snapshot is a folder", lambda t: [*DEMO, "--snapshot", str(t)], r"is a folder, not a snapshot file"),
    ("hyperparameters missing", lambda t: [*DEMO, "--hyperparameters", str(t / "h.json")], r"--hyperparameters .*cannot be read"),
    ("hyperparameters out of range", lambda t: [*DEMO, "--hyperparameters", str(_write(t / "h.json", '{"kappa": 70000}'))],
     r"--hyperparameters .*kappa.*70000"),
    ("hyperparameters not an object", lambda t: [*DEMO, "--hyperparameters", str(_write(t / "h.json", "[3]"))],
     r"expected a JSON object of SDK names, got list"),
    ("endpoints file missing", lambda t: [*DEMO, "--from-endpoints", str(t / "urls.txt")], r"urls\.txt: No such file or directory"),
    ("replay of an empty folder", lambda t: ["replay", str(t)], r"replay: error: .*the folder holds no snapshot"),
    ("replay device xyz", lambda t: ["replay", str(DATA / "sn15_block4769998.npz"), "--device", "xyz"], r"replay: error: --device xyz"),
    ("replay output folder missing", lambda t: ["replay", str(t), "--out", str(t / "no" / "r.csv")], r"the folder .*no does not exist"),
    ("serve a missing snapshot", lambda t: ["serve-weights", str(t / "nope.npz")], r"serve-weights: error: .*nope\.npz: no such file"),
    ("serve on a bad port", lambda t: ["serve-weights", str(t / "x.npz"), "--port", "-3"], r"argument --port: expected a port"),
]


@pytest.mark.parametrize("name, argv, message", OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_bad_options_exit_2_with_one_line(name: str, argv: Callable[[Path], list[str]], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv(tmp_path)) == 2, name
    line = _one_error_line(capsys, "mdt-tensor")
    assert re.search(message, line), line
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] in ([], ["h.json"]), "no output was written"


def test_cuda_without_a_gpu_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert cli.main([*DEMO, "--device", "cuda"]) == 2
    assert "--device cuda: CUDA is not available" in _one_error_line(capsys, "mdt-tensor epoch: error: ")


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("boom\nsecond line")


def test_an_internal_error_exits_1_with_one_line_and_debug_shows_it(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(epoch_command.yuma, "epoch", _boom)
    assert cli.main(DEMO) == 1
    line = _one_error_line(capsys, "mdt-tensor epoch: internal error: ")
    assert line == "mdt-tensor epoch: internal error: RuntimeError: boom second line (rerun with --debug for the traceback)"
    for argv in (["--debug", *DEMO], [*DEMO, "--debug"]):  # global or per command
        with pytest.raises(RuntimeError, match="boom"):
            cli.main(argv)


def test_debug_lets_bad_input_through_as_the_exception(tmp_path: Path) -> None:
    empty = tmp_path / "e.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        cli.main(["epoch", "--snapshot", str(empty), "--debug"])


def test_a_failed_json_write_leaves_no_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def half_then_fail(summary: dict[str, Any], path: Path) -> None:
        path.write_text('{"source": "demo", ')
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(epoch_command, "_write_json", half_then_fail)
    assert cli.main([*DEMO, "--json", str(tmp_path / "s.json")]) == 2
    assert "No space left on device" in _one_error_line(capsys, "mdt-tensor epoch: error: ")
    assert list(tmp_path.iterdir()) == []  # neither the target nor the temporary file


@pytest.mark.parametrize("text, wei", [("1MDT", 10**9), ("0.5 MDT", 5 * 10**8), ("1000000000 wei", 10**9), ("7 wei", 7)])
def test_emission_with_a_unit(text: str, wei: int, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    assert cli.main([*DEMO, "--payout", "exact", "--emission", text, "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["emission_wei"] == wei
    sub = summary["per_subnet"][0]
    assert sub["miner_emission_wei"] + sub["validator_emission_wei"] == wei  # exact payout: every wei


def test_the_json_holds_results_only_and_repeats_byte_for_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert cli.main(["epoch", "--subnets", "2", "--uids", "16", "--json", str(a)]) == 0
    assert "ms per epoch" in capsys.readouterr().out  # the timing is printed ...
    assert cli.main(["epoch", "--subnets", "2", "--uids", "16", "--json", str(b), "--quiet"]) == 0
    assert "seconds" not in json.loads(a.read_text())  # ... not written
    assert a.read_bytes() == b.read_bytes()


def test_hyperparameters_on_epoch(tmp_path: Path) -> None:
    hp = _write(tmp_path / "hp.json", json.dumps({"yuma_version": 3, "kappa": 32767, "rho": 10}))
    out = tmp_path / "s.json"
    assert cli.main([*DEMO, "--hyperparameters", str(hp), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["yuma3"] is True


@pytest.mark.parametrize("path", REAL_FILES, ids=[p.name for p in REAL_FILES])
def test_each_real_file_through_epoch_and_replay(path: Path, tmp_path: Path) -> None:
    """The .npz, the simulator's .pt and the SDK's save: the same subnet, so the same epoch."""
    summary_path, table = tmp_path / "s.json", tmp_path / "r.csv"
    assert cli.main(["epoch", "--snapshot", str(path), "--quiet", "--json", str(summary_path)]) == 0
    assert cli.main(["replay", str(path), "--quiet", "--out", str(table)]) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["uids"] == 256 and summary["source"] == str(path)
    sub = summary["per_subnet"][0]
    assert sub["miner_emission_wei"] + sub["validator_emission_wei"] + sub["dust_wei"] == 10**9
    rows = table.read_text().splitlines()
    assert len(rows) == 1 + 256
    header = rows[0].split(",")
    paid = sum(int(r.split(",")[header.index("server_emission_wei")]) for r in rows[1:])
    assert paid == sub["miner_emission_wei"]  # replay's first epoch is epoch's single one


def test_a_snapshot_with_int_weights_runs_as_stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.npz"
    np.savez(path, S=np.array([5e3, 1e3, 0, 0]), W=np.array([[0, 0, 65535, 0], [0, 0, 0, 65535], [0] * 4, [0] * 4]))
    assert cli.main(["epoch", "--snapshot", str(path), "--top", "2"]) == 0
    assert "1 subnet(s) x 4 uids" in capsys.readouterr().out
