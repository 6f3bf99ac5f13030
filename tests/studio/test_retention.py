"""The retention map: one batched run equals its points run alone; the plot writes a PNG or says what is missing."""

from __future__ import annotations

import builtins

import pytest
import torch

from mdt_tensor.io import MissingExtraError
from mdt_tensor.studio import plot_retention, plot_sweep, retention_map, sweep
from mdt_tensor.errors import ValueRangeError
import mdt_tensor as mt

SMALL = dict(validators=4, miners=8, epochs=2)


def test_batched_map_equals_each_point_alone() -> None:
    stakes, weights = [0.55, 0.8], [0.0, 0.5, 1.0]
    whole = retention_map(stakes, weights, **SMALL)
    assert whole.retained.shape == (2, 3)
    for i, s in enumerate(stakes):
        for j, w in enumerate(weights):
            alone = retention_map([s], [w], **SMALL)
            assert float(alone.major_share[0, 0]) == float(whole.major_share[i, j])
            assert float(alone.major_dividends_share[0, 0]) == float(whole.major_dividends_share[i, j])


def test_major_keeps_its_share_when_the_minor_scores_like_it_and_gains_when_the_minor_gives_it_all() -> None:
    m = retention_map([0.75], [0.0, 0.25], **SMALL)  # 2 of 8 miners are the minor's: honest self-weight 0.25
    assert float(m.retained[0, 1]) == pytest.approx(1.0, abs=1e-3)
    assert float(m.retained[0, 0]) > 1.0


def test_retention_map_refuses_bad_axes() -> None:
    with pytest.raises(ValueRangeError):
        retention_map([1.0], [0.5])
    with pytest.raises(ValueRangeError):
        retention_map([0.6], [])


def test_plots_write_pngs(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    m = retention_map([0.55, 0.8], [0.0, 0.5, 1.0], **SMALL)
    assert plot_retention(m, tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    state = mt.yuma.SubnetState(weights=[[0, 65535, 0], [0, 0, 65535], [0, 65535, 0]], stake=[100, 0, 200])
    result = sweep(state, {"kappa": [0.4, 0.6], "bonds_moving_avg": [0.5, 0.9]}, epochs=2)
    assert plot_sweep(result, tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_says_which_extra(monkeypatch, tmp_path) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(MissingExtraError, match=r"mdt-tensor\[plot\]"):
        plot_retention(retention_map([0.55, 0.8], [0.0, 1.0], **SMALL), tmp_path / "r.png")
