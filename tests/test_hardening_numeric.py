"""Issue 10, classes 1, 3, 4, 5 outside the epoch: each example that gave a silent wrong answer or
an error outside the family, with the answer a user relies on (references by hand or in exact
Python arithmetic)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

import mdt_tensor as mt

BIG32 = 1e38  # 4 of them overflow a float32 sum
BIG64 = 1e308  # 2 of them overflow a float64 sum


# ------------------------------------------------------------------- class 1: float overflow


@pytest.mark.parametrize("dtype, big", [(torch.float32, BIG32), (torch.float64, BIG64)])
def test_normalize_sum_of_huge_row(dtype, big):
    out = mt.normalize_weights(torch.full((2, 4), big, dtype=dtype))
    assert torch.equal(out, torch.full((2, 4), 0.25, dtype=dtype))


def test_normalize_minmax_and_zscore_of_huge_span():
    w = torch.tensor([[3e38, -3e38, 0.0]])
    assert torch.equal(mt.normalize_weights(w, "minmax"), torch.tensor([[1.0, 0.0, 0.5]]))
    z = mt.normalize_weights(w, "zscore").double()
    assert torch.allclose(z, torch.tensor([[math.sqrt(1.5), -math.sqrt(1.5), 0.0]], dtype=torch.float64), atol=1e-6)
    # same sign, the mean's sum and the norm overflow
    z = mt.normalize_weights(torch.tensor([[1e38, 1e38, 1e38, 2e38]]), "zscore").double()
    assert torch.allclose(z, torch.tensor([[-1, -1, -1, 3]], dtype=torch.float64) / math.sqrt(3), atol=1e-6)


def test_normalize_in_place_with_overflowing_norm():
    w = torch.full((1, 8), 3e38)
    w[0, 0] = -3e38
    expected = mt.normalize_weights(w.double(), "zscore").float()
    mt.normalize_weights(w, "zscore", out=w)
    assert torch.allclose(w, expected, atol=1e-6)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("dtype, big", [(torch.float32, BIG32), (torch.float64, BIG64)])
def test_normalize_max_weight_of_huge_row(strict, dtype, big):
    x = torch.tensor([[big, big, big, big / 2, 0.0]], dtype=dtype)
    expected = mt.normalize_max_weight(x / big, 0.3, strict=strict)
    out = mt.normalize_max_weight(x, 0.3, strict=strict)
    assert torch.allclose(out, expected, rtol=1e-6)
    assert abs(float(out.double().sum()) - 1) < 1e-6


@pytest.mark.parametrize("dtype, big", [(torch.float32, BIG32), (torch.float32, 1e37), (torch.float64, BIG64)])
def test_entropy_of_huge_row(dtype, big):
    out = mt.compute_weight_entropy(torch.full((1, 4), big, dtype=dtype))
    assert abs(float(out[0]) - math.log(4)) < 1e-6


def test_moving_average_of_huge_row():
    out = mt.smooth_weights(torch.full((1, 5), 3e38), 3)
    assert torch.allclose(out, torch.full((1, 5), 3e38), rtol=1e-6)
    wide = mt.smooth_weights(torch.full((1, 50), 1e307, dtype=torch.float64).repeat(1, 1) * 17, 41)
    assert torch.allclose(wide, torch.full((1, 50), 1.7e308, dtype=torch.float64), rtol=1e-12)


@pytest.mark.parametrize("count", [4, 40])  # the numpy selection network and the torch sort
@pytest.mark.parametrize("method", ["mean", "median"])
def test_stack_mean_and_median_of_huge_values(count, method):
    stack = torch.full((count, 2, 3), 3e38)
    out = mt.compute_weight_consensus(stack, method)
    assert torch.allclose(out, torch.full((2, 3), 3e38), rtol=1e-6)
    stack64 = torch.full((count, 1, 2), 1.7e308, dtype=torch.float64)
    out64 = mt.compute_weight_consensus(stack64, method)
    assert torch.allclose(out64, torch.full((1, 2), 1.7e308, dtype=torch.float64), rtol=1e-12)


def test_median_of_opposite_huge_values_is_their_midpoint():
    stack = torch.tensor([[-3e38], [3e38], [-3e38], [3e38]]).unsqueeze(-1)
    assert torch.equal(mt.compute_weight_consensus(stack, "median"), torch.zeros(1, 1))


def test_weighted_median_with_stakes_near_float64_max():
    w = torch.tensor([[0.1, 0.5], [0.2, 0.5], [0.3, 0.0]], dtype=torch.float64)
    big = torch.tensor([1e308, 1e308, 1.7e308], dtype=torch.float64)
    small = torch.tensor([1.0, 1.0, 1.7], dtype=torch.float64)
    assert torch.equal(mt.weighted_median(w, big), mt.weighted_median(w, small))


def test_split_to_u16_of_huge_values():
    assert torch.equal(
        mt.convert_maybe_split_to_u16(torch.tensor([1e308, 1e308], dtype=torch.float64)),
        mt.convert_maybe_split_to_u16(torch.tensor([1.0, 1.0], dtype=torch.float64)),
    )


def test_scores_to_weights_of_huge_scores():
    scores = torch.tensor([[1e308, 1e308, 5e307, 0.0]], dtype=torch.float64)
    small = torch.tensor([[2.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    for kwargs in ({}, {"max_weight_limit": 0.45}):
        got, expected = mt.scores_to_weights(scores, **kwargs), mt.scores_to_weights(small, **kwargs)
        assert torch.equal(got.values, expected.values) and torch.equal(got.count, expected.count)
    ema = mt.scores_to_weights(scores, ema_alpha=0.5, previous=torch.full((1, 4), 1.7e308, dtype=torch.float64)).ema
    assert bool(torch.isfinite(ema).all())


def test_uid_converter_of_huge_float_values():
    out = mt.convert_weight_uids_and_vals_to_tensor(3, torch.tensor([0, 2]), torch.tensor([1e300, 1e300], dtype=torch.float64))
    assert torch.equal(out, torch.tensor([0.5, 0.0, 0.5]))


# ------------------------------------------------------------------- class 3: inputs let through


def test_clip_to_consensus_rejects_nan():
    with pytest.raises(mt.ValueRangeError, match="consensus"):
        mt.clip_to_consensus(torch.ones(2, 2), torch.tensor([math.nan, 1.0]))
    with pytest.raises(mt.ValueRangeError, match="weights"):
        mt.clip_to_consensus(torch.tensor([[math.nan, 1.0]]), torch.ones(2))


@pytest.mark.parametrize("stack", [[], torch.zeros(0, 2, 2), np.zeros((3, 0, 2))])
def test_empty_stack_is_an_error(stack):
    dim = 1 if isinstance(stack, np.ndarray) else 0
    with pytest.raises(mt.ShapeError, match="at least one matrix"):
        mt.compute_weight_consensus(stack, dim=dim)


@pytest.mark.parametrize("convert", [mt.convert_weight_uids_and_vals_to_tensor, mt.convert_bond_uids_and_vals_to_tensor])
@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_uid_converters_reject_bad_values(convert, bad):
    with pytest.raises(mt.ValueRangeError):
        convert(4, torch.tensor([0, 1]), torch.tensor([bad, 5.0]))
    # padding beyond `count` is not read
    convert(4, torch.tensor([[0, 1]]), torch.tensor([[5.0, bad]]), count=torch.tensor([1]))


def test_uid_converter_rejects_negative_integers():
    with pytest.raises(mt.ValueRangeError, match="non-negative"):
        mt.convert_weight_uids_and_vals_to_tensor(4, torch.tensor([0, 1]), torch.tensor([-1, 5]))


def _read_only(shape):
    array = np.zeros(shape, dtype=np.float32)
    array.flags.writeable = False
    return array


@pytest.mark.parametrize(
    "call",
    [
        lambda out: mt.normalize_weights(np.ones((2, 3), np.float32), out=out),
        lambda out: mt.clip_weights(np.ones((2, 3), np.float32), out=out),
        lambda out: mt.apply_weight_decay(np.ones((2, 3), np.float32), 0.5, out=out),
    ],
)
def test_read_only_out_is_refused(call):
    out = _read_only((2, 3))
    with pytest.raises(mt.ValueRangeError, match="writable"):
        call(out)
    assert not out.any()
    with pytest.raises(mt.ValueRangeError, match="grad"):
        call(torch.zeros(2, 3, requires_grad=True))


def test_expanded_out_is_an_mdt_error():
    for dtype in (torch.float32, torch.float16):  # computed in place, or copied in afterwards
        out = torch.zeros(3, dtype=dtype).expand(2, 3)
        with pytest.raises(mt.ShapeError, match="share memory") as info:
            mt.normalize_weights(torch.ones(2, 3, dtype=dtype), out=out)
        assert isinstance(info.value, ValueError)


def test_partially_overlapping_out_is_refused_and_in_place_works():
    x = torch.arange(1.0, 9.0).reshape(2, 4)
    before = x.clone()
    with pytest.raises(mt.ShapeError, match="overlaps"):
        mt.normalize_weights(x[:, :3], out=x[:, 1:])
    assert torch.equal(x, before)
    mt.normalize_weights(x, out=x)
    assert torch.allclose(x, before / before.sum(-1, keepdim=True))


@pytest.mark.parametrize(
    "call",
    [
        lambda: mt.convert_weight_uids_and_vals_to_tensor(10**13, torch.tensor([0]), torch.tensor([1])),
        lambda: mt.convert_bond_uids_and_vals_to_tensor(10**13, torch.tensor([0]), torch.tensor([1])),
        lambda: mt.sparse_to_dense_weights({(0, 1): 1.0}, num_neurons=10**8),
        lambda: mt.process_weights(torch.arange(3), torch.ones(3), 10**13, 1, 0.5),
        lambda: mt.split_emission(10, 10**13),
    ],
)
def test_huge_sizes_are_refused_before_allocating(call):
    with pytest.raises(mt.ValueRangeError, match="bytes of memory"):
        call()


# ------------------------------------------------------------------- class 4: integer edges


def test_balance_from_huge_wei_is_refused():
    with pytest.raises(mt.BalanceError, match="2\\*\\*256"):
        mt.Balance.from_wei(10**5000)
    with pytest.raises(mt.BalanceError):
        mt.Balance.from_wei(-(2**256), allow_negative=True)
    top = mt.Balance.from_wei(2**256 - 1)
    assert str(top).endswith("MDT")
    with pytest.raises(mt.BalanceError):
        top + mt.Balance(1)
    with pytest.raises(mt.BalanceError):
        mt.Balance.from_wei(10**70) * 10**10
    with pytest.raises(mt.BalanceError):
        mt.wei_to_mdt(10**100)


def test_float_amount_bound_is_exact_near_int64_max():
    token = mt.Token("TOK", 0)
    largest = torch.tensor([float(2**63 - 1024)], dtype=torch.float64)
    assert int(mt.mdt_to_wei(largest, rounding="floor", token=token)[0]) == 2**63 - 1024
    with pytest.raises(mt.WeiOverflowError):
        mt.mdt_to_wei(torch.tensor([2.0**63], dtype=torch.float64), rounding="floor", token=token)
    # decimals 9: the exact rounded wei decides, not the float64 product
    for x in (9223372036.854774, 9223372036.854775, 9223372036.854776):
        exact = Fraction(x) * 10**9
        if exact.numerator // exact.denominator <= 2**63 - 1:
            got = mt.mdt_to_wei(torch.tensor([x], dtype=torch.float64), rounding="floor")
            assert int(got[0]) == exact.numerator // exact.denominator
        else:
            with pytest.raises(mt.WeiOverflowError):
                mt.mdt_to_wei(torch.tensor([x], dtype=torch.float64), rounding="floor")


def test_huge_decimals_are_refused_not_a_hang():
    with pytest.raises(mt.ValueRangeError, match="decimals"):
        mt.format_balance(mt.Balance(5), decimals=10**30)
    with pytest.raises(mt.ValueRangeError, match="decimals"):
        mt.calculate_percentage(mt.Balance(1), mt.Balance(3), 10**30)


def test_every_balance_text_reads_back():
    top = mt.Balance.from_wei(2**256 - 1)
    assert mt.parse_balance(str(top)) == top


@pytest.mark.parametrize(
    "call",
    [
        lambda: mt.clip_weights(torch.ones(2), 0.0, 1e300),
        lambda: mt.clip_weights(torch.ones(2), 1e300, math.inf),
        lambda: mt.apply_weight_decay(torch.ones(2), 0.5, min_weight=1e300),
        lambda: mt.top_k_weights(torch.ones(1, 3), 1, other_value=1e300),
        lambda: mt.sparse_to_dense_weights((torch.tensor([[0]]), torch.tensor([1.0])), shape=(2,), default_weight=1e300),
    ],
)
def test_scalars_beyond_the_dtype_are_value_range_errors(call):
    with pytest.raises(mt.ValueRangeError, match="range of torch.float32"):
        call()
    assert torch.equal(mt.clip_weights(torch.tensor([2.0]), 0.0, math.inf), torch.tensor([2.0]))


def test_huge_integer_arguments():
    row = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    assert torch.allclose(mt.smooth_weights(row, 10**30), torch.full((1, 3), 2.0, dtype=torch.float64))
    assert torch.equal(mt.smooth_weights(row, 10**30, "exponential"), torch.ones(1, 3, dtype=torch.float64))
    for call in (
        lambda: mt.convert_bond_uids_and_vals_to_tensor(10**30, torch.tensor([0]), torch.tensor([1])),
        lambda: mt.process_weights(torch.arange(3), torch.zeros(3), 4, 10**30, 0.5),
        lambda: mt.sparse_to_dense_weights({(10**30, 0): 1.0}, 2),
    ):
        with pytest.raises(mt.ValueRangeError):
            call()
    with pytest.raises(mt.DTypeError):
        mt.sparse_to_dense_weights({(0, 0): 1 + 2j}, 2)
    with pytest.raises(mt.DTypeError):
        mt.sparse_to_dense_weights({(math.nan, 0): 1.0}, 2)


def test_negative_emission_is_refused_by_distribute_emission():
    with pytest.raises(mt.ValueRangeError, match="emission_wei"):
        mt.distribute_emission(-1, torch.tensor([0.0, 0.25]), torch.tensor([0.0, 1e38]))


def test_process_weights_of_empty_rows():
    uids, weights = mt.process_weights(torch.tensor([], dtype=torch.int64), torch.tensor([]), 4, 0, 0.5)
    assert uids.tolist() == [0, 1, 2, 3] and torch.allclose(weights, torch.full((4,), 0.25))


# ------------------------------------------------------------------- class 5: one error family


def test_split_emission_errors_are_in_the_family():
    with pytest.raises(mt.ShapeError, match="at least one mechanism"):
        mt.split_emission(10, torch.tensor([], dtype=torch.int64))
    with pytest.raises(mt.ShapeError, match="broadcast"):
        mt.split_emission(torch.tensor([1, 2, 3]), torch.ones(2, 2, dtype=torch.int64))


def test_unknown_consensus_method_is_a_value_range_error():
    with pytest.raises(mt.ValueRangeError, match="method"):
        mt.compute_weight_consensus(torch.zeros(1, 2, 2), "mode")


# ------------------------------------------------------------------- in the epoch (chain/)



def _state(stake: torch.Tensor) -> object:
    from mdt_tensor.chain.yuma import SubnetState

    weights = torch.tensor([[0, 32768, 32767], [0, 32768, 32767], [0, 65535, 0]])
    return SubnetState(weights=weights, stake=stake)


def test_fast_epoch_pays_with_stakes_whose_sum_overflows():
    huge = mt.yuma.epoch(_state(torch.tensor([1e308, 1e308, 1.7e308], dtype=torch.float64)), emission=1000, exact=False)
    small = mt.yuma.epoch(_state(torch.tensor([1.0, 1.0, 1.7], dtype=torch.float64)), emission=1000, exact=False)
    assert int(huge.dust) == int(small.dust) < 1000
    assert torch.equal(huge.emission, small.emission)


def test_integer_stake_bound_is_exact():
    # 2**61 - 1 fits the documented bound (sum below 2**61) but reads as 2**61 in float64
    result = mt.yuma.epoch(_state(torch.tensor([2**61 - 1, 0, 0])), emission=1000)
    assert int(result.emission.sum()) + int(result.dust) == 1000


@pytest.mark.parametrize("op", ["fx_col_normalize", "fx_col_max_upscale"])
def test_fixed_column_ops_refuse_inputs_without_columns(op):
    with pytest.raises(mt.ShapeError):
        getattr(mt, op)(torch.tensor([5]))


def test_activity_cutoff_near_the_int64_limit_keeps_uids_active():
    weights = torch.tensor([[0, 65535, 0], [0, 65535, 0], [65535, 0, 0]])
    late = 2**63 - 10
    near = mt.yuma.SubnetState(weights, torch.tensor([10, 10, 10]), last_update=torch.full((3,), late), block=late + 5)
    early = mt.yuma.SubnetState(weights, torch.tensor([10, 10, 10]), last_update=torch.full((3,), 1000), block=1005)
    assert mt.yuma.epoch(near).active.tolist() == mt.yuma.epoch(early).active.tolist() == [True, True, True]


def test_an_empty_update_stack_is_a_shape_error():
    state = mt.yuma.SubnetState(torch.tensor([[0, 65535], [65535, 0]]), torch.tensor([1, 1]))
    with pytest.raises(mt.ShapeError):
        mt.yuma.run_epochs(state, torch.zeros(0, 2, 2, dtype=torch.int64))


def test_a_huge_subnet_is_refused_before_allocating():
    huge = torch.zeros(1, 1, dtype=torch.int64).expand(300_000, 300_000)  # 720 GB as int64
    with pytest.raises(mt.ValueRangeError):
        mt.yuma.epoch(mt.yuma.SubnetState(huge, torch.zeros(300_000)))


def test_tiny_float_stakes_pay_like_their_scaled_up_copy():
    weights = torch.tensor([[0, 65535, 0], [0, 65535, 0], [65535, 0, 0]])
    tiny = mt.yuma.epoch(mt.yuma.SubnetState(weights, torch.tensor([1e-310, 1e-310, 2e-310], dtype=torch.float64)))
    unit = mt.yuma.epoch(mt.yuma.SubnetState(weights, torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)))
    assert torch.equal(tiny.emission, unit.emission) and int(tiny.dust) == int(unit.dust)
