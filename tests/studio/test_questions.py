"""``burn_share`` and ``predict_validator_trust`` against what the chain does to a weight row, step by step."""

from __future__ import annotations

import pytest
import torch

import mdt_tensor as mt
from mdt_tensor.errors import ShapeError, ValueRangeError
from mdt_tensor.studio import burn_share, predict_validator_trust

yuma = mt.yuma
V, N, BURN = 3, 8, 7  # validators 0..2, miners 3..6, the owner's burn uid 7


def _metagraph() -> yuma.SubnetState:
    stake = torch.tensor([300, 200, 100] + [0] * 5, dtype=torch.int64) * 10**9
    return yuma.SubnetState(weights=torch.zeros(N, N, dtype=torch.int64), stake=stake, owner_uid=BURN, block=10_000)


def _rows(burn: float) -> torch.Tensor:
    rows = torch.zeros(V, N, dtype=torch.float64)
    rows[:, 3:7] = (1 - burn) / 4
    rows[:, BURN] = burn
    return rows


@pytest.mark.parametrize("burn", [0.0, 0.25, 0.5, 1.0])
def test_agreed_burn_reaches_the_uid_as_its_share_of_the_miners_half(burn: float) -> None:
    out = burn_share(_rows(burn), _metagraph(), BURN, emission=10**9)
    assert out.intended == pytest.approx(burn)
    # the burn uid is a miner: it gets its incentive share of the miners' half, floored to wei;
    # u16 max-upscaling moves the normalised weight by at most one part in 65535.
    assert abs(out.share - burn / 2) <= 0.5 / 65535 + 1e-9
    assert out.wei == int(out.share * 10**9)


def test_max_weight_limit_caps_the_burn_before_the_chain_sees_it() -> None:
    out = burn_share(_rows(0.8), _metagraph(), BURN, max_weight_limit=0.3)
    assert out.intended <= 0.3 + 1e-6 and out.share <= 0.15 + 1e-6


def test_a_minority_burn_is_clipped_by_consensus() -> None:
    rows = _rows(0.0)
    rows[2] = _rows(0.5)[2]  # only the smallest validator (1/6 of the stake) burns
    out = burn_share(rows, _metagraph(), BURN)
    assert out.intended == pytest.approx(0.5 / 6) and out.share == 0.0


def test_a_tiny_burn_rounds_away_in_u16() -> None:
    out = burn_share(_rows(1e-6), _metagraph(), BURN)
    assert out.intended > 0 and out.wei == 0


def test_batched_weight_sets_equal_each_alone() -> None:
    sets = torch.stack([_rows(b) for b in (0.1, 0.3, 0.6)])
    together = burn_share(sets, _metagraph(), BURN)
    for k, b in enumerate((0.1, 0.3, 0.6)):
        alone = burn_share(_rows(b), _metagraph(), BURN)
        assert int(together.wei[k]) == alone.wei and float(together.share[k]) == alone.share


def test_candidate_row_in_consensus_gets_full_trust_and_an_outlier_none() -> None:
    state = _metagraph()
    w = torch.zeros(N, N, dtype=torch.int64)
    w[:V, 3] = 65535
    state = yuma.SubnetState(weights=w, stake=state.stake, block=10_000)
    rows = torch.zeros(3, N)
    rows[0, 3] = 1.0  # with the others
    rows[1, 4] = 1.0  # alone on another miner
    rows[2, 3], rows[2, 4] = 0.5, 0.5
    out = predict_validator_trust(rows, state, uid=2)
    assert out.validator_trust.tolist() == pytest.approx([1.0, 0.0, 0.5], abs=1e-6)
    assert float(out.dividends[0]) > float(out.dividends[2]) > float(out.dividends[1]) == 0.0
    single = predict_validator_trust(rows[2], state, uid=2)
    assert single.validator_trust == float(out.validator_trust[2]) and single.validator_emission == int(out.validator_emission[2])


def test_questions_refuse_bad_shapes_and_uids() -> None:
    with pytest.raises(ShapeError):
        burn_share(torch.zeros(3, 5), _metagraph(), BURN)
    with pytest.raises(ValueRangeError):
        burn_share(_rows(0.1), _metagraph(), 99)
    with pytest.raises(ValueRangeError):
        predict_validator_trust(torch.zeros(N), _metagraph(), uid=-1)
