"""Tests of mt.yuma: the epoch's invariants, batching, padding, modes, runner and bad inputs.

Bit-for-bit agreement with the chain is tested against a separate transcription of the chain's
sparse epoch in ``tests/test_yuma_vs_reference.py``; here the checks are the properties a user
relies on (conservation, batch == loop, padded == alone, exact ~ fast, CPU == CUDA) plus small
cases worked out by hand from the chain's rules (docs/design/yuma-epoch.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import mdt_tensor as mt
from mdt_tensor.chain.yuma import EpochResult, SubnetState, YumaParams, epoch, next_state, run_epochs
from tests.helpers import ARRAY_KINDS, DEVICES, assert_kind, to_kind, to_numpy

SNAPSHOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "sn15_block4769998.npz"

FIELDS_INT = ("server_emission", "validator_emission", "emission", "consensus", "incentive",
              "dividends", "validator_trust", "stake_weight", "bonds", "validator_permit", "active")
FIELDS_FLOAT = ("consensus_float", "incentive_float", "dividends_float", "validator_trust_float", "stake_weight_float")

PARAM_CASES = [
    YumaParams(),
    YumaParams(bonds_penalty=0),
    YumaParams(bonds_penalty=30000, kappa=40000),
    YumaParams(yuma3=True, bonds_moving_average=975_000),
    YumaParams(yuma3=True, liquid_alpha=True),
    YumaParams(yuma3=True, liquid_alpha=True, liquid_alpha_consensus_mode="previous", bonds_penalty=20000),
    YumaParams(path="dense", max_allowed_validators=5),
]


def random_state(seed: int, batch: tuple[int, ...] = (), n: int = 12, *, float_stake: bool = False) -> SubnetState:
    """A random subnet (or batch): sparse max-upscaled weights, a few stale or fresh uids, bonds, an owner."""
    rng = np.random.default_rng(seed)
    shape = (*batch, n)
    raw = rng.random((*shape, n)) * (rng.random((*shape, n)) < 0.6)
    top = raw.max(-1, keepdims=True)
    weights = np.where(top > 0, np.round(raw / np.where(top > 0, top, 1) * 65535), 0).astype(np.int64)
    stake = rng.lognormal(10, 2, shape) * (rng.random(shape) < 0.8)
    stake = stake if float_stake else np.floor(stake * 1e3).astype(np.int64)
    block = 10_000
    last_update = block - rng.integers(0, 7000, shape)
    registration = rng.integers(0, 9_900, shape)
    bonds = rng.integers(0, 65536, (*shape, n)) * (rng.random((*shape, n)) < 0.5)
    permit = rng.random(shape) < 0.7
    owner = rng.integers(-1, n, batch) if batch else int(rng.integers(-1, n))
    previous = rng.integers(0, 65536, shape)
    return SubnetState(
        weights=torch.from_numpy(weights),
        stake=torch.from_numpy(np.asarray(stake)),
        last_update=torch.from_numpy(last_update),
        block_at_registration=torch.from_numpy(registration),
        validator_permit=torch.from_numpy(permit),
        bonds=torch.from_numpy(bonds),
        block=block,
        owner_uid=torch.as_tensor(owner) if batch else owner,
        previous_consensus=torch.from_numpy(previous),
    )


def as_np(x: object) -> np.ndarray:
    return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def assert_results_equal(a: EpochResult, b: EpochResult) -> None:
    for name in FIELDS_INT + FIELDS_FLOAT + ("dust",):
        np.testing.assert_array_equal(as_np(getattr(a, name)), as_np(getattr(b, name)), err_msg=name)


# ------------------------------------------------------------------ hand-checked cases


def test_equal_stakes_without_weights_pay_validators_by_stake_with_floor_dust() -> None:
    # stake normalisation (docs/design/yuma-epoch.md step 4): 10 equal stakes normalise to 429496729 / 2**32 and 1e9 of it floors to 99,999,999.
    result = epoch(SubnetState(weights=torch.zeros(10, 10, dtype=torch.int64), stake=[5] * 10))
    assert result.validator_emission.tolist() == [99_999_999] * 10
    assert result.server_emission.tolist() == [0] * 10
    assert int(result.dust) == 10
    exact = epoch(SubnetState(weights=torch.zeros(10, 10, dtype=torch.int64), stake=[5] * 10), payout="exact")
    assert exact.validator_emission.tolist() == [100_000_000] * 10 and int(exact.dust) == 0


def test_two_validators_one_miner_split_half_and_half() -> None:
    W = [[0, 0, 65535], [0, 0, 65535], [0, 0, 0]]
    result = epoch(SubnetState(weights=W, stake=[300, 100, 0]), emission=1_000_000)
    assert result.incentive.tolist() == [0, 0, 65535]
    assert result.consensus.tolist() == [0, 0, 65535]
    assert result.validator_permit.tolist() == [True, True, False]
    # The first epoch's bonds are the stake-weighted weights: 3/4 and 1/4 of the miner's column.
    assert result.dividends_float.tolist() == pytest.approx([0.75, 0.25, 0.0], abs=1e-9)
    assert result.server_emission.tolist()[2] == 500_000 - 1 or result.server_emission.tolist()[2] == 500_000
    assert result.bonds.tolist() == [[0, 0, 65535], [0, 0, 21844], [0, 0, 0]]


def test_self_weight_is_dropped_except_the_owner() -> None:
    W = [[65535, 0], [0, 65535]]
    plain = epoch(SubnetState(weights=W, stake=[1, 1]))
    assert plain.incentive.tolist() == [0, 0] and int(plain.server_emission.sum()) == 0
    owned = epoch(SubnetState(weights=W, stake=[1, 1], owner_uid=0))
    assert owned.incentive.tolist() == [65535, 0]
    dense = epoch(SubnetState(weights=W, stake=[1, 1], owner_uid=0), YumaParams(path="dense"))
    assert dense.incentive.tolist() == [0, 0]


def test_permits_tie_goes_to_the_higher_uid_and_zero_stake_never() -> None:
    state = SubnetState(weights=torch.zeros(4, 4, dtype=torch.int64), stake=[5, 5, 5, 0])
    for exact in (True, False):
        result = epoch(state, YumaParams(max_allowed_validators=2), exact=exact)
        assert result.validator_permit.tolist() == [False, True, True, False]
        result = epoch(state, YumaParams(max_allowed_validators=10), exact=exact)
        assert result.validator_permit.tolist() == [True, True, True, False]


def test_stake_threshold_exempts_the_owner_on_the_sparse_path_only() -> None:
    state = SubnetState(weights=torch.zeros(3, 3, dtype=torch.int64), stake=[10, 100, 100], owner_uid=0)
    sparse = epoch(state, YumaParams(stake_threshold=50))
    assert sparse.stake_weight_float.tolist()[0] > 0 and sparse.validator_permit.tolist()[0]
    dense = epoch(state, YumaParams(stake_threshold=50, path="dense"))
    assert dense.stake_weight.tolist()[0] == 0 and not dense.validator_permit.tolist()[0]


def test_inactive_and_outdated_weights_do_not_count() -> None:
    W = [[0, 65535, 0], [0, 0, 65535], [0, 65535, 0]]
    # uid 2 is inactive (last update 6000 blocks ago): only uid 0's weight counts.
    state = SubnetState(weights=W, stake=[1, 0, 1], last_update=[10_000, 10_000, 4_000], block=10_000)
    assert epoch(state).incentive.tolist() == [0, 65535, 0]
    assert epoch(state).active.tolist() == [True, True, False]
    # uid 1 re-registered after every validator's last update: its column is outdated.
    stale = dataclasses.replace(state, last_update=[9_000, 9_000, 9_000], block_at_registration=[0, 9_500, 0])
    result = epoch(stale)
    assert result.incentive.tolist() == [0, 0, 0]
    assert result.validator_emission.sum() > 0  # falls back to stake


# ------------------------------------------------------------------ invariants


@pytest.mark.parametrize("params", PARAM_CASES, ids=range(len(PARAM_CASES)))
def test_exact_and_fast_agree_on_random_subnets(params: YumaParams) -> None:
    state = random_state(7, (3,), 14)
    exact = epoch(state, params, emission=10**9)
    fast = epoch(state, params, emission=10**9, exact=False)
    for name in FIELDS_FLOAT:
        np.testing.assert_allclose(as_np(getattr(exact, name)), as_np(getattr(fast, name)), atol=2e-6, err_msg=name)
    for name in ("consensus", "incentive", "dividends", "validator_trust", "stake_weight", "bonds"):
        assert np.abs(as_np(getattr(exact, name)) - as_np(getattr(fast, name))).max() <= 1, name
    assert np.abs(as_np(exact.emission) - as_np(fast.emission)).max() <= 2_000
    np.testing.assert_array_equal(as_np(exact.validator_permit), as_np(fast.validator_permit))
    f32 = epoch(state, params, exact=False, dtype=torch.float32)
    np.testing.assert_allclose(as_np(f32.incentive_float), as_np(fast.incentive_float), atol=1e-4)


@pytest.mark.parametrize("payout", ["chain", "exact"])
@pytest.mark.parametrize("exact", [True, False])
def test_payout_invariants(payout: str, exact: bool) -> None:
    state = random_state(3, (4,), 10, float_stake=True)
    emission = torch.tensor([0, 1, 10**9, 2**62])
    result = epoch(state, YumaParams(yuma3=True), emission, exact=exact, payout=payout)
    total = (as_np(result.server_emission) + as_np(result.validator_emission)).sum(-1)
    dust = as_np(result.dust)
    stored = as_np(result.emission).sum(-1)  # chain: floor of the combined share, exact: the payout
    assert (stored <= emission.numpy()).all() and (payout == "chain" or (stored == total).all())
    assert (as_np(result.server_emission) >= 0).all() and (as_np(result.validator_emission) >= 0).all()
    np.testing.assert_array_equal(total + dust, emission.numpy())
    if payout == "exact":
        assert (dust == 0).all()
    else:
        # each of the 2n floored shares loses < 1 wei plus the I32F32 rounding of its ratio
        bound = emission.numpy() // 2**32 * (2 * 10 + 2) + 2 * 10 + 2
        assert (dust >= 0).all() and (dust <= bound).all()


def test_batch_equals_loop_of_singles() -> None:
    state = random_state(11, (2, 3), 9)
    for params in (YumaParams(), YumaParams(yuma3=True, liquid_alpha=True)):
        batched = epoch(state, params)
        for i in range(2):
            for j in range(3):
                single = SubnetState(**{
                    f.name: (v[i, j] if isinstance(v := getattr(state, f.name), torch.Tensor) and v.ndim >= 1 else v)
                    for f in dataclasses.fields(SubnetState)
                })
                alone = epoch(single, params)
                for name in FIELDS_INT + FIELDS_FLOAT + ("dust",):
                    np.testing.assert_array_equal(as_np(getattr(batched, name))[i, j], as_np(getattr(alone, name)), err_msg=name)


@pytest.mark.parametrize("exact", [True, False])
def test_padded_batch_equals_each_subnet_alone(exact: bool) -> None:
    sizes, n_pad = [5, 9, 7], 9
    singles = [random_state(20 + k, (), n) for k, n in enumerate(sizes)]
    params = YumaParams(yuma3=True, liquid_alpha=True, max_allowed_validators=4)

    def pad(name: str, fill: int = 0) -> torch.Tensor:
        out = []
        for s, n in zip(singles, sizes):
            v = torch.as_tensor(getattr(s, name))
            widths = [(0, n_pad - n)] * v.ndim
            out.append(torch.from_numpy(np.pad(v.numpy(), widths, constant_values=fill)))
        return torch.stack(out)

    padded = SubnetState(
        weights=pad("weights"), stake=pad("stake"), last_update=pad("last_update"),
        block_at_registration=pad("block_at_registration"), validator_permit=pad("validator_permit"),
        bonds=pad("bonds"), block=10_000, owner_uid=torch.tensor([s.owner_uid for s in singles]),
        n_valid=torch.tensor(sizes), previous_consensus=pad("previous_consensus"),
    )
    batched = epoch(padded, params, exact=exact)
    for k, (s, n) in enumerate(zip(singles, sizes)):
        alone = epoch(s, params, exact=exact)
        for name in FIELDS_INT + FIELDS_FLOAT:
            got = as_np(getattr(batched, name))[k]
            got = got[:n, :n] if name == "bonds" else got[:n]
            np.testing.assert_array_equal(got, as_np(getattr(alone, name)), err_msg=name)
        assert int(as_np(batched.dust)[k]) == int(alone.dust)
        assert not as_np(batched.emission)[k, n:].any() and not as_np(batched.bonds)[k, n:].any()


def test_run_epochs_equals_a_loop_of_epoch_and_next_state() -> None:
    state = random_state(5, (2,), 8)
    rng = np.random.default_rng(1)
    updates = torch.from_numpy(rng.integers(0, 65536, (4, 2, 8, 8)) * (rng.random((4, 2, 8, 8)) < 0.7))
    params = YumaParams(yuma3=True, liquid_alpha=True, liquid_alpha_consensus_mode="previous", tempo=100)
    results, final = run_epochs(state, updates, params, emission=10**9)
    looped = dataclasses.replace(state, weights=updates[0])
    for t in range(4):
        single = epoch(looped, params, emission=10**9)
        for name in FIELDS_INT + FIELDS_FLOAT + ("dust",):
            np.testing.assert_array_equal(as_np(getattr(results, name))[t], as_np(getattr(single, name)), err_msg=name)
        looped = next_state(looped, single, weights=updates[t + 1] if t < 3 else None, blocks_per_epoch=100)
    np.testing.assert_array_equal(as_np(final.bonds), as_np(looped.bonds))
    np.testing.assert_array_equal(as_np(final.block), as_np(looped.block))
    # an iterable of updates gives the same as the stacked tensor
    again, _ = run_epochs(state, list(updates), params, emission=10**9, progress=True)
    assert_results_equal(results, again)


def test_bonds_drift_down_by_about_one_ulp_without_weight_changes() -> None:
    # the bonds EMA (step 13): with unchanged weights, stored original-Yuma bonds lose ~1 per epoch to the floor.
    W = torch.tensor([[0, 0, 65535], [0, 0, 65535], [0, 0, 0]])
    state = SubnetState(weights=W, stake=[2, 1, 0], block=1000)
    results, _ = run_epochs(state, W.expand(6, 3, 3), YumaParams())
    column = as_np(results.bonds)[:, 1, 2]
    assert (np.diff(column[1:]) <= 0).all() and (np.diff(column[1:]) >= -2).all()


def test_outputs_follow_the_input_array_type() -> None:
    state = random_state(2, (), 6)
    as_numpy = SubnetState(weights=state.weights.numpy().astype(np.uint16), stake=state.stake.numpy())
    result = epoch(as_numpy)
    assert isinstance(result.emission, np.ndarray) and result.emission.dtype == np.int64
    assert isinstance(result.bonds, np.ndarray) and isinstance(result.incentive_float, np.ndarray)
    listed = epoch(SubnetState(weights=state.weights.tolist(), stake=state.stake.tolist()))
    assert isinstance(listed.emission, torch.Tensor)
    np.testing.assert_array_equal(result.emission, listed.emission.numpy())


@pytest.mark.parametrize("kind", ARRAY_KINDS)
def test_every_array_kind_in_gives_the_same_kind_out(kind: str) -> None:
    state = random_state(4, (2,), 7)
    fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(SubnetState)}
    converted = SubnetState(**{
        name: (to_kind(value.numpy(), kind) if isinstance(value, torch.Tensor) else value) for name, value in fields.items()
    })
    reference = epoch(state)
    result = epoch(converted)
    for name in FIELDS_INT + FIELDS_FLOAT + ("dust",):
        assert_kind(getattr(result, name), kind)
        np.testing.assert_array_equal(to_numpy(getattr(result, name)), as_np(getattr(reference, name)), err_msg=name)
    results, final = run_epochs(converted, to_kind(np.stack([state.weights.numpy()] * 2), kind))
    assert_kind(results.bonds, kind)
    assert_kind(final.bonds, kind)


@pytest.mark.parametrize("device", DEVICES)
def test_exact_is_bit_identical_on_every_device(device: str) -> None:
    state = random_state(9, (3,), 16, float_stake=True)
    moved = SubnetState(**{
        f.name: (v.to(device) if isinstance(v := getattr(state, f.name), torch.Tensor) else v)
        for f in dataclasses.fields(SubnetState)
    })
    for params in (YumaParams(), YumaParams(yuma3=True, liquid_alpha=True)):
        on_cpu = epoch(state, params)
        on_device = epoch(moved, params)
        assert on_device.emission.device.type == torch.device(device).type
        assert_results_equal(on_cpu, on_device)
    updates = torch.stack([state.weights, state.weights.flip(-1)])
    runs_cpu, _ = run_epochs(state, updates, YumaParams(yuma3=True))
    runs_device, _ = run_epochs(moved, updates.to(device), YumaParams(yuma3=True))
    assert_results_equal(runs_cpu, runs_device)


# ------------------------------------------------------------------ the real snapshot


@pytest.mark.skipif(not SNAPSHOT.exists(), reason=f"snapshot not found at {SNAPSHOT} (../shared is not beside the clone)")
def test_real_snapshot_runs_in_both_modes() -> None:
    data = np.load(SNAPSHOT)
    S, W = data["S"].astype(np.float64), data["W"].astype(np.float64)
    top = W.max(-1, keepdims=True)
    W16 = np.where(top > 0, np.floor(W / np.where(top > 0, top, 1) * 65535 + 0.5), 0).astype(np.int64)
    state = SubnetState(weights=W16, stake=S, block=int(data["block"]))
    exact = epoch(state, emission=10**9)
    fast = epoch(state, emission=10**9, exact=False)
    for result in (exact, fast):
        assert result.incentive_float.sum() == pytest.approx(1.0, abs=1e-6)
        assert result.dividends_float.sum() == pytest.approx(1.0, abs=1e-6)
        assert int(result.emission.sum()) + int(result.dust) == 10**9
        assert 0 <= int(result.dust) < 512
    np.testing.assert_allclose(exact.incentive_float, fast.incentive_float, atol=1e-6)
    np.testing.assert_allclose(exact.dividends_float, fast.dividends_float, atol=1e-6)
    assert np.abs(exact.emission - fast.emission).max() <= 1_000


# ------------------------------------------------------------------ bad inputs


def test_bad_inputs_raise_clear_errors() -> None:
    ok = dict(weights=[[0, 1], [1, 0]], stake=[1, 1])
    with pytest.raises(mt.ValueRangeError, match="weights.*65535.*index"):
        epoch(SubnetState(weights=[[0, 70000], [1, 0]], stake=[1, 1]))
    with pytest.raises(mt.ValueRangeError, match="weights"):
        epoch(SubnetState(weights=[[0, -1], [1, 0]], stake=[1, 1]))
    with pytest.raises(mt.DTypeError, match="whole numbers"):
        epoch(SubnetState(weights=[[0, 0.5], [1, 0]], stake=[1, 1]))
    with pytest.raises(mt.ValueRangeError, match="stake.*nan"):
        epoch(SubnetState(weights=ok["weights"], stake=[1, float("nan")]))
    with pytest.raises(mt.ValueRangeError, match="stake.*non-negative"):
        epoch(SubnetState(weights=ok["weights"], stake=[1, -2]))
    with pytest.raises(mt.ValueRangeError, match="2\\*\\*61"):
        epoch(SubnetState(weights=ok["weights"], stake=[2**61, 2**61]))
    with pytest.raises(mt.ShapeError, match="stake.*shape"):
        epoch(SubnetState(weights=ok["weights"], stake=[1, 1, 1]))
    with pytest.raises(mt.ShapeError, match="weights.*n, n"):
        epoch(SubnetState(weights=[[0, 1, 2], [1, 0, 2]], stake=[1, 1]))
    with pytest.raises(mt.ShapeError, match="bonds"):
        epoch(SubnetState(**ok, bonds=[[0, 1, 2]]))
    with pytest.raises(mt.ValueRangeError, match="owner_uid"):
        epoch(SubnetState(**ok, owner_uid=2))
    with pytest.raises(mt.ValueRangeError, match="owner_uid"):
        epoch(SubnetState(**ok, owner_uid=-2))
    with pytest.raises(mt.ValueRangeError, match="kappa"):
        YumaParams(kappa=70000)
    with pytest.raises(mt.ValueRangeError, match="kappa"):
        YumaParams(kappa=-1)
    with pytest.raises(mt.ValueRangeError, match="alpha_low"):
        YumaParams(alpha_low=60000, alpha_high=50000)
    with pytest.raises(mt.ValueRangeError, match="path"):
        YumaParams(path="fast")  # type: ignore[arg-type]
    with pytest.raises(mt.DTypeError, match="bonds_moving_average"):
        YumaParams(bonds_moving_average=0.9)  # type: ignore[arg-type]
    with pytest.raises(mt.ValueRangeError, match="payout"):
        epoch(SubnetState(**ok), payout="floor")  # type: ignore[arg-type]
    with pytest.raises(mt.ValueRangeError, match="emission"):
        epoch(SubnetState(**ok), emission=-5)
    with pytest.raises(mt.DTypeError, match="state"):
        epoch({"weights": ok["weights"]})  # type: ignore[arg-type]
    with pytest.raises(mt.ShapeError, match="weight_updates"):
        run_epochs(SubnetState(**ok), torch.zeros(3, 3, 3, dtype=torch.int64))
    empty = SubnetState(weights=torch.zeros(0, 4, 4, dtype=torch.int64), stake=torch.zeros(0, 4))
    with pytest.raises(mt.ShapeError, match="non-empty batch"):
        epoch(empty)
    with pytest.raises(mt.ShapeError, match="non-empty batch"):
        run_epochs(empty, torch.zeros(2, 0, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError):  # the error family subclasses the builtins
        epoch(SubnetState(**ok, n_valid=5))


# ------------------------------------------------------------------ property tests

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 10),
    emission=st.sampled_from([0, 1, 7, 10**9, 2**40 + 3]),
    params=st.sampled_from(PARAM_CASES),
    exact=st.booleans(),
    float_stake=st.booleans(),
)
def test_payouts_conserve_and_follow_the_shares(seed: int, n: int, emission: int, params: YumaParams, exact: bool,
                                                float_stake: bool) -> None:
    state = random_state(seed, (2,), n, float_stake=float_stake)
    chain = epoch(state, params, emission, exact=exact)
    full = epoch(state, params, emission, exact=exact, payout="exact")
    for result, payout in ((chain, "chain"), (full, "exact")):
        paid = as_np(result.server_emission) + as_np(result.validator_emission)
        assert (paid >= 0).all()
        np.testing.assert_array_equal(paid.sum(-1) + as_np(result.dust), [emission, emission])
        if payout == "exact":
            assert (as_np(result.dust) == 0).all() or (as_np(result.stake_weight).sum(-1) == 0).any()
    # handing out the dust never takes from anyone
    gained = as_np(full.server_emission) + as_np(full.validator_emission) - (
        as_np(chain.server_emission) + as_np(chain.validator_emission))
    if exact:  # floor(E * w / W) is never below the chain's floor of a truncated share
        assert (gained >= 0).all()
    # u16 outputs stay in range and bonds rows exist only for permitted uids
    for name in ("consensus", "incentive", "dividends", "validator_trust", "stake_weight", "bonds"):
        values = as_np(getattr(chain, name))
        assert values.min() >= 0 and values.max() <= 65535, name
    if params.path == "sparse":  # the dense path leaves rows of never-permitted uids untouched
        assert not as_np(chain.bonds)[~as_np(chain.validator_permit)].any()
