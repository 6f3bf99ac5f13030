"""Replay over a series: ordering, carried state, re-registration, agreement, and the CLI on series.

The carry is checked two independent ways: against ``mt.yuma.run_epochs`` (the library's own
multi-epoch loop, a different code path) on a steady series, and against a hand-built state
(bonds zeroed by hand) for a re-registration.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mdt_tensor as mt
from mdt_tensor.io import SnapshotError, Snapshot, save_npz
from mdt_tensor.io.series import demo_series, read_series, replay

from .conftest import NPZ, SDK_SAVE, SIMULATOR, replay_cli

TEMPO = 360


def _steady(n: int, epochs: int, seed: int = 0) -> tuple[list[Snapshot], torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    weights = torch.randint(0, 65536, (epochs, n, n), generator=g)
    weights[:, n // 2 :, :] = 0  # half the uids are miners that set no weights
    stake = torch.randint(0, 10**12, (n,), generator=g)
    offsets = torch.randint(0, 50, (n,), generator=g)
    series = []
    for t in range(epochs):
        block = 10_000 + t * TEMPO
        state = mt.yuma.SubnetState(weights=weights[t], stake=stake, last_update=block - offsets, block=block)
        series.append(Snapshot(state=state, netuid=2, block=block, hotkeys=[f"hk{u}" for u in range(n)]))
    return series, weights, stake, offsets


@pytest.mark.parametrize("params", [
    mt.yuma.YumaParams(tempo=TEMPO),
    mt.yuma.YumaParams(tempo=TEMPO, yuma3=True, liquid_alpha=True, liquid_alpha_consensus_mode="previous"),
], ids=["yuma", "yuma3-liquid-previous"])
def test_steady_series_replays_like_run_epochs(params: mt.yuma.YumaParams) -> None:
    series, weights, stake, offsets = _steady(12, 4)
    start = mt.yuma.SubnetState(weights=weights[0], stake=stake, last_update=10_000 - offsets, block=10_000)
    expected, _ = mt.yuma.run_epochs(start, weights, params, emission=10**9)
    got = replay(series, params, emission=10**9)
    assert got.reregistered == [[], [], [], []] and got.agreement == {}
    for t, result in enumerate(got.results):
        for name in ("incentive", "dividends", "consensus", "bonds", "server_emission", "validator_emission", "validator_permit"):
            assert torch.equal(torch.as_tensor(getattr(result, name)), torch.as_tensor(getattr(expected, name))[t]), (t, name)


def test_changed_hotkey_resets_that_uids_bonds() -> None:
    series, *_ = _steady(10, 3, seed=1)
    series[2].hotkeys = list(series[2].hotkeys or [])
    series[2].hotkeys[7] = "someone else"
    got = replay(series, mt.yuma.YumaParams(tempo=TEMPO))
    assert got.reregistered == [[], [], [7]]
    # the reference: epoch 2 by hand, from epoch 1's outputs with uid 7's bonds row and column zeroed
    previous = got.results[1]
    bonds = torch.as_tensor(previous.bonds).clone()
    assert int(bonds[:, 7].sum()) > 0  # there was something to reset
    bonds[7, :] = 0
    bonds[:, 7] = 0
    registration = torch.zeros(10, dtype=torch.int64)
    registration[7] = series[1].block + 1  # type: ignore[operator]
    state = dataclasses.replace(
        series[2].state, bonds=bonds, validator_permit=previous.validator_permit,
        previous_consensus=previous.consensus, block_at_registration=registration,
    )
    reference = mt.yuma.epoch(state, mt.yuma.YumaParams(tempo=TEMPO))
    for name in ("incentive", "dividends", "bonds", "emission"):
        assert torch.equal(torch.as_tensor(getattr(got.results[2], name)), torch.as_tensor(getattr(reference, name))), name


def test_growing_subnet_pads_the_carried_state() -> None:
    small, *_ = _steady(8, 1, seed=2)
    large, *_ = _steady(10, 2, seed=3)
    series = [small[0], large[1]]
    got = replay(series)
    assert got.reregistered[1] == [8, 9]
    ran = got.states[1]
    assert ran.bonds.shape == (10, 10) and int(ran.bonds[:, 8:].abs().sum()) == 0
    assert torch.equal(ran.bonds[:8, :8], torch.as_tensor(got.results[0].bonds))


def test_agreement_reports_planted_differences() -> None:
    series, *_ = _steady(6, 2, seed=4)
    first = replay(series)
    for t, snap in enumerate(series):
        incentive = torch.as_tensor(first.results[t].incentive).clone()
        if t == 1:
            incentive[3] += 5 if int(incentive[3]) <= 65530 else -5
        snap.chain_outputs = {"incentive": incentive, "dividends": torch.as_tensor(first.results[t].dividends).clone()}
    got = replay(series)
    inc, div = got.agreement["incentive"], got.agreement["dividends"]
    assert (div.max_u16, div.mean_u16, div.epochs, div.values) == (0, 0.0, 2, 12)
    assert (inc.max_u16, inc.worst_epoch, inc.worst_uid, inc.epochs) == (5, 1, 3, 2)
    assert inc.mean_u16 == pytest.approx(5 / 12)


def test_folder_is_ordered_by_block_not_by_name(tmp_path: Path) -> None:
    series = demo_series(4, 8, seed=5)
    for t, snap in enumerate(series):
        save_npz(snap, tmp_path / f"{9 - t}.npz")  # names sort in reverse block order
    read = read_series(tmp_path)
    assert [s.block for s in read] == [s.block for s in series]
    assert [s.hotkeys for s in read] == [s.hotkeys for s in series]
    other = dataclasses.replace(series[0], netuid=99, block=5)
    save_npz(other, tmp_path / "other.npz")
    with pytest.raises(SnapshotError, match=r"mixes subnets \[1, 99\]"):
        read_series(tmp_path)


def test_payout_exact_exports_sum_to_the_emission(tmp_path: Path) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    for t, snap in enumerate(demo_series(4, 16, seed=6, churn=0.2)):
        save_npz(snap, folder / f"block-{snap.block}.npz")
    out = tmp_path / "rows.jsonl"
    code, text, err = replay_cli(folder, "--payout", "exact", "--emission", "0.75 MDT", "--out", out)
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 * 16
    for epoch in range(4):
        paid = [r["server_emission_wei"] + r["validator_emission_wei"] for r in rows if r["epoch"] == epoch]
        assert sum(paid) == 750_000_000 and all(isinstance(p, int) for p in paid)
    assert "replayed 4 epoch(s) of subnet 1" in text and "0.750000000 MDT per epoch" in text


def test_cli_on_each_real_file(tmp_path: Path) -> None:
    for path, extra in ((NPZ, []), (SIMULATOR, ["--fast"]), (SDK_SAVE, ["--fast"])):
        out = tmp_path / f"{path.stem}.csv"
        code, text, err = replay_cli(path, "--out", out, *extra)
        assert (code, err) == (0, ""), err
        assert "replayed 1 epoch(s) of subnet 15, block 4769998, 256 uids" in text
        lines = out.read_text().splitlines()
        assert len(lines) == 257 and lines[0].startswith("netuid,block,epoch,uid,hotkey,stake_wei")
    assert "below half a rao became 0" in text  # the SDK file's note


def test_the_three_real_files_give_one_answer() -> None:
    """The .npz and the simulator file hold the same subnet: the same exact epoch, bit for bit."""
    npz = replay(read_series([NPZ]))
    sim = replay(read_series([SIMULATOR]))
    for name in ("incentive", "dividends", "emission", "bonds"):
        assert torch.equal(torch.as_tensor(getattr(npz.results[0], name)), torch.as_tensor(getattr(sim.results[0], name)))
    assert int(np.count_nonzero(npz.results[0].incentive)) > 0


@pytest.mark.cuda
def test_replay_on_cuda_matches_cpu() -> None:
    series = demo_series(3, 32, seed=7)
    cpu, gpu = replay(series), replay(series, device="cuda")
    for a, b in zip(cpu.results, gpu.results):
        assert torch.equal(a.incentive, b.incentive.cpu()) and torch.equal(a.emission, b.emission.cpu())
