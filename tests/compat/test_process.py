"""process_weights against the SDK's numpy branch, one row at a time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ShapeError, ValueRangeError

from tests.helpers import ARRAY_KINDS, assert_kind, to_kind, to_numpy
from .references import U16_MAX, ref_process_weights
from .strategies import limits, long_limits, long_rows, weight_rows


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
