"""The ``mdt-tensor`` parser: help, usage errors, and the command run once as a subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mdt_tensor import cli


def test_help_lists_the_epoch_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "epoch" in text and "examples:" in text
    with pytest.raises(SystemExit):
        cli.main(["epoch", "--help"])
    text = capsys.readouterr().out
    for option in ("--subnets", "--uids", "--epochs", "--fast", "--device", "--yuma3", "--seed", "--json", "--snapshot"):
        assert option in text


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    assert "usage: mdt-tensor" in capsys.readouterr().out


def test_bad_arguments_exit_with_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["epoch", "--uids", "0"], ["epoch", "--emission", "-1"], ["epoch", "--payout", "floor"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2


def test_module_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mdt_tensor.cli", "epoch", "--subnets", "1", "--uids", "16", "--top", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "subnet 0" in done.stdout
