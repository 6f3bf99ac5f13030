"""normalize_max_weight: the SDK's algorithm and exact water-filling, against slow references."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ShapeError, ValueRangeError

from tests.helpers import ARRAY_KINDS, assert_kind, to_kind, to_numpy
from .references import ref_normalize_max_weight, ref_water_fill
from .strategies import limits, long_limits, long_rows, weight_rows


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
