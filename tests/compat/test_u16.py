"""The u16 codecs (emit conversion, the chain's max-upscale, the split) against slow references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ShapeError, ValueRangeError

from tests.helpers import ARRAY_KINDS, assert_kind, to_kind, to_numpy
from .references import U16_MAX, ref_emit, ref_maybe_split, ref_u16_max_upscale
from .strategies import weight_rows, weight_values


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
