"""Field-by-field comparison of distributed results with single-process ones."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch


def assert_same(got: Any, want: Any, exact: bool, what: str = "") -> None:
    """Every field of two result dataclasses: equal bits (exact), or float-close (fast: u16 within 1)."""
    assert got is not None and want is not None, what
    for field in dataclasses.fields(want):
        a, b = getattr(got, field.name), getattr(want, field.name)
        if b is None:
            assert a is None, f"{what}.{field.name}"
            continue
        a, b = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a), torch.as_tensor(b)
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what}.{field.name}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        if exact:
            assert torch.equal(a, b), f"{what}.{field.name} differs"
        elif a.is_floating_point():
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), f"{what}.{field.name}: {(a - b).abs().max()}"
        else:
            assert int((a.to(torch.int64) - b.to(torch.int64)).abs().max()) <= 1, f"{what}.{field.name}"
