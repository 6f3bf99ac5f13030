"""Helpers for tests: devices, array kinds, conversions for checking "same type out as in"."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

#: Parametrise a test over these; the CUDA case is skipped (not failed) without a GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

#: Array kinds a public function must accept; CuPy is marked ``cuda``.
ARRAY_KINDS = ["numpy", "torch", pytest.param("cupy", marks=pytest.mark.cuda)]


def to_kind(array: np.ndarray, kind: str, device: str = "cpu") -> Any:
    """``array`` as a numpy array, a torch tensor on ``device``, or a CuPy array."""
    if kind == "numpy":
        return np.array(array)
    if kind == "torch":
        return torch.from_numpy(np.array(array)).to(device)
    if kind == "cupy":
        cupy = pytest.importorskip("cupy")
        return cupy.asarray(array)
    raise ValueError(kind)


def to_numpy(x: Any) -> np.ndarray:
    """Any result (torch on any device, numpy, CuPy) as a numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def assert_kind(result: Any, kind: str, device: str = "cpu") -> None:
    """Assert that ``result`` is of the caller's array kind and on the caller's device."""
    if kind == "numpy":
        assert isinstance(result, np.ndarray), type(result)
    elif kind == "torch":
        assert isinstance(result, torch.Tensor), type(result)
        assert result.device.type == torch.device(device).type, result.device
    elif kind == "cupy":
        assert type(result).__module__.startswith("cupy"), type(result)
    else:
        raise ValueError(kind)
