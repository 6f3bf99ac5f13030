"""split_emission, distribute_emission, sum_wei: against the chain's rules and Fraction references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor import (
    DTypeError,
    ShapeError,
    ValueRangeError,
    WeightError,
    WeiOverflowError,
    distribute_emission,
    split_emission,
    sum_wei,
)
from tests.money.apportion_reference import floors, hamilton

INT64_MAX = 2**63 - 1


# ---------------------------------------------------------------------------------------------
# emission


@pytest.mark.parametrize(
    "total, split, expected",
    [(25, 5, [5, 5, 5, 5, 5]), (10, 4, [4, 2, 2, 2]), (19, [3450, 6899, 10348, 17247, 27594], [1, 2, 3, 5, 8])],
)
def test_split_emission_chain_vectors(total: int, split: object, expected: list[int]) -> None:
    split_arg = torch.tensor(split) if isinstance(split, list) else split
    assert split_emission(total, split_arg).tolist() == expected  # type: ignore[arg-type]


@given(st.integers(0, INT64_MAX), st.lists(st.integers(0, 65535), min_size=1, max_size=8))
def test_split_emission_matches_the_chain_rule(total: int, split: list[int]) -> None:
    if sum(split) > 65535:
        split = [s * 65535 // sum(split) for s in split]
    parts = split_emission(total, torch.tensor(split)).tolist()
    expected = [total * s // 65535 for s in split]
    expected[0] += total - sum(expected)
    assert parts == expected


def test_split_emission_batched_and_errors() -> None:
    out = split_emission(torch.tensor([10, 19]), torch.tensor([3450, 6899, 10348, 17247, 27594]))
    assert out.tolist()[1] == [1, 2, 3, 5, 8] and out.sum(-1).tolist() == [10, 19]
    with pytest.raises(ValueRangeError):
        split_emission(10, torch.tensor([70000]))
    with pytest.raises(ValueRangeError, match="65535"):
        split_emission(10, torch.tensor([65535, 65535]))
    with pytest.raises(ValueRangeError):
        split_emission(10, 0)


@given(
    st.integers(0, 10**18),
    st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 65535)), min_size=1, max_size=8).filter(
        lambda pairs: any(a or b for a, b in pairs)
    ),
)
def test_distribute_emission_is_exact(emission: int, pairs: list[tuple[int, int]]) -> None:
    incentive = [a for a, _ in pairs]
    dividends = [b for _, b in pairs]
    out = distribute_emission(emission, torch.tensor(incentive), torch.tensor(dividends))
    expected = hamilton(emission, incentive + dividends)[0]
    assert out.server.tolist() + out.validator.tolist() == expected and int(out.dust) == 0
    chain = distribute_emission(emission, torch.tensor(incentive), torch.tensor(dividends), method="floor")
    floored = floors(emission, incentive + dividends)
    assert chain.server.tolist() + chain.validator.tolist() == floored[0] and int(chain.dust) == floored[1]


def test_distribute_emission_fifty_fifty_and_batch() -> None:
    incentive = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    dividends = torch.tensor([[0.0, 0.25, 0.75], [0.0, 0.0, 1.0]])
    out = distribute_emission(torch.tensor([1000, 7]), incentive, dividends)
    assert out.server.tolist() == [[250, 250, 0], [4, 0, 0]]
    assert out.validator.tolist() == [[0, 125, 375], [0, 0, 3]]
    assert (out.server.sum(-1) + out.validator.sum(-1)).tolist() == [1000, 7]


def test_distribute_emission_without_weights_pays_validators_by_stake() -> None:
    zeros = torch.zeros(3)
    out = distribute_emission(100, zeros, zeros, active_stake=torch.tensor([0.0, 0.0, 0.0]), stake=torch.tensor([1.0, 3.0, 0.0]))
    assert out.server.tolist() == [0, 0, 0] and out.validator.tolist() == [25, 75, 0]
    out = distribute_emission(100, zeros, zeros, active_stake=torch.tensor([1.0, 0.0, 1.0]), stake=torch.tensor([1.0, 3.0, 0.0]))
    assert out.validator.tolist() == [50, 0, 50]
    with pytest.raises(WeightError, match="active_stake"):
        distribute_emission(100, zeros, zeros)


def test_distribute_emission_errors() -> None:
    with pytest.raises(ShapeError):
        distribute_emission(1, torch.ones(3), torch.ones(2))
    with pytest.raises(DTypeError):
        distribute_emission(1, torch.ones(3), torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueRangeError):
        distribute_emission(1, torch.tensor([1.0, float("nan")]), torch.ones(2))


def test_sum_wei_guards_overflow_and_names_the_row() -> None:
    assert sum_wei(torch.tensor([[2**62, 2**62 - 1], [-5, 3]])).tolist() == [INT64_MAX, -2]
    with pytest.raises(WeiOverflowError, match=r"\(1,\)"):
        sum_wei(torch.tensor([[1, 2], [2**62, 2**62]]))
    with pytest.raises(WeiOverflowError):
        sum_wei(np.array([-(2**62), -(2**62), -1]))
    assert isinstance(sum_wei(np.array([[1, 2]])), np.ndarray)
    assert mt.sum_wei(torch.tensor([[1, 2], [3, 4]]), dim=0).tolist() == [4, 6]
