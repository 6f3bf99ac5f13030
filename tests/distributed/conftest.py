"""One shared gloo job per world size (2 and 3 ranks) runs every scenario; the tests read its outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .launch import Outcome, launch
from .scenarios import run_all, write_snapshots


@pytest.fixture(scope="session", params=[2, 3], ids=["2-ranks", "3-ranks"])
def job(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, list[Outcome]]:
    world = int(request.param)
    workdir = tmp_path_factory.mktemp(f"dist{world}")
    write_snapshots(workdir)
    outcomes = launch(world, lambda rank, size: run_all(rank, size, workdir), workdir, timeout_s=20.0)
    for outcome in outcomes:
        assert outcome.ok, f"rank {outcome.rank} failed: {outcome.error_type} {outcome.error} (exit {outcome.exit_code})"
    return world, workdir, outcomes


def values(outcomes: list[Outcome], key: str) -> list[Any]:
    return [outcome.value[key] for outcome in outcomes]
