"""The chain's (uid, value) rows to dense tensors, against the reference's assignments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor.errors import ShapeError

from .references import U16_MAX


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
