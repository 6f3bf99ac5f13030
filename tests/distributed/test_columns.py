"""Column-sharded consensus of one subnet on 2 and 3 gloo ranks against ``mt.yuma.epoch`` in one process."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import mdt_tensor as mt
from mdt_tensor import distributed as md

from .conftest import values
from .scenarios import BIG_UIDS, COLUMN_PARAMS, big_subnet, uneven_columns

VECTORS = ("consensus", "incentive", "dividends", "validator_trust", "stake_weight", "consensus_float",
           "incentive_float", "dividends_float", "validator_trust_float", "stake_weight_float",
           "active_stake_float", "validator_permit", "active")


def _check(result: md.ColumnShardResult, want: mt.yuma.EpochResult, exact: bool, what: str) -> None:
    for name in VECTORS:
        a, b = getattr(result, name), torch.as_tensor(getattr(want, name))
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what}.{name}"
        if exact or not a.is_floating_point():
            if exact or a.dtype == torch.bool:
                assert torch.equal(a, b), f"{what}.{name}"
            else:
                assert int((a - b).abs().max()) <= 1, f"{what}.{name}"
        else:
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), f"{what}.{name}: {(a - b).abs().max()}"
    bonds = torch.as_tensor(want.bonds)[:, result.columns.start:result.columns.stop]
    assert result.bonds.shape == bonds.shape
    assert int((result.bonds - bonds).abs().max()) <= (0 if exact else 1), f"{what}.bonds"


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "fast"])
@pytest.mark.parametrize("name", list(COLUMN_PARAMS))
def test_column_shards_equal_the_whole_subnet_epoch(job, name: str, exact: bool) -> None:
    world, _, outcomes = job
    want = mt.yuma.epoch(big_subnet(), COLUMN_PARAMS[name], exact=exact)
    results = values(outcomes, f"columns_{name}_{exact}")
    for rank, result in enumerate(results):
        assert result.columns == md.shard_range(BIG_UIDS, rank, world)
        _check(result, want, exact, f"rank {rank}")


def test_very_uneven_column_blocks(job) -> None:
    world, _, outcomes = job
    want = mt.yuma.epoch(big_subnet())
    for rank, result in enumerate(values(outcomes, "columns_uneven")):
        assert result.columns == uneven_columns(BIG_UIDS, rank, world)
        _check(result, want, True, f"rank {rank}")


def test_shard_columns_slices_the_matrices_only() -> None:
    state = big_subnet()
    shard = md.shard_columns(state, 1, 3)
    cols = md.shard_range(BIG_UIDS, 1, 3)
    assert torch.equal(shard.weights, state.weights[:, cols.start:cols.stop])
    assert torch.equal(shard.bonds, state.bonds[:, cols.start:cols.stop])
    assert all(getattr(shard, f.name) is getattr(state, f.name) for f in dataclasses.fields(state)
               if f.name not in ("weights", "bonds", "weights_present"))
