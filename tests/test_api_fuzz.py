"""API fuzz test (issue 10): every public function that computes on arrays or scalars, driven by
hypothesis with hostile inputs (``tests/fuzz_strategies.py``).

For every call: either an :class:`mdt_tensor.MdtError` is raised, or the result meets the
function's stated postconditions (shape, dtype, finite where promised, rows summing to 1, parts
summing exactly to the total, the median one of its column's values, ...). Any other exception
fails the test; pytest-timeout catches a hang. The list of functions comes from
``mdt_tensor.__all__``: a public callable without a driver here and not in ``SKIPPED`` fails
``test_every_public_callable_is_fuzzed``.

Default profile: a few dozen examples per function (about a minute in all); run
``HYPOTHESIS_PROFILE=thorough`` for ten times more, with random seeds.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mdt_tensor as mt
from tests.fuzz_strategies import (
    FLOAT_DTYPES,
    INT_DTYPES,
    Drawn,
    arrays,
    dims,
    matrices,
    scalars,
    strings,
)

# ------------------------------------------------------------------------------------------------
# what is not driven here, and why

#: Public callables that are not fuzzed here, each with its reason.
SKIPPED: dict[str, str] = {
    **{name: "exception type: raised by the functions, not a computation" for name in mt.errors.__all__},
    "UidRangeError": "exception type: raised by the uid converters, not a computation",
    "WeightReport": "result container of validate_weight_matrix (checked through it)",
    "EmitRows": "result container (NamedTuple) of convert_weights_and_uids_for_emit",
    "ProcessedWeights": "result container (NamedTuple) of process_weights",
    "ValidatorWeights": "result container (NamedTuple) of scores_to_weights",
    "Apportionment": "result container (NamedTuple) of apportion",
    "EmissionSplit": "result container (NamedTuple) of distribute_emission",
    "Rounding": "a typing.Literal alias of the rounding names, not a function",
}
#: Lazily loaded names (``mt.aio``, ``mt.memory``, ``mt.feed``): async network code, process
#: memory and the weight feeder, covered by the chaos test and their own test suites.
LAZY_REASON = "async / network / process-memory layer: covered by the chaos test and tests/aio, tests/feed"

# ------------------------------------------------------------------------------------------------
# helpers for the checkers


def torch_of(x: Any) -> torch.Tensor:
    """A result as a torch tensor (numpy and lists converted, torch as is)."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(np.asarray(x))


def is_finite(d: Drawn) -> bool:
    t = d.tensor
    if t.dtype.is_complex:
        return False
    return bool(torch.isfinite(t.to(torch.float64)).all()) if t.dtype.is_floating_point else True


def f64(d: Drawn | torch.Tensor) -> torch.Tensor:
    t = d.tensor if isinstance(d, Drawn) else d
    return t.to(torch.float64)


def float_result_dtype(d: Drawn) -> torch.dtype:
    """The dtype a float weight function returns for input ``d`` (as the package documents)."""
    dtype = d.tensor.dtype
    if d.kind == "list":
        return torch.float64 if dtype.is_floating_point else torch.float32
    return dtype if dtype.is_floating_point else torch.float32


def assert_rows_sum_to_one_or_zero(out: torch.Tensor, dim: int = -1, tol: float = 1e-3) -> None:
    sums = out.to(torch.float64).sum(dim)
    ok = ((sums - 1).abs() <= tol) | (sums == 0)
    assert bool(ok.all()), f"row sums {sums}"


def norm_dim(dim: Any, ndim: int) -> int:
    return dim % ndim


# ------------------------------------------------------------------------------------------------
# the table: name -> (draw the call, check the result)


@dataclass
class Entry:
    draw: Callable[[Any], tuple[tuple, dict]]
    check: Callable[..., None]
    #: Set for functions whose known failures are fixed elsewhere (the epoch split).
    xfail: str | None = None


def _no_check(result: Any, *args: Any, **kwargs: Any) -> None:
    return None


DRIVERS: dict[str, Entry] = {}


def driver(name: str, xfail: str | None = None) -> Callable:
    def register(pair: tuple[Callable, Callable]) -> tuple[Callable, Callable]:
        DRIVERS[name] = Entry(pair[0], pair[1], xfail)
        return pair

    return register


def _entry(name: str, draw: Callable, check: Callable = _no_check, xfail: str | None = None) -> None:
    DRIVERS[name] = Entry(draw, check, xfail)


# --- weights -------------------------------------------------------------------------------------


def _draw_normalize(data: Any) -> tuple[tuple, dict]:
    w = data.draw(arrays(), label="weights")
    kwargs: dict[str, Any] = {"method": data.draw(strings("sum", "max", "minmax", "zscore")), "dim": data.draw(dims())}
    if data.draw(st.booleans()):
        kwargs["validate"] = data.draw(st.sampled_from([True, False]))
    if data.draw(st.integers(0, 3)) == 0:
        kwargs["out"] = data.draw(st.sampled_from(["self", "fresh", "bad"]))
        if kwargs["out"] == "self":
            kwargs["out"] = w.value
        elif kwargs["out"] == "fresh":
            kwargs["out"] = data.draw(arrays(dtypes=FLOAT_DTYPES, shape=tuple(np.shape(w.tensor)), kinds=("torch", "numpy")), label="out").value
        else:
            kwargs["out"] = [0.0]
    return (w,), kwargs


def _check_normalize(out: Any, w: Drawn, method: str, dim: int, validate: bool = True, out_arg: Any = None, **_: Any) -> None:
    o = torch_of(out)
    assert tuple(o.shape) == tuple(w.tensor.shape)
    if not is_finite(w) and validate:
        raise AssertionError("non-finite weights were accepted")
    if not is_finite(w):
        return
    assert bool(torch.isfinite(o.to(torch.float64)).all()), "finite input gave a non-finite result"
    x = f64(o)
    if o.numel() == 0:
        return
    d = norm_dim(dim, o.ndim)
    tol = 2e-2 if w.tensor.dtype in (torch.float16, torch.bfloat16) else 1e-4
    if method == "sum" and bool((f64(w) >= 0).all()):
        assert_rows_sum_to_one_or_zero(x, d, tol)
    elif method == "max":
        assert bool((x.abs() <= 1 + tol).all())
    elif method == "minmax":
        assert bool(((x >= 0) & (x <= 1)).all())


def _call_normalize(w: Drawn, **kwargs: Any) -> Any:
    return mt.normalize_weights(w.value, **kwargs)


_entry("normalize_weights", _draw_normalize, _check_normalize)


def _draw_clip(data: Any) -> tuple[tuple, dict]:
    w = data.draw(arrays(), label="weights")
    return (w, data.draw(scalars(0.0, -1.0)), data.draw(scalars(1.0, 0.5, math.inf))), {"validate": data.draw(st.booleans())}


def _check_clip(out: Any, w: Drawn, low: Any, high: Any, validate: bool) -> None:
    o = f64(torch_of(out))
    assert tuple(o.shape) == tuple(w.tensor.shape)
    if is_finite(w):
        assert bool(((o >= float(low) - 1e-6) & (o <= float(high) + 1e-6)).all())


_entry("clip_weights", _draw_clip, _check_clip)


def _draw_decay(data: Any) -> tuple[tuple, dict]:
    w = data.draw(arrays(), label="weights")
    steps: Any = data.draw(scalars(1, 2, 0.5))
    if data.draw(st.integers(0, 3)) == 0:
        steps = data.draw(arrays(max_ndim=2), label="steps").value
    return (w, data.draw(scalars(0.5, 0.9, 1.0)), steps, data.draw(scalars(0.0, 0.01))), {"dim": data.draw(dims())}


def _check_decay(out: Any, w: Drawn, factor: Any, steps: Any, floor: Any, dim: Any) -> None:
    o = f64(torch_of(out))
    assert tuple(o.shape) == tuple(w.tensor.shape)
    assert bool(torch.isfinite(o).all()) and bool((o >= 0).all())
    assert bool((o <= f64(w).clamp(min=float(floor)) + 1e-6).all()), "decay increased a weight"


_entry("apply_weight_decay", _draw_decay, _check_decay)


def _draw_smooth(data: Any) -> tuple[tuple, dict]:
    w = data.draw(arrays(), label="weights")
    return (w, data.draw(scalars(1, 2, 3, 5, 35)), data.draw(strings("moving_average", "exponential"))), {"dim": data.draw(dims())}


def _check_smooth(out: Any, w: Drawn, window: Any, method: Any, dim: Any) -> None:
    o = torch_of(out)
    assert tuple(o.shape) == tuple(w.tensor.shape)
    if is_finite(w) and o.numel():
        x, d = f64(o), norm_dim(dim, o.ndim)
        assert bool(torch.isfinite(x).all()), "finite input gave a non-finite result"
        low, high = f64(w).amin(d, keepdim=True), f64(w).amax(d, keepdim=True)
        slack = 1e-2 * torch.maximum(low.abs(), high.abs()) + 1e-30
        assert bool(((x >= low - slack) & (x <= high + slack)).all()), "a smoothed value left its row's range"


_entry("smooth_weights", _draw_smooth, _check_smooth)


def _draw_top_k(data: Any) -> tuple[tuple, dict]:
    w = data.draw(arrays(), label="weights")
    return (w, data.draw(scalars(0, 1, 2, 3))), {"dim": data.draw(dims()), "other_value": data.draw(scalars(0.0, -math.inf))}


def _check_top_k(out: Any, w: Drawn, k: Any, dim: Any, other_value: Any) -> None:
    o = f64(torch_of(out))
    assert tuple(o.shape) == tuple(w.tensor.shape)
    if o.numel() == 0 or o.ndim == 0:
        return
    same = torch_of(out).to(torch.float64) == f64(w.tensor.to(torch_of(out).dtype))
    kept = same & ~(o == float(other_value))
    assert bool((kept.sum(norm_dim(dim, o.ndim)) <= int(k)).all()), "more than k weights kept"


_entry("top_k_weights", _draw_top_k, _check_top_k)


def _draw_entropy(data: Any) -> tuple[tuple, dict]:
    return (data.draw(arrays(), label="weights"),), {"dim": data.draw(dims()), "validate": data.draw(st.booleans())}


def _check_entropy(out: Any, w: Drawn, dim: Any, validate: bool) -> None:
    o = f64(torch_of(out))
    d = norm_dim(dim, w.tensor.ndim)
    assert tuple(o.shape) == tuple(w.tensor.shape[:d] + w.tensor.shape[d + 1 :])
    if is_finite(w):
        n = w.tensor.shape[d]
        assert bool(torch.isfinite(o).all()), "finite input gave a non-finite entropy"
        assert bool(((o >= 0) & (o <= math.log(max(n, 1)) + 1e-3)).all())


_entry("compute_weight_entropy", _draw_entropy, _check_entropy)


def _draw_validate(data: Any) -> tuple[tuple, dict]:
    w = data.draw(arrays(), label="weights")
    return (w, data.draw(st.one_of(st.none(), scalars(2, 3)))), {"dim": data.draw(dims()), "tolerance": data.draw(scalars(1e-6))}


def _check_validate(report: Any, w: Drawn, num_neurons: Any, dim: Any, tolerance: Any) -> None:
    assert isinstance(report, mt.WeightReport)
    ok, message = report
    assert ok == bool(report) and (message is None) == ok
    if not is_finite(w):
        assert not report.ok and report.kind in ("nan", "inf", "empty")


def _check_check_weights(result: Any, *args: Any, **kwargs: Any) -> None:
    assert result is None


_entry("validate_weight_matrix", _draw_validate, _check_validate)
_entry("check_weights", _draw_validate, _check_check_weights)


def _draw_sparse_to_dense(data: Any) -> tuple[tuple, dict]:
    choice = data.draw(st.integers(0, 2))
    if choice == 0:
        index = st.sampled_from([0, 1, -1, 2, 10**30, 1.5, True, "0", None, math.nan, np.int64(1)])  # hashable
        sparse: Any = {(data.draw(index), data.draw(index)): data.draw(scalars(0.5))}
    elif choice == 1:
        sparse = (data.draw(arrays(max_ndim=2), label="indices").value, data.draw(arrays(max_ndim=1), label="values").value)
    else:
        sparse = data.draw(arrays(), label="dense").value
    return (sparse, data.draw(st.one_of(st.none(), scalars(2, 3)))), {"default_weight": data.draw(scalars(0.0))}


def _check_sparse_to_dense(out: Any, sparse: Any, num_neurons: Any, default_weight: Any) -> None:
    o = torch_of(out)
    assert o.ndim >= 1
    if num_neurons is not None:
        assert o.shape[-1] == num_neurons


_entry("sparse_to_dense_weights", _draw_sparse_to_dense, _check_sparse_to_dense)


def _draw_dense_to_sparse(data: Any) -> tuple[tuple, dict]:
    w = data.draw(arrays(), label="weights")
    return (w, data.draw(scalars(0.0, 0.5))), {"format": data.draw(strings("coo", "torch", "dict"))}


def _check_dense_to_sparse(out: Any, w: Drawn, threshold: Any, format: Any) -> None:
    if format == "dict":
        assert all(v > float(threshold) for v in out.values())
    elif format == "torch":
        assert tuple(out.shape) == tuple(w.tensor.shape)
    else:
        indices, values = (torch_of(x) for x in out)
        assert indices.shape == (w.tensor.ndim, values.shape[0])
        assert bool((f64(values) > float(threshold)).all())


_entry("dense_to_sparse_weights", _draw_dense_to_sparse, _check_dense_to_sparse)

# --- consensus -------------------------------------------------------------------------------


def _draw_weighted_median(data: Any) -> tuple[tuple, dict]:
    w = data.draw(matrices(), label="weights")
    v = w.tensor.shape[-2]
    stakes = data.draw(st.one_of(arrays(shape=(v,)), arrays(max_ndim=2)), label="stakes")
    return (w, stakes, data.draw(scalars(0.5, 0.0, 1.0, mt.DEFAULT_KAPPA))), {"validate": data.draw(st.booleans())}


def _check_weighted_median(out: Any, w: Drawn, stakes: Drawn, kappa: Any, validate: bool) -> None:
    o = f64(torch_of(out))
    assert o.shape[-1] == w.tensor.shape[-1]
    if not (validate and is_finite(w)):
        return
    values = f64(w.tensor.to(torch_of(out).dtype))  # (*, V, N), as computed (int32 -> float32)
    column_values = values.expand(*o.shape[:-1], *values.shape[-2:]) if o.ndim >= 1 else values
    member = (column_values == o.unsqueeze(-2)).any(-2) | (o == 0)
    assert bool(member.all()), "a median that is not one of its column's values"


_entry("weighted_median", _draw_weighted_median, _check_weighted_median)


def _draw_weighted_median_fixed(data: Any) -> tuple[tuple, dict]:
    w = data.draw(matrices(dtypes=(*INT_DTYPES, torch.float32, torch.bool)), label="weight_bits")
    v = w.tensor.shape[-2]
    stakes = data.draw(arrays(shape=(v,), dtypes=(*INT_DTYPES, torch.float64)), label="stake_bits")
    return (w, stakes, data.draw(scalars(mt.DEFAULT_KAPPA_BITS, 0, 2**32))), {"renormalize": data.draw(st.booleans())}


def _check_weighted_median_fixed(out: Any, w: Drawn, stakes: Drawn, kappa: Any, renormalize: bool) -> None:
    o = torch_of(out)
    assert o.dtype == torch.int64 and o.shape[-1] == w.tensor.shape[-1]
    member = (w.tensor.to(torch.int64) == o.unsqueeze(-2)).any(-2) | (o == 0)
    assert bool(member.all()), "a median that is not one of its column's values"


_entry("weighted_median_fixed", _draw_weighted_median_fixed, _check_weighted_median_fixed)


def _draw_clip_to_consensus(data: Any) -> tuple[tuple, dict]:
    w = data.draw(matrices(), label="weights")
    n = w.tensor.shape[-1]
    c = data.draw(st.one_of(arrays(shape=(n,)), arrays(max_ndim=2)), label="consensus")
    return (w, c), {}


def _check_clip_to_consensus(out: Any, w: Drawn, c: Drawn) -> None:
    o = f64(torch_of(out))
    shape = torch.broadcast_shapes(tuple(w.tensor.shape), (*c.tensor.shape[:-1], 1, c.tensor.shape[-1]))
    assert tuple(o.shape) == tuple(shape)
    assert not bool(torch.isnan(o).any()), "NaN came out of clip_to_consensus"
    x = f64(w).expand(shape)
    assert bool(((o <= x + 1e-6 * x.abs()) | (o == x)).all()), "a clipped weight above its input"


_entry("clip_to_consensus", _draw_clip_to_consensus, _check_clip_to_consensus)


def _draw_consensus(data: Any) -> tuple[tuple, dict]:
    as_list = data.draw(st.booleans())
    method = data.draw(strings("mean", "median", "max", "min", "stake_median"))
    if as_list:
        count = data.draw(st.integers(0, 4))
        shape = data.draw(st.sampled_from([(2, 2), (1, 3), (0, 2)]))
        stack: Any = [data.draw(arrays(shape=shape, dtypes=(torch.float32, torch.float64, torch.int64)), label="part").value for _ in range(count)]
        dim = data.draw(st.integers(0, 2))
    else:
        drawn = data.draw(arrays(min_ndim=1), label="stack")
        stack, dim = drawn.value, data.draw(dims())
    stakes = data.draw(st.one_of(st.none(), arrays(max_ndim=1)), label="stakes")
    return (stack, method, dim), {"stakes": None if stakes is None else stakes.value}


def _check_consensus(out: Any, stack: Any, method: Any, dim: Any, stakes: Any) -> None:
    parts = [torch.as_tensor(np.asarray(p)) for p in stack] if isinstance(stack, list) else None
    x = torch.stack(parts, dim) if parts is not None else torch.as_tensor(np.asarray(stack)) if not isinstance(stack, torch.Tensor) else stack
    x = x.to(torch.float64)
    d = norm_dim(dim, x.ndim)
    o = f64(torch_of(out))
    assert tuple(o.shape) == tuple(x.shape[:d] + x.shape[d + 1 :])
    if bool(torch.isfinite(x).all()) and method in ("mean", "median", "max", "min"):
        assert bool(torch.isfinite(o).all()), "finite stack gave a non-finite consensus"
        low, high = x.amin(d), x.amax(d)
        slack = 1e-3 * torch.maximum(low.abs(), high.abs())
        assert bool(((o >= low - slack) & (o <= high + slack)).all())
        if method == "median" and x.shape[d] % 2 == 1:
            rounded = x.to(torch_of(out).dtype).to(torch.float64)
            assert bool((rounded == o.unsqueeze(d)).any(d).all()), "odd-count median not one of the values"


_entry("compute_weight_consensus", _draw_consensus, _check_consensus)

# --- compat ------------------------------------------------------------------------------------


def _draw_max_weight(data: Any) -> tuple[tuple, dict]:
    return (data.draw(arrays(), label="x"), data.draw(scalars(0.1, 0.3, 0.5, 1.0))), {
        "dim": data.draw(dims()),
        "strict": data.draw(st.booleans()),
    }


def _check_max_weight(out: Any, x: Drawn, limit: Any, dim: Any, strict: bool) -> None:
    o = f64(torch_of(out))
    assert tuple(o.shape) == tuple(x.tensor.shape)
    if o.numel() == 0:
        return
    assert bool(torch.isfinite(o).all()) and bool((o >= 0).all())
    d = norm_dim(dim, o.ndim)
    tol = 2e-2 if x.tensor.dtype in (torch.float16, torch.bfloat16) else 1e-4
    if o.shape[d]:
        assert_rows_sum_to_one_or_zero(o, d, tol)


_entry("normalize_max_weight", _draw_max_weight, _check_max_weight)


def _draw_emit(data: Any) -> tuple[tuple, dict]:
    w = data.draw(arrays(min_ndim=1), label="weights")
    n = w.tensor.shape[-1]
    uids = data.draw(st.one_of(arrays(shape=(n,), dtypes=INT_DTYPES), arrays(min_ndim=1)), label="uids")
    return (uids, w), {"drop_rounded_zeros": data.draw(st.booleans())}


def _check_emit(out: Any, uids: Drawn, w: Drawn, drop_rounded_zeros: bool) -> None:
    if isinstance(out, tuple) and not isinstance(out, mt.EmitRows):
        uid_list, values = out
        assert len(uid_list) == len(values) and all(0 <= v <= 65535 for v in values)
    else:
        values = torch_of(out.values)
        assert bool(((values >= 0) & (values <= 65535)).all())


_entry("convert_weights_and_uids_for_emit", _draw_emit, _check_emit)


def _draw_upscale(data: Any) -> tuple[tuple, dict]:
    return (data.draw(arrays(), label="values"),), {"dim": data.draw(dims())}


def _check_upscale(out: Any, values: Drawn, dim: Any) -> None:
    o = torch_of(out)
    assert o.dtype == torch.int64 and tuple(o.shape) == tuple(values.tensor.shape)
    assert bool(((o >= 0) & (o <= 65535)).all())
    if o.numel():
        top = o.amax(norm_dim(dim, o.ndim))
        assert bool(((top == 65535) | (top == 0)).all())


_entry("u16_max_upscale", _draw_upscale, _check_upscale)


def _draw_process(data: Any) -> tuple[tuple, dict]:
    w = data.draw(arrays(min_ndim=1, max_ndim=2), label="weights")
    n = w.tensor.shape[-1]
    uids = data.draw(st.one_of(st.just(Drawn(torch.arange(n), torch.arange(n), "torch", "contiguous")), arrays(shape=(n,), dtypes=INT_DTYPES)), label="uids")
    return (uids, w, data.draw(scalars(4, 1)), data.draw(scalars(0, 2)), data.draw(scalars(0.5, 0.1))), {
        "exclude_quantile": data.draw(scalars(0, 32767))
    }


def _check_process(out: Any, uids: Drawn, w: Drawn, num_neurons: Any, min_allowed: Any, limit: Any, exclude_quantile: Any) -> None:
    weights = f64(torch_of(out[1] if isinstance(out, tuple) and not isinstance(out, mt.ProcessedWeights) else out.weights))
    assert bool(torch.isfinite(weights).all()) and bool((weights >= 0).all())


_entry("process_weights", _draw_process, _check_process)


def _draw_split(data: Any) -> tuple[tuple, dict]:
    return (data.draw(arrays(), label="split"),), {"dim": data.draw(dims())}


def _check_split(out: Any, split: Drawn, dim: Any) -> None:
    o = torch_of(out)
    d = norm_dim(dim, o.ndim)
    assert bool((o.sum(d) == 65535).all()), "a split that does not sum to 65535"
    assert bool((o >= 0).all())


_entry("convert_maybe_split_to_u16", _draw_split, _check_split)


def _draw_uid_converter(data: Any) -> tuple[tuple, dict]:
    values = data.draw(arrays(min_ndim=1, max_ndim=2), label="values")
    k = values.tensor.shape[-1]
    uids = data.draw(st.one_of(arrays(shape=tuple(values.tensor.shape), dtypes=INT_DTYPES), arrays(min_ndim=1)), label="uids")
    return (data.draw(scalars(4, 3, 65536)), uids, values), {}


def _check_weight_converter(out: Any, n: Any, uids: Drawn, values: Drawn) -> None:
    o = f64(torch_of(out))
    assert o.shape[-1] == n and bool(torch.isfinite(o).all()) and bool((o >= 0).all())
    assert_rows_sum_to_one_or_zero(o)


def _check_bond_converter(out: Any, n: Any, uids: Drawn, values: Drawn) -> None:
    o = torch_of(out)
    assert o.dtype == torch.int64 and o.shape[-1] == n and bool((o >= 0).all())


_entry("convert_weight_uids_and_vals_to_tensor", _draw_uid_converter, _check_weight_converter)
_entry("convert_bond_uids_and_vals_to_tensor", _draw_uid_converter, _check_bond_converter)


def _draw_scores(data: Any) -> tuple[tuple, dict]:
    s = data.draw(arrays(min_ndim=1), label="scores")
    kwargs = {
        "k": data.draw(st.one_of(st.none(), scalars(1, 2))),
        "max_weight_limit": data.draw(scalars(1.0, 0.5, 0.3)),
        "min_allowed_weights": data.draw(scalars(0, 1)),
    }
    if data.draw(st.booleans()):
        kwargs["ema_alpha"] = data.draw(scalars(0.5, 1.0))
        if data.draw(st.booleans()):
            kwargs["previous"] = data.draw(arrays(shape=tuple(s.tensor.shape)), label="previous").value
    return (s,), kwargs


def _check_scores(out: Any, s: Drawn, **kwargs: Any) -> None:
    values, count = torch_of(out.values), torch_of(out.count)
    assert bool(((values >= 0) & (values <= 65535)).all())
    assert bool(((count >= 0) & (count <= values.shape[-1])).all())
    if out.ema is not None:
        assert bool(torch.isfinite(f64(torch_of(out.ema))).all())


_entry("scores_to_weights", _draw_scores, _check_scores)

# --- fixed point (mdt_tensor/chain/fixed.py) ---------------------------------------------------


def _draw_fx_one(data: Any) -> tuple[tuple, dict]:
    return (data.draw(arrays(), label="bits"),), {}


def _draw_fx_two(data: Any) -> tuple[tuple, dict]:
    a = data.draw(arrays(dtypes=INT_DTYPES), label="a")
    shape = tuple(a.tensor.shape)
    # non-broadcasting shapes first (the simplest examples): chain/fixed.py lets torch's
    # RuntimeError through today (xfail below); then the same shape, then any.
    mismatched = (*shape[:-1], shape[-1] + 1) if shape else (2,)
    b = data.draw(st.one_of(arrays(shape=mismatched, dtypes=INT_DTYPES), arrays(shape=shape), arrays()), label="b")
    return (a, b), {}


def _check_int64_shaped(out: Any, *args: Any, **kwargs: Any) -> None:
    results = out if isinstance(out, tuple) else (out,)
    for r in results:
        assert isinstance(r, (torch.Tensor, np.ndarray, int))


for _name in (
    "fx_from_int", "fx_from_u16_proportion", "fx_to_u16", "fx_from_float", "fx_to_float", "fx_round", "fx_exp",
    "fx_safe_exp", "fx_exp_safe", "fx_normalize", "fx_row_normalize", "fx_col_normalize", "fx_col_max_upscale",
    "normalize_i64f64_to_i32f32", "fx_bonds_ema_alpha",
):
    _entry(_name, _draw_fx_one, _check_int64_shaped)
for _name in ("fx_mul", "fx_mul_checked", "fx_div", "fx_saturating_div", "fx_div_checked"):
    _entry(_name, _draw_fx_two, _check_int64_shaped)

# --- money -------------------------------------------------------------------------------------

WEI_SCALARS = (0, 1, 10**9, 2**63 - 1, 2**256 - 1, 2**256, 10**5000, -1, -(2**63))


def _draw_balance(data: Any) -> tuple[tuple, dict]:
    how = data.draw(st.sampled_from(["wei", "mdt", "ops"]))
    amount = data.draw(st.one_of(st.sampled_from(WEI_SCALARS), scalars(), st.sampled_from(["1.5", "1e999999999", "-0", "1_000", "0x10", Decimal("1e-10")])))
    other = data.draw(st.one_of(st.sampled_from(WEI_SCALARS), scalars()))
    return (how, amount, other, data.draw(st.booleans())), {}


def _call_balance(how: str, amount: Any, other: Any, allow_negative: bool) -> Any:
    if how == "wei":
        b = mt.Balance.from_wei(amount, allow_negative=allow_negative)
    elif how == "mdt":
        b = mt.Balance.from_mdt(amount, allow_negative=allow_negative, rounding="floor")
    else:
        # The methods, not the operators: ``b * "x"`` follows Python's operator protocol
        # (NotImplemented, then the interpreter's TypeError), documented; ``b.mul("x")`` checks.
        b = mt.Balance.from_wei(10**9)
        product = b.mul(other)
        try:
            b.div(other)
        except ZeroDivisionError:  # documented: division by zero is Python's ZeroDivisionError
            assert other == 0
        return product
    return b


def _check_balance(b: Any, *args: Any) -> None:
    assert isinstance(b, mt.Balance)
    assert str(b) and repr(b) and format(b, "") is not None
    if b.wei >= 0:  # (parse_balance refuses negative text by default)
        assert mt.parse_balance(str(b), token=b.token) == b, "a Balance whose text does not read back"


def _draw_token(data: Any) -> tuple[tuple, dict]:
    return (data.draw(strings("MDT", "TAO")), data.draw(scalars(9, 18, 0, 31)), data.draw(strings("wei", "rao"))), {}


def _check_token(token: Any, symbol: Any, decimals: Any, smallest: Any) -> None:
    assert token.unit == 10**decimals


def _draw_mdt_to_wei(data: Any) -> tuple[tuple, dict]:
    amount = data.draw(st.one_of(arrays(max_ndim=2), st.sampled_from(["1.5", "x", "1e999999999", Decimal("2.5"), 10**20])), label="amount")
    return (amount.value if isinstance(amount, Drawn) else amount,), {"rounding": data.draw(st.one_of(st.none(), strings("floor", "half_even")))}


def _check_mdt_to_wei(out: Any, amount: Any, rounding: Any) -> None:
    if isinstance(out, int):
        return
    assert torch_of(out).dtype == torch.int64


def _draw_wei_to_mdt(data: Any) -> tuple[tuple, dict]:
    return (data.draw(st.one_of(st.sampled_from(WEI_SCALARS), scalars())),), {}


def _check_wei_to_mdt(out: Any, wei: Any) -> None:
    assert isinstance(out, Decimal) and Fraction(out) * 10**9 == int(wei)


def _draw_format(data: Any) -> tuple[tuple, dict]:
    b = mt.Balance.from_wei(data.draw(st.sampled_from([0, 1, 10**9, 2**255])))
    return (data.draw(st.one_of(st.just(b), scalars())), data.draw(st.one_of(st.none(), strings("MDT", "wei"))), data.draw(st.one_of(st.none(), scalars(2, 0)))), {}


def _check_str(out: Any, *args: Any) -> None:
    assert isinstance(out, str)


def _draw_parse(data: Any) -> tuple[tuple, dict]:
    text = data.draw(st.one_of(st.sampled_from(["1.5 MDT", "1,000 wei", "-1 MDT", "1e999999999 MDT", "nan", "", "1 2", "∞"]), st.text(max_size=12), scalars()))
    return (text,), {"default_unit": data.draw(st.one_of(st.none(), strings("MDT", "wei")))}


def _check_balance_only(out: Any, *args: Any, **kwargs: Any) -> None:
    assert isinstance(out, mt.Balance)


def _balances(data: Any) -> Any:
    return data.draw(st.one_of(st.sampled_from([mt.Balance(0), mt.Balance(5), mt.Balance(-5, allow_negative=True), mt.Balance(2**255)]), scalars()))


def _draw_validate_balance(data: Any) -> tuple[tuple, dict]:
    return (_balances(data), data.draw(st.one_of(st.none(), st.just(mt.Balance(1)))), data.draw(st.one_of(st.none(), st.just(mt.Balance(10))))), {}


def _check_bool(out: Any, *args: Any) -> None:
    assert isinstance(out, bool)


def _draw_percentage(data: Any) -> tuple[tuple, dict]:
    return (_balances(data), _balances(data), data.draw(scalars(2, 0))), {"rounding": data.draw(strings("floor", "half_even"))}


def _check_decimal(out: Any, *args: Any, **kwargs: Any) -> None:
    assert isinstance(out, Decimal)


def _draw_sum_balances(data: Any) -> tuple[tuple, dict]:
    return ([_balances(data) for _ in range(data.draw(st.integers(0, 3)))],), {}


def _check_sum_balances(out: Any, balances: list) -> None:
    assert isinstance(out, mt.Balance) and out.wei == sum(b.wei for b in balances)


def _draw_apportion(data: Any) -> tuple[tuple, dict]:
    w = data.draw(arrays(min_ndim=1, max_ndim=2), label="weights")
    total = data.draw(st.one_of(st.sampled_from([0, 1, 1000, 2**63 - 1, 2**63, -1]), scalars()), label="total")
    return (total, w), {"method": data.draw(strings("largest_remainder", "floor")), "zero_weights": data.draw(strings("error", "dust", "even"))}


def _check_apportion(out: Any, total: Any, w: Drawn, method: Any, zero_weights: Any) -> None:
    parts, dust = torch_of(out[0]), torch_of(out[1])
    assert parts.dtype == torch.int64 and tuple(parts.shape) == tuple(w.tensor.shape)
    assert bool((parts >= 0).all())
    sums = [sum(int(v) for v in row) for row in parts.reshape(-1, parts.shape[-1]).tolist()] if parts.ndim else []
    dusts = dust.reshape(-1).tolist()
    for s, d in zip(sums, dusts * (len(sums) // max(len(dusts), 1)) if len(dusts) == 1 else dusts):
        assert s + int(d) == int(total), "parts plus dust differ from the total"


def _draw_split_emission(data: Any) -> tuple[tuple, dict]:
    total = data.draw(st.one_of(st.sampled_from([0, 10, 10**18, 2**63 - 1]), scalars(), arrays(max_ndim=1, dtypes=INT_DTYPES).map(lambda d: d.value)))
    split = data.draw(st.one_of(scalars(1, 3), arrays(min_ndim=1, max_ndim=2, dtypes=(*INT_DTYPES, torch.float32)).map(lambda d: d.value)))
    return (total, split), {}


def _check_split_emission(out: Any, total: Any, split: Any) -> None:
    o = torch_of(out)
    assert o.dtype == torch.int64 and bool((o >= 0).all())
    totals = torch.as_tensor(np.asarray(total)).to(torch.int64).expand(o.shape[:-1])
    assert torch.equal(o.sum(-1), totals), "parts do not sum to the total"


def _draw_distribute(data: Any) -> tuple[tuple, dict]:
    inc = data.draw(arrays(min_ndim=1, max_ndim=2), label="incentive")
    shape = tuple(inc.tensor.shape)
    div = data.draw(st.one_of(arrays(shape=shape, dtypes=(inc.tensor.dtype,)), arrays()), label="dividends")
    stake = data.draw(st.one_of(st.none(), arrays(shape=shape)), label="stake")
    return (data.draw(st.sampled_from([0, 1000, 2**62, -1, 1.5])), inc, div), {"stake": None if stake is None else stake.value}


def _check_distribute(out: Any, emission: Any, inc: Drawn, div: Drawn, stake: Any) -> None:
    server, validator, dust = (torch_of(x) for x in out)
    total = server.sum(-1) + validator.sum(-1) + dust
    assert bool((total == emission).all()), "server + validator + dust differ from the emission"


def _draw_sum_wei(data: Any) -> tuple[tuple, dict]:
    return (data.draw(arrays(), label="wei"),), {"dim": data.draw(dims())}


def _check_sum_wei(out: Any, wei: Drawn, dim: Any) -> None:
    o = torch_of(out)
    d = norm_dim(dim, wei.tensor.ndim)
    exact = np.asarray(wei.tensor.to(torch.int64).numpy(), dtype=object).sum(axis=d)
    assert np.array_equal(np.asarray(o.numpy(), dtype=object), exact)


_entry("Balance", _draw_balance, _check_balance)
_entry("Token", _draw_token, _check_token)
_entry("mdt_to_wei", _draw_mdt_to_wei, _check_mdt_to_wei)
_entry("wei_to_mdt", _draw_wei_to_mdt, _check_wei_to_mdt)
_entry("format_balance", _draw_format, _check_str)
_entry("parse_balance", _draw_parse, _check_balance_only)
_entry("validate_balance", _draw_validate_balance, _check_bool)
_entry("calculate_percentage", _draw_percentage, _check_decimal)
_entry("sum_balances", _draw_sum_balances, _check_sum_balances)
_entry("apportion", _draw_apportion, _check_apportion)
_entry("split_emission", _draw_split_emission, _check_split_emission)
_entry("distribute_emission", _draw_distribute, _check_distribute)
_entry("sum_wei", _draw_sum_wei, _check_sum_wei)

#: How a name is called when it is not simply ``getattr(mt, name)(*args, **kwargs)``.
CALLERS: dict[str, Callable[..., Any]] = {"Balance": _call_balance}

# ------------------------------------------------------------------------------------------------
# the tests


def _public_callables() -> list[str]:
    names = []
    for name in mt.__all__:
        if name in mt._LAZY_NAMES:
            continue
        if callable(getattr(mt, name)) and not inspect.ismodule(getattr(mt, name)):
            names.append(name)
    return names


def test_every_public_callable_is_fuzzed() -> None:
    missing = [n for n in _public_callables() if n not in DRIVERS and n not in SKIPPED]
    assert not missing, f"public callables with neither a fuzz driver nor a reason to skip: {missing}"
    stale = [n for n in (*DRIVERS, *SKIPPED) if n not in mt.__all__]
    assert not stale, f"fuzz entries for names no longer public: {stale}"
    assert all(name in mt._LAZY_NAMES for name in mt._LAZY_NAMES if name in mt.__all__)  # lazy: LAZY_REASON


#: Per function: how many calls returned a result, and how many raised each MdtError.
COUNTS: dict[str, dict[str, int]] = {}


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Drawn) else value


def _examples() -> int:
    current = settings.default.max_examples
    return 20 if current <= 40 else current  # default profile: 20 each (well under a minute in all)


def _params() -> list[Any]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=DRIVERS[name].xfail)) if DRIVERS[name].xfail else name
        for name in sorted(DRIVERS)
    ]


@pytest.mark.parametrize("name", _params())
def test_api_fuzz(name: str) -> None:
    entry = DRIVERS[name]
    function = CALLERS.get(name) or getattr(mt, name)

    @settings(max_examples=_examples())
    @given(data=st.data())
    def run(data: Any) -> None:
        args, kwargs = entry.draw(data)
        try:
            if name in CALLERS:
                result = function(*args, **kwargs)
            else:
                result = function(*(_unwrap(a) for a in args), **{k: _unwrap(v) for k, v in kwargs.items()})
        except mt.MdtError as error:
            COUNTS.setdefault(name, {}).setdefault(type(error).__name__, 0)
            COUNTS[name][type(error).__name__] += 1
            return
        COUNTS.setdefault(name, {}).setdefault("result", 0)
        COUNTS[name]["result"] += 1
        if name == "normalize_weights":  # its checker wants the drawn weights and the named args
            entry.check(result, args[0], kwargs.get("method"), kwargs.get("dim"), kwargs.get("validate", True))
        else:
            entry.check(result, *args, **kwargs)

    run()
    if os.environ.get("FUZZ_STATS"):  # how often each function got past its checks
        print(f"\n{name}: {COUNTS[name]}")
