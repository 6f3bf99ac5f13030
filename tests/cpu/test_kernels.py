"""The numpy CPU kernels against their torch paths, forced with ``cpu_engine("numpy" | "torch")``.

The weighted median and the stack median kernels are compared in ``tests/test_consensus.py``
(``engine(...)``) and the entropy's ``log2`` in ``tests/weights/test_weights.py``; here the
others: huge-page result buffers, the min/max of the finite-and-non-negative check, the engine
switch itself.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import mdt_tensor as mt
from mdt_tensor._cpu import cpu_engine, current_cpu_engine, use_numpy_kernel
from mdt_tensor._cpu.alloc import HUGE_PAGE_BYTES
from mdt_tensor._validation import check_finite_non_negative
from mdt_tensor.weights._common import empty

ENGINES = ("numpy", "torch")


def test_numpy_avx512_follows_numpy_dispatch() -> None:
    # with numpy's AVX-512 levels switched off (every name this numpy knows) the check says no
    from mdt_tensor._cpu.engine import _numpy_cpu_features, numpy_avx512

    features = _numpy_cpu_features()
    assert numpy_avx512() == bool(features.get("X86_V4", features.get("AVX512_SKX", False)))
    if not numpy_avx512():
        pytest.skip("numpy runs no AVX-512 kernels here")
    names = [n for n in ("X86_V4", "AVX512_SKX", "AVX512_CLX", "AVX512_CNL", "AVX512_ICL", "AVX512_SPR") if features.get(n)]
    code = "from mdt_tensor._cpu.engine import numpy_avx512; print(numpy_avx512())"
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(names))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert result.stdout.strip() == "False"


def test_engine_switch_is_scoped_and_checked() -> None:
    cpu = torch.zeros(1)
    assert current_cpu_engine() == "auto"
    assert use_numpy_kernel(cpu) and not use_numpy_kernel(cpu, wins=False)
    with cpu_engine("numpy"):
        assert use_numpy_kernel(cpu, wins=False)
        with cpu_engine("torch"):
            assert not use_numpy_kernel(cpu)
        assert current_cpu_engine() == "numpy"
    assert current_cpu_engine() == "auto"
    with pytest.raises(mt.ValueRangeError, match="engine"):
        with cpu_engine("cuda"):  # type: ignore[arg-type]
            pass
    assert not use_numpy_kernel(torch.zeros(1, device="meta"))


def test_engine_is_per_thread() -> None:
    seen: list[str] = []
    with cpu_engine("torch"):
        thread = threading.Thread(target=lambda: seen.append(current_cpu_engine()))
        thread.start()
        thread.join()
    assert seen == ["auto"]


def _from_numpy(buffer: torch.Tensor) -> bool:
    """Whether numpy allocated ``buffer`` (torch cannot resize the storage of such a tensor)."""
    try:
        buffer.resize_(buffer.numel() + 1)
    except RuntimeError:
        return True
    return False


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64, torch.bfloat16])
def test_result_buffers_come_from_numpy_only_where_it_applies(dtype: torch.dtype) -> None:
    like = torch.zeros(1)
    large, small = (HUGE_PAGE_BYTES // dtype.itemsize,), (3,)
    numpy_dtype = dtype != torch.bfloat16
    for engine, size, expected in [
        ("auto", large, numpy_dtype), ("auto", small, False),
        ("numpy", large, numpy_dtype), ("numpy", small, numpy_dtype),
        ("torch", large, False), ("torch", small, False),
    ]:
        with cpu_engine(engine):  # type: ignore[arg-type]
            buffer = empty(size, dtype, like)
        assert buffer.shape == size and buffer.dtype == dtype and buffer.is_contiguous()
        assert _from_numpy(buffer) == expected, (engine, size)


@pytest.mark.parametrize("shape", [(3, 7), (400, 1400)])  # the second: over HUGE_PAGE_BYTES in float32
def test_weight_ops_agree_across_engines(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(5)
    w = torch.from_numpy(rng.random(shape).astype(np.float32) - 0.1)
    results = {}
    for name in ENGINES:
        with cpu_engine(name):
            results[name] = [
                mt.normalize_weights(w.abs()),
                mt.clip_weights(w, 0.0, 0.5),
                mt.apply_weight_decay(w.abs(), 0.5, 2, 0.01),
                mt.smooth_weights(w, 5, "exponential"),
                mt.top_k_weights(w, 3),
                mt.compute_weight_entropy(w),
            ]
    for ours, reference in zip(results["numpy"], results["torch"], strict=True):
        torch.testing.assert_close(ours, reference, rtol=4 * torch.finfo(torch.float32).eps, atol=0)


@pytest.mark.parametrize("name", ENGINES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64, torch.int64, torch.bfloat16])
def test_finite_non_negative_check_agrees_across_engines(name: str, dtype: torch.dtype) -> None:
    good = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).to(dtype)
    with cpu_engine(name):
        check_finite_non_negative(good, "x")
        check_finite_non_negative(good[:0], "x")
        with pytest.raises(mt.ValueRangeError, match=r"`x` to be non-negative, but found -1.0 at index \(1, 0\)"):
            check_finite_non_negative(torch.tensor([[0.0, 1.0], [-1.0, 3.0]]).to(dtype), "x")
        if dtype.is_floating_point:
            for bad, shown in ((math.nan, "nan"), (math.inf, "inf")):
                values = torch.tensor([[0.0, -1.0], [bad, 3.0]]).to(dtype)
                with pytest.raises(mt.ValueRangeError, match=rf"`x` to be finite, but found {shown} at index \(1, 0\)"):
                    check_finite_non_negative(values, "x")
