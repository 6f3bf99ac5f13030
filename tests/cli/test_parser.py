"""The ``mdt-tensor`` parser: help, and usage errors as one line (the subprocess runs: ``test_end_to_end.py``)."""

from __future__ import annotations

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


def test_bad_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        ("epoch", "--uids", "0"): "mdt-tensor epoch: error: argument --uids: expected a positive integer, got 0",
        ("epoch", "--payout", "floor"): "mdt-tensor epoch: error: argument --payout: invalid choice: 'floor'",
        ("epoch", "--seed", "-1"): "mdt-tensor epoch: error: argument --seed: expected a seed in [0, 2**63), got -1",
        ("epoch", "--bogus"): "mdt-tensor: error: unrecognized arguments: --bogus",
        ("frobnicate",): "mdt-tensor: error: argument COMMAND: invalid choice: 'frobnicate'",
        ("serve-weights", "x.npz", "--port", "70000"): "argument --port: expected a port in [0, 65535], got 70000",
    }
    for argv, message in cases.items():
        assert cli.main(list(argv)) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "usage:" not in err, (argv, err)
