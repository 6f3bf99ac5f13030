"""Every benchmark module still runs (tiny sizes); the figures themselves live in benchmarks/README.md."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import benchmarks
from benchmarks._harness import Comparison, Context

MODULES = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_runs_in_smoke_mode(name: str) -> None:
    rows = importlib.import_module(f"benchmarks.{name}").run(Context(mode="smoke"))
    assert rows and all(isinstance(r, Comparison) and r.ours_s > 0 and r.baseline_s > 0 for r in rows)
