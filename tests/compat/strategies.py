"""Hypothesis strategies for the compat tests: weight rows, limits, and long rows for the top-k path."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


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
