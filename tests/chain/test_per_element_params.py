"""Per-element YumaParams: a batch mixing parameter sets gives what each subnet gives alone.

Exact mode bit for bit, fast mode within float tolerance, over one epoch and over a run of
epochs (the runner's cache-sized blocks of subnets carry their own parameters); plus the shape
and value checks a per-element field gets.
"""

from __future__ import annotations

import dataclasses
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mdt_tensor.chain.yuma.runner as runner
from mdt_tensor.chain.yuma import SubnetState, YumaParams, epoch, run_epochs
from mdt_tensor.errors import DTypeError, ShapeError, ValueRangeError
from tests.chain.test_yuma import FIELDS_FLOAT, FIELDS_INT, random_state

B, N, T = 3, 6, 3

#: Per-element fields and the values drawn for them (the edges the steps branch on included).
_VALUES = {
    "kappa": st.sampled_from([0, 32767, 40000, 65535]),
    "bonds_penalty": st.sampled_from([0, 20000, 65535]),
    "bonds_moving_average": st.sampled_from([0, 500_000, 900_000, 975_000]),
    "alpha_low": st.sampled_from([0, 45875]),
    "alpha_high": st.sampled_from([45875, 58982, 65535]),
    "alpha_sigmoid_steepness": st.sampled_from([-500, 0, 1000]),
    "activity_cutoff": st.sampled_from([100, 5000]),
    "max_allowed_validators": st.sampled_from([1, 3, 128]),
    "stake_threshold": st.sampled_from([0, 10_000_000]),
    "tempo": st.sampled_from([1, 360]),
}


@st.composite
def mixed_params(draw: st.DrawFn) -> YumaParams:
    """Shared switches, and per-subnet values for a random subset of the integer fields."""
    shared = {
        "yuma3": draw(st.booleans()),
        "path": draw(st.sampled_from(["sparse", "dense"])),
        "liquid_alpha_consensus_mode": draw(st.sampled_from(["current", "previous", "auto"])),
    }
    shared["liquid_alpha"] = shared["yuma3"] and draw(st.booleans())
    fields = {}
    for name in draw(st.sets(st.sampled_from(sorted(_VALUES)), min_size=1)):
        fields[name] = torch.tensor([draw(_VALUES[name]) for _ in range(B)])
    if "alpha_low" in fields or "alpha_high" in fields:  # keep low <= high per subnet
        low = fields.get("alpha_low", torch.full((B,), 45875))
        high = fields.get("alpha_high", torch.full((B,), 58982))
        fields["alpha_low"], fields["alpha_high"] = torch.minimum(low, high), torch.maximum(low, high)
    return YumaParams(**shared, **fields)


def _single(params: YumaParams, b: int) -> YumaParams:
    """Subnet ``b``'s parameters as plain ints."""
    return dataclasses.replace(params, **{
        f.name: int(v[b]) for f in dataclasses.fields(params) if isinstance(v := getattr(params, f.name), torch.Tensor)
    })


def _subnet(state: SubnetState, b: int) -> SubnetState:
    return dataclasses.replace(state, **{
        f.name: v[b] for f in dataclasses.fields(state) if isinstance(v := getattr(state, f.name), torch.Tensor)
    })


def _check_equal(mixed: object, alone: list[object], exact: bool, index: tuple) -> None:
    for name in FIELDS_INT + FIELDS_FLOAT:
        got = torch.as_tensor(getattr(mixed, name))
        for b, single in enumerate(alone):
            want = torch.as_tensor(getattr(single, name))
            part = got[(*index, b)] if index else got[b]
            if exact or name in ("bonds", "validator_permit", "active"):
                assert torch.equal(part.to(want.dtype), want), f"{name}, subnet {b}"
            elif name.endswith("_float"):
                torch.testing.assert_close(part, want, atol=1e-9, rtol=1e-9, msg=f"{name}, subnet {b}")


@settings(max_examples=25, deadline=None)
@given(params=mixed_params(), seed=st.integers(0, 2**16), exact=st.booleans())
def test_mixed_epoch_equals_each_subnet_alone(params: YumaParams, seed: int, exact: bool) -> None:
    state = random_state(seed, (B,), N)
    mixed = epoch(state, params, exact=exact, validate=False)
    alone = [epoch(_subnet(state, b), _single(params, b), exact=exact, validate=False) for b in range(B)]
    _check_equal(mixed, alone, exact, ())


@settings(max_examples=20, deadline=None)
@given(params=mixed_params(), seed=st.integers(0, 2**16), exact=st.booleans(), block_bytes=st.sampled_from([1, 1 << 30]))
def test_mixed_run_equals_each_subnet_run_alone(params: YumaParams, seed: int, exact: bool, block_bytes: int) -> None:
    """Blocks of one subnet or the whole batch in one block: the same results as one run per subnet."""
    state = random_state(seed, (B,), N)
    rng = np.random.default_rng(seed)
    updates = torch.from_numpy(rng.integers(0, 65536, (T, B, N, N)) * (rng.random((T, B, N, N)) < 0.6))
    with mock.patch.object(runner, "_CPU_BLOCK_BYTES", block_bytes):
        mixed, final = run_epochs(state, updates, params, exact=exact, validate=False)
    runs = [run_epochs(_subnet(state, b), updates[:, b], _single(params, b), exact=exact, validate=False)
            for b in range(B)]
    for t in range(T):
        _check_equal(mixed, [getattr_t(r[0], t) for r in runs], exact, (t,))
    for b, (_, alone_final) in enumerate(runs):
        assert torch.equal(torch.as_tensor(final.bonds)[b].to(torch.int64), torch.as_tensor(alone_final.bonds).to(torch.int64))
        assert torch.equal(torch.as_tensor(final.block)[b], torch.as_tensor(alone_final.block))


def getattr_t(result: object, t: int) -> object:
    """Epoch ``t`` of a stacked result, as a result-like object."""
    return type("At", (), {name: torch.as_tensor(getattr(result, name))[t] for name in FIELDS_INT + FIELDS_FLOAT})()


def test_per_element_fields_are_checked() -> None:
    assert YumaParams(kappa=np.array([1, 2])).per_element
    assert not YumaParams(kappa=np.int64(7)).per_element and YumaParams(kappa=torch.tensor(7)).kappa == 7
    with pytest.raises(ValueRangeError):
        YumaParams(kappa=torch.tensor([1, 70000]))
    with pytest.raises(DTypeError):
        YumaParams(kappa=torch.tensor([0.5, 0.2]))
    with pytest.raises(ValueRangeError):
        YumaParams(alpha_low=[50000, 1], alpha_high=[60000, 0])
    state = random_state(0, (B,), N)
    with pytest.raises(ShapeError):
        epoch(state, YumaParams(kappa=torch.tensor([1, 2])))
