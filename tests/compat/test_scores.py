"""scores_to_weights against the documented pipeline in Fractions and the chain's checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor.errors import ShapeError, ValueRangeError

from tests.helpers import ARRAY_KINDS, assert_kind, to_kind, to_numpy
from .references import U16_MAX, chain_max_weight_ok, ref_scores_to_weights
from .strategies import long_limits, long_rows, weight_rows


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
