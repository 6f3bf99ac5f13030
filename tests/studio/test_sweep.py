"""``mt.studio.sweep`` and the grid: the table's shape and sums, and every point equal to its own ``run_epochs``."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ShapeError, ValueRangeError
from mdt_tensor.studio import expand_grid, sweep
from mdt_tensor.studio.batch import Trajectory, _run_grid
from mdt_tensor.studio.scenarios import copier, stake_moves

yuma = mt.yuma


def _subnet(n: int = 6, validators: int = 3, seed: int = 0) -> yuma.SubnetState:
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(n, n, dtype=torch.int64)
    w[:validators, validators:] = torch.randint(1, 65536, (validators, n - validators), generator=g)
    stake = torch.zeros(n, dtype=torch.int64)
    stake[:validators] = torch.randint(10**9, 10**12, (validators,), generator=g)
    return yuma.SubnetState(weights=w, stake=stake, block=5000)


GRID = {"kappa": [0.4, 0.6], "bonds_moving_avg": [0.5, 0.975], "liquid_alpha": [False, (0.7, 0.9)]}


def test_grid_reads_fractions_chain_units_and_liquid_alpha_pairs() -> None:
    points = expand_grid({"kappa": [0.5, 40000], "liquid_alpha": [False, (0.7, 0.9)]}, yuma.YumaParams(yuma3=True))
    assert [p.params.kappa for p in points] == [32768, 32768, 40000, 40000]
    assert [(p.params.liquid_alpha, p.params.alpha_low, p.params.alpha_high) for p in points[:2]] == [
        (False, 45875, 58982), (True, 45874, 58982)]
    assert all(p.params.yuma3 for p in points) and [p.index for p in points] == [0, 1, 2, 3]


@pytest.mark.parametrize("grid, error", [
    ({"kapa": [0.5]}, ValueRangeError), ({"kappa": []}, ValueRangeError), ({"kappa": [1.5]}, ValueRangeError),
    ({"kappa": ["x"]}, DTypeError), ({"liquid_alpha": [(0.1, 0.2, 0.3)]}, DTypeError),
])
def test_grid_refuses_bad_names_and_values(grid: dict, error: type) -> None:
    with pytest.raises(error):
        expand_grid(grid)


@pytest.mark.parametrize("exact", [True, False])
def test_sweep_table_has_one_row_per_point_epoch_and_uid_and_pays_every_wei(exact: bool) -> None:
    state, epochs = _subnet(), 3
    result = sweep(state, GRID, epochs=epochs, exact=exact, payout="exact", emission=10**9, params=yuma.YumaParams(yuma3=True),
                   group=[0], validator=1)
    rows = result.rows()
    assert len(rows) == 8 * epochs * 6 and result.shape == (2, 2, 2)
    assert {(r["point"], r["epoch"], r["uid"]) for r in rows} == {(p, t, u) for p in range(8) for t in range(3) for u in range(6)}
    sums: dict[tuple[int, int], int] = {}
    for r in rows:
        assert isinstance(r["server_emission_wei"], int) and isinstance(r["validator_emission_wei"], int)
        key = (r["point"], r["epoch"])
        sums[key] = sums.get(key, 0) + r["server_emission_wei"] + r["validator_emission_wei"]
    assert set(sums.values()) == {10**9}
    summaries = result.summaries()
    assert len(summaries) == 8 and all(s["paid_wei"] == 3 * 10**9 and s["dust_wei"] == 0 for s in summaries)
    assert all(0.0 <= s["group_dividends_share"] <= 1.0 and 0.0 < s["incentive_hhi"] <= 1.0 for s in summaries)
    assert result.metric("incentive_hhi").shape == (2, 2, 2)


def test_every_sweep_point_equals_its_own_run_epochs_bit_for_bit() -> None:
    state = _subnet(seed=3)
    base = yuma.YumaParams(yuma3=True)
    result = sweep(state, GRID, epochs=3, params=base)
    w = torch.as_tensor(state.weights)
    for point, got in zip(result.points, result.results):
        want, _ = yuma.run_epochs(state, w.expand(3, *w.shape), point.params)
        for f in dataclasses.fields(yuma.EpochResult):
            assert torch.equal(torch.as_tensor(getattr(got, f.name)), torch.as_tensor(getattr(want, f.name))), f.name


def test_batched_cases_equal_each_case_alone() -> None:
    # Two scenarios of one size under the same parameters run as one batch; each equals its own run.
    a, b = Trajectory.of_states(copier(epochs=4).states), Trajectory.of_states(stake_moves(epochs=4).states)
    params = yuma.YumaParams(kappa=30000)
    together = _run_grid([(a, params), (b, params)])
    for traj, got in zip((a, b), together):
        (alone,) = _run_grid([(traj, params)])
        for f in dataclasses.fields(yuma.EpochResult):
            assert torch.equal(torch.as_tensor(getattr(got, f.name)), torch.as_tensor(getattr(alone, f.name))), f.name


def test_sweep_over_a_list_of_snapshots_and_a_snapshot_file(tmp_path) -> None:
    from mdt_tensor.io import build_snapshot, save_npz

    state = _subnet()
    snap = build_snapshot({"weights": state.weights.numpy(), "stake": state.stake.numpy(), "block": 5000}, source="test")
    save_npz(snap, tmp_path / "s.npz")
    from_file = sweep(tmp_path / "s.npz", {"kappa": [0.5]}, epochs=2)
    from_list = sweep([snap, snap], {"kappa": [0.5]})
    assert len(from_file.rows()) == len(from_list.rows()) == 2 * 6


def test_sweep_refuses_bad_bases_and_uids() -> None:
    with pytest.raises(DTypeError):
        sweep(42, {"kappa": [0.5]})
    with pytest.raises(ShapeError):
        sweep(_subnet(), {"kappa": [0.5]}, group=[99])
    with pytest.raises(ValueRangeError):
        sweep(_subnet(), {"kappa": [0.5]}, epochs=0)
    fractional = dataclasses.replace(_subnet(), weights=torch.as_tensor(_subnet().weights).double() + 0.5)
    with pytest.raises(DTypeError, match="whole numbers"):
        sweep(fractional, {"kappa": [0.5]}, epochs=2)
    with pytest.raises(DTypeError, match="integers"):
        sweep(dataclasses.replace(_subnet(), weights=torch.as_tensor(_subnet().weights) > 0), {"kappa": [0.5]})
