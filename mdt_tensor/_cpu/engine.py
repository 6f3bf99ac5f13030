"""The explicit switch between the numpy CPU kernels and the plain torch path.

Every CPU kernel in this package has a torch path that computes the same result; the kernels
run only where a benchmark shows they win (see ``benchmarks/README.md``), on this CPU's
instruction set where that decides it (:func:`numpy_avx512`). The choice is a context variable,
so it is per thread and per asyncio task, and is set with :func:`cpu_engine`:

    >>> import torch, mdt_tensor as mt
    >>> from mdt_tensor._cpu import cpu_engine
    >>> with cpu_engine("torch"):             # the reference path, e.g. to compare against
    ...     mt.weighted_median(torch.tensor([[1.0], [3.0]]), torch.tensor([1.0, 2.0])).tolist()
    [3.0]
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
from collections.abc import Iterator
from typing import Literal

from torch import Tensor

from .._validation import check_choice

__all__ = ["CpuEngine", "cpu_engine", "current_cpu_engine", "numpy_avx512", "use_numpy_kernel"]

CpuEngine = Literal["auto", "numpy", "torch"]
_ENGINES = ("auto", "numpy", "torch")

_engine: contextvars.ContextVar[str] = contextvars.ContextVar("mdt_tensor_cpu_engine", default="auto")


@contextlib.contextmanager
def cpu_engine(engine: CpuEngine) -> Iterator[None]:
    """Within the block, CPU tensors go through ``engine``.

    Args:
        engine: ``"auto"`` (default: the numpy kernel where it is known to win), ``"numpy"``
            (the kernel wherever it applies) or ``"torch"`` (the reference torch path).
    """
    token = _engine.set(check_choice(engine, "engine", _ENGINES))
    try:
        yield
    finally:
        _engine.reset(token)


def current_cpu_engine() -> str:
    """The engine in force: ``"auto"``, ``"numpy"`` or ``"torch"``."""
    return _engine.get()


def use_numpy_kernel(tensor: Tensor, wins: bool = True) -> bool:
    """Whether a kernel may run on ``tensor``: it is on the CPU and the engine allows it.

    Args:
        wins: the kernel's own verdict for this input under ``"auto"`` (shape, dtype, the CPU's
            instruction set); ``"numpy"`` forces the kernel wherever it applies.
    """
    if tensor.device.type != "cpu":
        return False
    engine = _engine.get()
    return engine == "numpy" or (engine == "auto" and wins)


@functools.cache
def numpy_avx512() -> bool:
    """Whether numpy runs its AVX-512 kernels here (the CPU has them and ``NPY_DISABLE_CPU_FEATURES`` left them on).

    numpy 2.4 names the level ``X86_V4``, earlier releases ``AVX512_SKX``. Some numpy kernels
    (float ``log2``) are SIMD only at this level and lose to torch's below it.
    """
    features = _numpy_cpu_features()
    return bool(features.get("X86_V4", features.get("AVX512_SKX", False)))


def _numpy_cpu_features() -> dict[str, bool]:
    """numpy's table of the CPU features its dispatch uses (empty where it cannot be read)."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # numpy >= 2, 1.x
        try:
            return dict(importlib.import_module(module).__cpu_features__)
        except (ImportError, AttributeError):
            continue
    return {}
