"""mdt_tensor.compat against slow 1-D transcriptions of the references and the spec's vectors.

The transcriptions below follow ``spec/bittensor-compat.md`` A.1 (the Bittensor SDK's
``weight_utils``) and ``spec/yuma.md`` B.2 (the chain's max-upscale), one row at a time, in numpy,
Python floats, Python ints or Fractions. They never call the code under test.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ShapeError, ValueRangeError

from benchmarks.bench_compat import sdk_normalize_max_weight as ref_normalize_max_weight  # the SDK's algorithm

from .helpers import ARRAY_KINDS, DEVICES, assert_kind, to_kind, to_numpy

U16_MAX = 65535


# ------------------------------------------------------------------------------------------------
# slow references, one row at a time


def ref_water_fill(x: list[Fraction], limit: Fraction) -> list[Fraction]:
    """Exact water-filling in Fractions: find the common cap C with sum(min(x, C)) = C / limit."""
    nonzero = [v for v in x if v > 0]
    if not nonzero:
        return [Fraction(0)] * len(x)
    if len(nonzero) * limit <= 1:
        return [Fraction(1, len(nonzero)) if v > 0 else Fraction(0) for v in x]
    total = sum(x)
    if max(x) / total <= limit:
        return [v / total for v in x]
    ordered = sorted(x)
    n = len(x)
    for capped in range(1, n + 1):  # the `capped` largest entries sit at the cap
        rest = sum(ordered[: n - capped])
        cap = limit * rest / (1 - capped * limit)
        if ordered[n - capped - 1] <= cap if capped < n else True:
            scale = (1 - capped * limit) / rest
            return [min(v * scale, limit) for v in x]
    raise AssertionError("unreachable")


def ref_emit(uids: list[int], weights: list[float], drop_rounded_zeros: bool) -> tuple[list[int], list[int]]:
    """The SDK's emit conversion; ``drop_rounded_zeros=False`` is our default (tiny -> 1)."""
    if sum(weights) == 0:
        return [], []
    max_weight = float(max(weights))
    out_uids, out_vals = [], []
    for w, u in zip(weights, uids):
        value = round(float(w) / max_weight * U16_MAX)
        if value == 0 and not drop_rounded_zeros and w > 0:
            value = 1
        if value != 0:
            out_uids.append(u)
            out_vals.append(value)
    return out_uids, out_vals


def ref_u16_max_upscale(values: list[int]) -> list[int]:
    """The chain's vec_u16_max_upscale_to_u16 with I32F32 as Python ints (bits = value * 2**32)."""
    one = 1 << 32
    bits = [v * one for v in values]
    u16_max = U16_MAX * one
    top = max(bits)

    def mul(a: int, b: int) -> int:
        return (a * b) >> 32

    def div(a: int, b: int) -> int:
        return (a << 32) // b  # both non-negative: truncation == floor

    def round_to_u16(x: int) -> int:
        return min(U16_MAX, (x + (one >> 1)) >> 32)  # ties away from zero, saturate

    if top == 0:
        return [mul(b, u16_max) >> 32 for b in bits]
    if top > 32768 * one:
        ratio = div(u16_max, top)
        return [round_to_u16(mul(b, ratio)) for b in bits]
    return [round_to_u16(div(mul(b, u16_max), top)) for b in bits]


def ref_maybe_split(split: list[float]) -> list[int]:
    values = [float(x) for x in split]
    total = sum(values)
    u16 = [round(v / total * U16_MAX) for v in values]
    diff = sum(u16) - U16_MAX
    if diff:
        u16[u16.index(max(u16))] -= diff
    return u16


def ref_process_weights(uids, weights, num_neurons, min_allowed, limit, exclude_quantile=0):
    """The SDK's numpy branch (index by position in step 4)."""
    weights = weights.astype(np.float32)
    quantile = exclude_quantile / U16_MAX
    nz_idx = np.argwhere(weights > 0).squeeze(axis=1)
    nz_uids, nz_weights = uids[nz_idx], weights[nz_idx]
    if nz_weights.size == 0 or num_neurons < min_allowed:
        return np.arange(num_neurons), np.ones(num_neurons, dtype=np.int64) / num_neurons
    if nz_weights.size < min_allowed:
        w = np.ones(num_neurons, dtype=np.int64) * 1e-5
        w[nz_idx] += nz_weights
        out = ref_normalize_max_weight(w, limit)
        return np.arange(len(out)), out
    max_exclude = max(0, len(nz_weights) - min_allowed) / len(nz_weights)
    q = min([quantile, max_exclude])
    lowest = np.quantile(nz_weights, q)
    keep = lowest <= nz_weights
    return nz_uids[keep], ref_normalize_max_weight(nz_weights[keep], limit)


def chain_max_weight_ok(values: list[int], limit_u16: int) -> bool:
    """The chain's check_vec_max_limited in I32F32 (Python ints)."""
    if limit_u16 == U16_MAX:
        return True
    total = sum(values)
    if total == 0:
        return True
    limit_bits = (limit_u16 << 32) // U16_MAX
    return max((v << 32) // total for v in values) <= limit_bits


# ------------------------------------------------------------------------------------------------
# strategies

weight_values = st.one_of(
    st.just(0.0), st.floats(1e-6, 1.0), st.floats(1.0, 1e3), st.sampled_from([1.0, 2.0, 0.5])
)


def weight_rows(min_n: int = 1, max_n: int = 24, max_rows: int = 4, dtype=np.float64):
    return st.integers(1, max_rows).flatmap(
        lambda rows: st.integers(min_n, max_n).flatmap(
            lambda n: arrays(dtype, (rows, n), elements=weight_values.map(dtype))
        )
    )


limits = st.sampled_from([0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 0.07, 0.123])

# Rows longer than floor(1/limit) + 3, so that only the largest entries are ordered (the top-k
# path), with a few dominant entries so that the cap binds.
long_limits = st.sampled_from([0.1, 0.2, 0.3, 0.45, 0.07])


def long_rows(dtype=np.float64):
    def build(args):
        rows, n, heavy = args
        return arrays(dtype, (rows, n), elements=weight_values.map(dtype)).map(
            lambda a: np.where(np.arange(n) < heavy, a * 1000, a).astype(dtype)
        )

    return st.tuples(st.integers(1, 3), st.integers(30, 70), st.integers(0, 8)).flatmap(build)


# ------------------------------------------------------------------------------------------------
# normalize_max_weight


class TestNormalizeMaxWeight:
    def test_spec_vector_capped_below_limit_by_eps(self):
        out = mt.normalize_max_weight(np.array([1, 2, 3, 4, 100], dtype=np.float32), 0.3)
        np.testing.assert_allclose(out, [0.07, 0.14, 0.21, 0.28, 0.29999924], atol=1e-6)
        np.testing.assert_allclose(out, ref_normalize_max_weight(np.array([1, 2, 3, 4, 100], dtype=np.float32), 0.3), rtol=1e-6)
        assert out.max() < 0.3

    def test_spec_vector_one_hot_is_uniform(self):
        out = mt.normalize_max_weight(np.array([0, 0, 1.0, 0, 0]), 0.3)
        np.testing.assert_array_equal(out, np.full(5, 0.2))

    def test_zeros_give_exactly_uniform(self):
        out = mt.normalize_max_weight(torch.zeros(2000), 0.01)
        assert torch.equal(out, torch.full((2000,), 1 / 2000))

    def test_limit_one_is_plain_normalisation(self):
        w = torch.rand(1000)
        assert torch.equal(mt.normalize_max_weight(w, 1.0), w / w.sum())

    @pytest.mark.parametrize("limit", [0.01, 0.02, 0.03])
    def test_random_rows_respect_limit(self, limit):
        w = torch.rand(8, 1000, generator=torch.Generator().manual_seed(0))
        out = mt.normalize_max_weight(w, limit)
        assert out.max() <= limit
        torch.testing.assert_close(out.sum(-1), torch.ones(8))

    @pytest.mark.parametrize("limit", [0.01, 0.02, 0.03])
    def test_continuity(self, limit):
        x = torch.rand(1000, generator=torch.Generator().manual_seed(1)).sort().values
        gap = mt.normalize_max_weight(x, limit * 0.99) - mt.normalize_max_weight(x, limit * 1.01)
        assert gap.abs().sum() < 0.01

    @given(weight_rows(dtype=np.float64), limits)
    def test_rows_equal_reference_float64(self, x, limit):
        out = mt.normalize_max_weight(x, limit)
        expected = np.stack([ref_normalize_max_weight(row, limit) for row in x])
        np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)

    @given(weight_rows(dtype=np.float32), limits)
    def test_rows_equal_reference_float32(self, x, limit):
        out = mt.normalize_max_weight(x, limit)
        assert out.dtype == np.float32
        expected = np.stack([ref_normalize_max_weight(row, limit) for row in x])
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)

    @given(long_rows(np.float32), long_limits)
    def test_long_rows_equal_reference(self, x, limit):
        out = mt.normalize_max_weight(x, limit)
        expected = np.stack([ref_normalize_max_weight(row, limit) for row in x])
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)

    @given(weight_rows(), limits)
    def test_invariants(self, x, limit):
        out = mt.normalize_max_weight(x, limit)
        np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-9)
        assert (out >= 0).all()
        # With fewer than 1/limit nonzero entries the reference may exceed the cap (it can give
        # equal weights to the nonzero entries: see test_reference_can_exceed_the_cap).
        feasible = (x > 0).sum(-1) * limit > 1
        assert (out.max(-1)[feasible] <= limit + 1e-12).all()

    def test_reference_can_exceed_the_cap(self):
        x = np.array([0, 0, 0, 80] + [6.1e-05] * 7)
        out = mt.normalize_max_weight(x, 0.123)
        np.testing.assert_allclose(out, ref_normalize_max_weight(x, 0.123))
        np.testing.assert_allclose(out, [0, 0, 0] + [0.125] * 8)

    @given(weight_rows(max_rows=3), limits)
    def test_batch_equals_loop_and_dim(self, x, limit):
        # Sums may be reduced in another order for another layout; eps-dominated rows amplify
        # that (a cancellation of about 1e-5), hence 1e-9 rather than bit equality.
        batch = mt.normalize_max_weight(torch.from_numpy(x), limit)
        for i, row in enumerate(x):
            torch.testing.assert_close(batch[i], mt.normalize_max_weight(torch.from_numpy(row), limit), rtol=1e-9, atol=1e-15)
        transposed = mt.normalize_max_weight(torch.from_numpy(x.T.copy()), limit, dim=0)
        torch.testing.assert_close(transposed.T, batch, rtol=1e-9, atol=1e-15)

    def test_three_leading_dims_and_half(self):
        x = torch.rand(2, 3, 4, 7, generator=torch.Generator().manual_seed(2))
        out = mt.normalize_max_weight(x, 0.2)
        flat = mt.normalize_max_weight(x.reshape(-1, 7), 0.2)
        assert torch.equal(out.reshape(-1, 7), flat)
        half = mt.normalize_max_weight(x.half(), 0.2)
        assert half.dtype == torch.float16

    def test_empty_rows(self):
        assert mt.normalize_max_weight(torch.zeros(3, 0)).shape == (3, 0)


class TestNormalizeMaxWeightStrict:
    def test_spec_vector_exact_cap(self):
        out = mt.normalize_max_weight(torch.tensor([1.0, 2, 3, 4, 100], dtype=torch.float64), 0.3, strict=True)
        torch.testing.assert_close(out, torch.tensor([0.07, 0.14, 0.21, 0.28, 0.3], dtype=torch.float64))
        assert out.max() == 0.3

    def test_zeros_stay_zero_and_infeasible_rows(self):
        x = torch.tensor([[0.0, 0, 1, 0, 0], [0, 1, 0, 3, 0], [0, 0, 0, 0, 0]])
        out = mt.normalize_max_weight(x, 0.3, strict=True)
        expected = torch.tensor([[0.0, 0, 1, 0, 0], [0, 0.5, 0, 0.5, 0], [0, 0, 0, 0, 0]])
        assert torch.equal(out, expected)

    @given(weight_rows(max_n=16), limits)
    def test_equals_exact_water_filling(self, x, limit):
        out = mt.normalize_max_weight(x, limit, strict=True)
        for row, got in zip(x, out):
            expected = ref_water_fill([Fraction(float(v)) for v in row], Fraction(limit))
            np.testing.assert_allclose(got, [float(v) for v in expected], rtol=1e-9, atol=1e-12)
            assert (got[row == 0] == 0).all()
            if (row > 0).sum() * limit > 1:
                assert got.max() <= limit
                np.testing.assert_allclose(got.sum(), 1.0, rtol=1e-12)

    @given(long_rows(), long_limits)
    def test_long_rows_equal_exact_water_filling(self, x, limit):
        out = mt.normalize_max_weight(x, limit, strict=True)
        for row, got in zip(x, out):
            expected = ref_water_fill([Fraction(float(v)) for v in row], Fraction(limit))
            np.testing.assert_allclose(got, [float(v) for v in expected], rtol=1e-9, atol=1e-12)

    @given(weight_rows(max_rows=3), limits)
    def test_batch_equals_loop(self, x, limit):
        batch = mt.normalize_max_weight(x, limit, strict=True)
        for i, row in enumerate(x):
            np.testing.assert_array_equal(batch[i], mt.normalize_max_weight(row, limit, strict=True))

    def test_continuous_in_limit_near_infeasibility(self):
        x = torch.tensor([0.0, 1, 2, 3, 0], dtype=torch.float64)
        below = mt.normalize_max_weight(x, 1 / 3 - 1e-9, strict=True)
        above = mt.normalize_max_weight(x, 1 / 3 + 1e-9, strict=True)
        torch.testing.assert_close(below, above, atol=1e-7, rtol=0)


class TestNormalizeMaxWeightErrors:
    @pytest.mark.parametrize(
        "x, error, message",
        [
            (torch.tensor([1.0, float("nan")]), ValueRangeError, r"finite.*nan at index \(1,\)"),
            (torch.tensor([1.0, float("inf")]), ValueRangeError, "finite"),
            (torch.tensor([[1.0, 2.0], [1.0, -1.0]]), ValueRangeError, r"non-negative.*index \(1, 1\)"),
            (torch.tensor(1.0), ShapeError, "at least 1"),
            (torch.tensor([True, False]), DTypeError, "bool"),
        ],
    )
    def test_bad_x(self, x, error, message):
        with pytest.raises(error, match=message):
            mt.normalize_max_weight(x, 0.3)

    @pytest.mark.parametrize("limit", [0.0, -0.1, float("nan"), float("inf")])
    def test_bad_limit(self, limit):
        with pytest.raises(ValueRangeError, match="limit"):
            mt.normalize_max_weight(torch.ones(3), limit)

    def test_bad_dim(self):
        with pytest.raises(ShapeError, match="dim"):
            mt.normalize_max_weight(torch.ones(3), dim=1)

    def test_validate_false_skips_value_checks(self):
        mt.normalize_max_weight(torch.tensor([1.0, -1.0, 3.0]), 0.5, validate=False)


@pytest.mark.parametrize("kind", ARRAY_KINDS)
@pytest.mark.parametrize("strict", [False, True])
def test_normalize_max_weight_array_kinds(kind, strict):
    x = np.random.default_rng(0).random((3, 20)).astype(np.float32)
    device = "cuda" if kind == "cupy" else "cpu"
    out = mt.normalize_max_weight(to_kind(x, kind, device), 0.1, strict=strict)
    assert_kind(out, kind, device)
    np.testing.assert_allclose(to_numpy(out), to_numpy(mt.normalize_max_weight(x, 0.1, strict=strict)), rtol=1e-6)


@pytest.mark.cuda
@pytest.mark.parametrize("strict", [False, True])
def test_normalize_max_weight_cuda_matches_cpu(strict):
    x = torch.rand(16, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    cpu = mt.normalize_max_weight(x, 0.02, strict=strict)
    gpu = mt.normalize_max_weight(x.cuda(), 0.02, strict=strict)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------------------------
# convert_weights_and_uids_for_emit


class TestEmit:
    def test_spec_vector_ties_to_even(self):
        uids, vals = mt.convert_weights_and_uids_for_emit(np.arange(4), np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32))
        assert (uids, vals) == ([0, 1, 2, 3], [16384, 32768, 49151, 65535])
        assert all(type(v) is int for v in uids + vals)

    def test_spec_vector_tiny_weight(self):
        uids, weights = torch.arange(3), torch.tensor([1e-6, 0.5, 1.0])
        assert mt.convert_weights_and_uids_for_emit(uids, weights, drop_rounded_zeros=True) == ([1, 2], [32768, 65535])
        assert mt.convert_weights_and_uids_for_emit(uids, weights) == ([0, 1, 2], [1, 32768, 65535])

    def test_zero_weights_dropped_and_zero_sum_is_empty(self):
        assert mt.convert_weights_and_uids_for_emit([5, 6, 7], [0.0, 1.0, 0.0]) == ([6], [65535])
        assert mt.convert_weights_and_uids_for_emit([5, 6], [0.0, 0.0]) == ([], [])

    @given(st.lists(weight_values, min_size=1, max_size=30), st.booleans())
    def test_rows_equal_reference(self, weights, drop):
        uids = list(range(100, 100 + len(weights)))
        got = mt.convert_weights_and_uids_for_emit(np.array(uids), np.array(weights), drop_rounded_zeros=drop)
        assert got == ref_emit(uids, weights, drop)

    @given(weight_rows(max_rows=4, dtype=np.float32), st.booleans())
    def test_batch_equals_loop(self, w, drop):
        uids = np.arange(w.shape[-1])[::-1].copy()
        out = mt.convert_weights_and_uids_for_emit(uids, w, drop_rounded_zeros=drop)
        assert isinstance(out, mt.EmitRows) and isinstance(out.values, np.ndarray)
        for i, row in enumerate(w):
            ref_u, ref_v = ref_emit(uids.tolist(), row.tolist(), drop)
            n = int(out.count[i])
            assert out.uids[i, :n].tolist() == ref_u and out.values[i, :n].tolist() == ref_v
            assert (out.uids[i, n:] == -1).all() and (out.values[i, n:] == 0).all()
            if n:
                assert out.values[i, :n].max() == U16_MAX and out.values[i, :n].min() >= 1

    @pytest.mark.parametrize(
        "uids, weights, error, message",
        [
            ([0, 1], [0.5, -0.1], ValueRangeError, r"non-negative.*index \(1,\)"),
            ([0, -1], [0.5, 0.1], ValueRangeError, r"uids.*-1"),
            ([0, 70000], [0.5, 0.1], ValueRangeError, "uids"),
            ([0, 1, 2], [0.5, 0.1], ShapeError, "same length"),
            (np.array([], dtype=np.int64), [], ShapeError, "empty"),
            ([0.0, 1.0], [0.5, 0.1], DTypeError, "uids.*integers"),
            ([0, 1], [0.5, float("nan")], ValueRangeError, "nan"),
        ],
    )
    def test_errors(self, uids, weights, error, message):
        with pytest.raises(error, match=message):
            mt.convert_weights_and_uids_for_emit(np.array(uids), np.array(weights))

    @pytest.mark.parametrize("kind", ARRAY_KINDS)
    def test_array_kinds(self, kind):
        device = "cuda" if kind == "cupy" else "cpu"
        w = np.array([[0.1, 0.2, 0.3, 0.4], [0, 0, 1e-9, 1]])
        out = mt.convert_weights_and_uids_for_emit(to_kind(np.arange(4), kind, device), to_kind(w, kind, device))
        for part in out:
            assert_kind(part, kind, device)
        np.testing.assert_array_equal(to_numpy(out.values), [[16384, 32768, 49151, 65535], [1, 65535, 0, 0]])
        np.testing.assert_array_equal(to_numpy(out.count), [4, 2])


# ------------------------------------------------------------------------------------------------
# the chain's max-upscale


class TestU16MaxUpscale:
    def test_vectors(self):
        out = mt.u16_max_upscale(torch.tensor([[1, 2, 3], [0, 0, 0], [16384, 32767, 32769], [32768, 1, 65535]]))
        expected = [ref_u16_max_upscale(r) for r in [[1, 2, 3], [0, 0, 0], [16384, 32767, 32769], [32768, 1, 65535]]]
        assert out.tolist() == expected
        assert out[3].tolist() == [32768, 1, 65535]  # the max is already 65535: unchanged

    @given(
        st.integers(1, 4).flatmap(
            lambda rows: st.integers(1, 12).flatmap(
                lambda n: arrays(
                    np.int64,
                    (rows, n),
                    elements=st.one_of(st.integers(0, U16_MAX), st.sampled_from([0, 1, 32767, 32768, 32769, U16_MAX])),
                )
            )
        )
    )
    def test_equals_python_int_transcription(self, values):
        out = mt.u16_max_upscale(values)
        assert isinstance(out, np.ndarray)
        assert out.tolist() == [ref_u16_max_upscale(row.tolist()) for row in values]

    def test_all_maxima_exhaustive_single_value_ratio(self):
        # Every possible row maximum, against a small value and the maximum itself.
        top = torch.arange(1, U16_MAX + 1)
        rows = torch.stack([torch.full_like(top, 1), top // 2, top], dim=-1)
        out = mt.u16_max_upscale(rows)
        assert (out[:, 2] == U16_MAX).all()
        sample = torch.randint(0, U16_MAX, (300,), generator=torch.Generator().manual_seed(4))
        for i in sample.tolist():
            assert out[i].tolist() == ref_u16_max_upscale(rows[i].tolist())

    def test_dim_and_uint16_numpy(self):
        v = np.array([[1, 4], [2, 2]], dtype=np.uint16)
        np.testing.assert_array_equal(mt.u16_max_upscale(v, dim=0), [[32768, 65535], [65535, 32768]])

    @pytest.mark.parametrize(
        "values, error", [(torch.tensor([1, 65536]), ValueRangeError), (torch.tensor([-1, 2]), ValueRangeError), (torch.tensor([0.5]), DTypeError)]
    )
    def test_errors(self, values, error):
        with pytest.raises(error, match="values"):
            mt.u16_max_upscale(values)


# ------------------------------------------------------------------------------------------------
# process_weights


class TestProcessWeights:
    def test_spec_vector_quantile_path(self):
        uids, w = mt.process_weights(np.arange(1, 6), np.array([0.1, 0.2, 0.3, 0, 0]), 5, 2, 0.5)
        np.testing.assert_array_equal(uids, [1, 2, 3])
        np.testing.assert_allclose(w, [1 / 6, 1 / 3, 1 / 2], rtol=1e-6)

    def test_spec_vector_floor_path(self):
        uids, w = mt.process_weights(np.arange(5), np.array([0.1, 0.2, 0, 0, 0]), 5, 4, 0.5)
        np.testing.assert_array_equal(uids, np.arange(5))
        np.testing.assert_allclose(w, [0.49985, 0.4999999, 5e-5, 5e-5, 5e-5], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(w, ref_process_weights(np.arange(5), np.array([0.1, 0.2, 0, 0, 0]), 5, 4, 0.5)[1], rtol=1e-6)

    def test_spec_vector_exclude_quantile(self):
        uids, w = mt.process_weights(np.arange(10), np.arange(1, 11, dtype=np.float32), 10, 5, 1.0, int(0.3 * U16_MAX))
        np.testing.assert_array_equal(uids, np.arange(3, 10))
        np.testing.assert_allclose(w, np.arange(4, 11) / 49, rtol=1e-6)

    def test_no_weights_or_too_few_neurons_is_uniform(self):
        uids, w = mt.process_weights(np.arange(3), np.zeros(3), 4, 1, 0.5)
        np.testing.assert_array_equal(uids, np.arange(4))
        np.testing.assert_allclose(w, np.full(4, 0.25))
        uids, w = mt.process_weights(np.arange(3), np.ones(3), 3, 5, 0.5)
        np.testing.assert_allclose(w, np.full(3, 1 / 3))

    def test_step_two_indexes_by_uid_unless_asked(self):
        uids, w = np.array([3, 0]), np.array([1.0, 0.0])
        _, by_uid = mt.process_weights(uids, w, 4, 3, 1.0)
        _, by_position = mt.process_weights(uids, w, 4, 3, 1.0, index_by_position=True)
        assert by_uid.argmax() == 3 and by_position.argmax() == 0

    @given(
        weight_rows(max_n=12, max_rows=3, dtype=np.float32),
        st.integers(0, 14),
        limits,
        st.sampled_from([0, 1000, int(0.3 * U16_MAX), 40000, U16_MAX]),
        st.integers(0, 4),
    )
    def test_rows_equal_reference(self, w, min_allowed, limit, exclude_quantile, extra):
        n = w.shape[-1]
        num_neurons = n + extra
        uids = np.arange(n)
        out = mt.process_weights(uids, w, num_neurons, min_allowed, limit, exclude_quantile)
        assert isinstance(out, mt.ProcessedWeights)
        for i, row in enumerate(w):
            ref_uids, ref_w = ref_process_weights(uids, row, num_neurons, min_allowed, limit, exclude_quantile)
            count = int(out.count[i])
            np.testing.assert_array_equal(out.uids[i, :count], ref_uids)
            np.testing.assert_allclose(out.weights[i, :count], ref_w, rtol=2e-5, atol=1e-7)
            assert (out.uids[i, count:] == -1).all() and (out.weights[i, count:] == 0).all()
            dense = np.zeros(num_neurons)
            dense[ref_uids] = ref_w
            np.testing.assert_allclose(out.dense[i], dense, rtol=2e-5, atol=1e-7)
            one = mt.process_weights(uids, row, num_neurons, min_allowed, limit, exclude_quantile)
            np.testing.assert_array_equal(one[0], out.uids[i, :count])
            np.testing.assert_array_equal(one[1], out.weights[i, :count])

    @given(long_rows(np.float32), st.integers(0, 40), long_limits, st.sampled_from([0, 20000, 50000]))
    def test_long_rows_equal_reference(self, w, min_allowed, limit, exclude_quantile):
        n = w.shape[-1]
        out = mt.process_weights(np.arange(n), w, n, min_allowed, limit, exclude_quantile)
        for i, row in enumerate(w):
            ref_uids, ref_w = ref_process_weights(np.arange(n), row, n, min_allowed, limit, exclude_quantile)
            count = int(out.count[i])
            np.testing.assert_array_equal(out.uids[i, :count], ref_uids)
            np.testing.assert_allclose(out.weights[i, :count], ref_w, rtol=2e-5, atol=1e-7)

    @pytest.mark.parametrize(
        "kwargs, error, message",
        [
            (dict(uids=[0, 0, 1]), ValueRangeError, "distinct"),
            (dict(uids=[0, 1, -9]), ValueRangeError, "uids"),
            (dict(uids=[0, 1, 9], min_allowed_weights=5, num_neurons=6), IndexError, "num_neurons=6"),
            (dict(weights=[0.1, -0.2, 0.3]), ValueRangeError, "non-negative"),
            (dict(uids=[0, 1]), ShapeError, "same length"),
            (dict(num_neurons=0), ValueRangeError, "num_neurons"),
            (dict(exclude_quantile=70000), ValueRangeError, "exclude_quantile"),
            (dict(max_weight_limit=float("nan")), ValueRangeError, "max_weight_limit"),
            (dict(min_allowed_weights=1.5), DTypeError, "min_allowed_weights"),
        ],
    )
    def test_errors(self, kwargs, error, message):
        args = dict(uids=[0, 1, 2], weights=[0.1, 0.2, 0.3], num_neurons=3, min_allowed_weights=1, max_weight_limit=0.5)
        args.update(kwargs)
        args["uids"], args["weights"] = np.array(args["uids"]), np.array(args["weights"])
        with pytest.raises(error, match=message):
            mt.process_weights(**args)

    @pytest.mark.parametrize("kind", ARRAY_KINDS)
    def test_array_kinds(self, kind):
        device = "cuda" if kind == "cupy" else "cpu"
        w = np.array([[0.1, 0.2, 0.3, 0.0], [0, 0, 0, 0]], dtype=np.float32)
        out = mt.process_weights(to_kind(np.arange(4), kind, device), to_kind(w, kind, device), 4, 2, 0.5)
        for part in out:
            assert_kind(part, kind, device)
        np.testing.assert_allclose(to_numpy(out.dense), [[1 / 6, 1 / 3, 1 / 2, 0], [0.25] * 4], rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# convert_maybe_split_to_u16 and the uid/value converters


class TestMaybeSplit:
    def test_spec_vectors(self):
        assert mt.convert_maybe_split_to_u16([1, 1, 1]) == [21845] * 3
        assert mt.convert_maybe_split_to_u16(np.array([1.0, 2.0])).tolist() == [21845, 43690]

    @given(st.lists(st.one_of(st.integers(0, 1000), st.floats(0, 1e3)), min_size=1, max_size=12))
    def test_equals_reference(self, split):
        assume(sum(float(x) for x in split) > 0)
        assert mt.convert_maybe_split_to_u16(split) == ref_maybe_split(split)

    @given(arrays(np.float64, (3, 5), elements=st.floats(0.01, 10)))
    def test_batch_sums_exactly(self, split):
        out = mt.convert_maybe_split_to_u16(torch.from_numpy(split))
        assert (out.sum(-1) == U16_MAX).all()
        assert out.tolist() == [ref_maybe_split(row.tolist()) for row in split]

    @pytest.mark.parametrize(
        "split, error, message",
        [([], ShapeError, "non-empty"), ([0, 0], ValueRangeError, "positive sum"), ([1, -1], ValueRangeError, "non-negative")],
    )
    def test_errors(self, split, error, message):
        with pytest.raises(error, match=message):
            mt.convert_maybe_split_to_u16(split)


class TestUidValueConverters:
    def test_weight_spec_vectors(self):
        f = mt.convert_weight_uids_and_vals_to_tensor
        np.testing.assert_allclose(f(3, np.array([0, 1, 2]), np.array([15, 5, 80])), [0.15, 0.05, 0.8], rtol=1e-6)
        np.testing.assert_array_equal(f(4, np.array([1, 3]), np.array([50, 50])), [0, 0.5, 0, 0.5])
        np.testing.assert_array_equal(f(3, np.array([], dtype=np.int64), np.array([])), np.zeros(3))
        np.testing.assert_array_equal(f(3, np.array([1]), np.array([0])), np.zeros(3))
        assert f(3, np.array([0]), np.array([1])).dtype == np.float32

    def test_bond_spec_vector(self):
        out = mt.convert_bond_uids_and_vals_to_tensor(5, np.array([1, 3, 4]), np.array([10, 20, 30]))
        np.testing.assert_array_equal(out, [0, 10, 0, 20, 30])
        assert out.dtype == np.int64

    def test_errors(self):
        with pytest.raises(IndexError, match=r"\[0, 3\).*5"):
            mt.convert_weight_uids_and_vals_to_tensor(3, np.array([5]), np.array([1]))
        with pytest.raises(ValueError, match="n"):
            mt.convert_bond_uids_and_vals_to_tensor(-1, np.array([0]), np.array([1]))
        with pytest.raises(ShapeError):
            mt.convert_bond_uids_and_vals_to_tensor(3, np.array([0, 1]), np.array([1]))

    @given(
        st.integers(1, 8).flatmap(
            lambda n: st.tuples(
                st.just(n),
                st.lists(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, U16_MAX)), max_size=10), min_size=1, max_size=4),
            )
        )
    )
    def test_padded_batch_equals_reference_loop(self, case):
        n, rows = case
        width = max(len(r) for r in rows)
        uids = np.full((len(rows), width), -1)
        vals = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            for j, (u, v) in enumerate(r):
                uids[i, j], vals[i, j] = u, v
        count = np.array([len(r) for r in rows])
        weights = mt.convert_weight_uids_and_vals_to_tensor(n, uids, vals, count=count)
        bonds = mt.convert_bond_uids_and_vals_to_tensor(n, uids, vals, count=count)
        for i, r in enumerate(rows):
            expected = np.zeros(n, dtype=np.float32)
            expected_bonds = np.zeros(n, dtype=np.int64)
            for u, v in r:  # the reference assigns in order: the last write wins
                expected[u] = float(v)
                expected_bonds[u] = int(v)
            if expected.sum() > 0:
                expected /= expected.sum()
            np.testing.assert_allclose(weights[i], expected, rtol=1e-6)
            np.testing.assert_array_equal(bonds[i], expected_bonds)


# ------------------------------------------------------------------------------------------------
# scores_to_weights


def ref_scores_to_weights(scores: list[float], k: int | None, limit: float, min_allowed: int) -> dict[int, int]:
    """The documented pipeline for one row, in Fractions: {uid: u16 value}."""
    n = len(scores)
    size = n if k is None else min(k, n)
    required = min(min_allowed, n)
    order = sorted(range(n), key=lambda i: (-scores[i], i))[:size]
    positive = [i for i in order if scores[i] > 0]
    if not positive:
        return {}
    submit = order[: max(len(positive), required)]
    chosen = [Fraction(scores[i]) for i in submit]
    if limit < 1:
        cap = 1 / (1 / Fraction(limit) + Fraction(len(submit) + 2, 2 * U16_MAX))
        weights = ref_water_fill(chosen, cap)
    else:
        weights = [c / sum(chosen) for c in chosen]
    top = max(weights)
    values = {}
    for uid, w in zip(submit, weights):
        values[uid] = max(1, round(w / top * U16_MAX))
    return values


class TestScoresToWeights:
    @given(
        weight_rows(max_n=20, max_rows=3),
        st.one_of(st.none(), st.integers(1, 25)),
        st.sampled_from([1.0, 0.5, 0.2, 0.1, 3000 / U16_MAX, 6553 / U16_MAX]),
        st.integers(0, 8),
    )
    def test_rows_equal_reference_and_pass_chain_checks(self, scores, k, limit, min_allowed):
        n = scores.shape[-1]
        assume(k is None or min(k, n) >= min(min_allowed, n))
        out = mt.scores_to_weights(scores, k=k, max_weight_limit=limit, min_allowed_weights=min_allowed)
        assert out.uids.shape == (scores.shape[0], n if k is None else min(k, n))
        for i, row in enumerate(scores):
            count = int(out.count[i])
            uids, values = out.uids[i, :count].tolist(), out.values[i, :count].tolist()
            expected = ref_scores_to_weights(row.tolist(), k, limit, min_allowed)
            assert uids == sorted(expected)
            assert all(abs(v - expected[u]) <= 1 for u, v in zip(uids, values))  # float64 vs exact ties
            assert (out.uids[i, count:] == -1).all() and (out.values[i, count:] == 0).all()
            if count:
                assert max(values) == U16_MAX and min(values) >= 1
                assert count >= min(min_allowed, n)
                positives = int((np.sort(row)[::-1][: (k or n)] > 0).sum())
                cap = 1 / (1 / limit + (count + 2) / (2 * U16_MAX))
                if positives * cap > 1:  # the cap can be met: the chain's check must pass
                    assert chain_max_weight_ok(values, round(limit * U16_MAX))
            one = mt.scores_to_weights(row, k=k, max_weight_limit=limit, min_allowed_weights=min_allowed)
            np.testing.assert_array_equal(one.uids, out.uids[i])
            np.testing.assert_array_equal(one.values, out.values[i])

    @given(long_rows(), st.one_of(st.none(), st.integers(20, 80)), long_limits, st.integers(0, 20))
    def test_long_rows_equal_reference(self, scores, k, limit, min_allowed):
        out = mt.scores_to_weights(scores, k=k, max_weight_limit=limit, min_allowed_weights=min_allowed)
        for i, row in enumerate(scores):
            count = int(out.count[i])
            expected = ref_scores_to_weights(row.tolist(), k, limit, min_allowed)
            assert out.uids[i, :count].tolist() == sorted(expected)
            assert all(abs(v - expected[u]) <= 1 for u, v in zip(out.uids[i, :count].tolist(), out.values[i, :count].tolist()))

    @pytest.mark.parametrize("limit_u16", [655, 3277, 6553, 20000])
    def test_large_rows_pass_the_chains_max_weight_check(self, limit_u16):
        gen = torch.Generator().manual_seed(limit_u16)
        scores = torch.rand(32, 256, generator=gen, dtype=torch.float64) ** 8  # heavy top end
        scores[:16, 128:] = 0
        out = mt.scores_to_weights(scores, max_weight_limit=limit_u16 / U16_MAX, min_allowed_weights=64)
        for i in range(32):
            values = out.values[i, : int(out.count[i])].tolist()
            assert len(values) >= 64 and chain_max_weight_ok(values, limit_u16)

    def test_example_and_ties_to_lower_uid(self):
        out = mt.scores_to_weights(torch.tensor([0.5, 0.5, 0.5, 0.0]), k=2)
        assert out.uids.tolist() == [0, 1] and out.values.tolist() == [65535, 65535] and int(out.count) == 2

    def test_min_allowed_fillers_get_value_one(self):
        out = mt.scores_to_weights(torch.tensor([0.0, 0.9, 0.0, 0.0, 0.0]), min_allowed_weights=3)
        assert out.uids.tolist()[:3] == [0, 1, 2] and out.values.tolist()[:3] == [1, 65535, 1]

    def test_ema(self):
        first = mt.scores_to_weights(np.array([[1.0, 0.0]]), ema_alpha=0.5)
        np.testing.assert_allclose(first.ema, [[0.5, 0.0]])
        second = mt.scores_to_weights(np.array([[0.0, 1.0]]), ema_alpha=0.5, previous=first.ema)
        np.testing.assert_allclose(second.ema, [[0.25, 0.5]])
        assert second.values[0, :2].tolist() == [32768, 65535]
        assert mt.scores_to_weights(np.ones(2)).ema is None

    @pytest.mark.parametrize(
        "kwargs, error, message",
        [
            (dict(scores=[0.1, float("nan")]), ValueRangeError, r"nan at index \(1,\)"),
            (dict(scores=[0.1, -0.1]), ValueRangeError, "non-negative"),
            (dict(k=0), ValueRangeError, "k"),
            (dict(k=1, min_allowed_weights=2), ValueRangeError, "min_allowed_weights"),
            (dict(ema_alpha=1.5), ValueRangeError, "ema_alpha"),
            (dict(previous=[0.1, 0.1]), ValueRangeError, "ema_alpha"),
            (dict(ema_alpha=0.5, previous=[0.1]), ShapeError, "previous"),
            (dict(scores=[]), ShapeError, "empty"),
            (dict(max_weight_limit=0), ValueRangeError, "max_weight_limit"),
        ],
    )
    def test_errors(self, kwargs, error, message):
        scores = np.array(kwargs.pop("scores", [0.1, 0.2]))
        if "previous" in kwargs:
            kwargs["previous"] = np.array(kwargs["previous"])
        with pytest.raises(error, match=message):
            mt.scores_to_weights(scores, **kwargs)

    @pytest.mark.parametrize("kind", ARRAY_KINDS)
    def test_array_kinds(self, kind):
        device = "cuda" if kind == "cupy" else "cpu"
        scores = np.array([[0.1, 0.7, 0.0, 0.2], [0.3, 0.0, 0.0, 0.0]], dtype=np.float32)
        out = mt.scores_to_weights(to_kind(scores, kind, device), k=3, ema_alpha=0.9)
        for part in out:
            assert_kind(part, kind, device)
        np.testing.assert_array_equal(to_numpy(out.uids), [[0, 1, 3], [0, -1, -1]])
        np.testing.assert_array_equal(to_numpy(out.values), [[9362, 65535, 18724], [65535, 0, 0]])


@pytest.mark.parametrize("device", DEVICES)
def test_integer_outputs_identical_on_every_device(device):
    gen = torch.Generator().manual_seed(5)
    scores = torch.rand(8, 300, generator=gen, dtype=torch.float64) ** 6
    scores[:4, 150:] = 0
    values = torch.randint(0, U16_MAX + 1, (8, 300), generator=gen)
    cpu_submit = mt.scores_to_weights(scores, k=200, max_weight_limit=0.05, min_allowed_weights=10)
    dev_submit = mt.scores_to_weights(scores.to(device), k=200, max_weight_limit=0.05, min_allowed_weights=10)
    for cpu_part, dev_part in zip(cpu_submit[:3], dev_submit[:3]):
        assert dev_part.device.type == device
        assert torch.equal(dev_part.cpu(), cpu_part)
    assert torch.equal(mt.u16_max_upscale(values.to(device)).cpu(), mt.u16_max_upscale(values))
    cpu_emit = mt.convert_weights_and_uids_for_emit(torch.arange(300), scores)
    dev_emit = mt.convert_weights_and_uids_for_emit(torch.arange(300, device=device), scores.to(device))
    for cpu_part, dev_part in zip(cpu_emit, dev_emit):
        assert torch.equal(dev_part.cpu(), cpu_part)
