"""Fixtures of the io tests: the three real snapshot files (tests/data/) and a CLI runner."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from mdt_tensor.cli.replay import add_replay_parser, run_replay

DATA = Path(__file__).resolve().parent.parent / "data"
NPZ = DATA / "sn15_block4769998.npz"
SIMULATOR = DATA / "ysim_netuid15_block4769998.pt"
SDK_SAVE = DATA / "bt_metagraph_save_netuid15_block4769998.pt"


def replay_cli(*argv: str | Path) -> tuple[int, str, str]:
    """``mdt-tensor replay ARGV...`` through the subcommand's own parser: (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="mdt-tensor")
    add_replay_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["replay", *map(str, argv)])
    out, err = io.StringIO(), io.StringIO()
    code = run_replay(args, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli() -> Callable[..., tuple[int, str, str]]:
    return replay_cli
