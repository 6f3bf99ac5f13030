"""``mt.yuma.epoch`` against the independent pure-Python reference (``tests/chain/yuma_reference.py``).

Random small subnets (hypothesis) cover every branch of the epoch: activity and outdated masks, stake
threshold with the owner exemption, permits by top-k with ties, the owner's self-weight, Yuma 3 with and
without liquid alpha (all three consensus modes), bonds penalty 0 / 1 / in between, the zero-consensus
fallback to stake, explicit-zero vs absent weights.  What is checked:

* ``exact=True, payout="chain"``: every output bit for bit (u16 vectors, new bonds, permits, the three
  wei vectors, dust);
* ``exact=False``: u16 outputs within a few units, wei within ``1e-6 * E`` (+2 wei) of the reference, on
  inputs away from the median's kappa boundary (where float and fixed point may legitimately choose
  different column values);
* ``payout="exact"``: server + validator emissions sum to ``emission`` exactly, nothing negative, and
  every uid's payout lies within 1 wei (plus the normalisation's sub-wei loss) of the chain's pre-floor
  share ``bits * E / 2**32`` of the same I32F32 proportions;
* a batch of subnets equals the loop of singles, and a padded batch of different sizes (``n_valid``)
  equals each subnet's reference alone;
* the chain's own multi-epoch tests (``test_bonds``, ``test_yuma_3_kappa_moves_first`` in every consensus
  mode) and the real subnet-15 snapshot replayed through both implementations in lockstep;
* the same bits on CUDA (``cuda``-marked, skipped without a GPU).
"""

from __future__ import annotations

import dataclasses
import inspect
from fractions import Fraction
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import mdt_tensor as mt
from tests.chain.yuma_reference import ChainSim, RefParams, reference_epoch

yuma = getattr(mt, "yuma", None)
if yuma is None or not all(hasattr(yuma, name) for name in ("epoch", "SubnetState", "YumaParams")):
    pytest.skip("mt.yuma.epoch is not implemented yet", allow_module_level=True)

U16_FIELDS = ("consensus", "incentive", "dividends", "validator_trust")
WEI_FIELDS = ("server_emission", "validator_emission", "emission")
MODES = ("current", "previous", "auto")


# --------------------------------------------------------------------------------------------------
# Adapters to the tensor API (names of the optional fields are read from the implementation)
# --------------------------------------------------------------------------------------------------


def _param_names(obj: Any) -> set[str]:
    if dataclasses.is_dataclass(obj):
        return {f.name for f in dataclasses.fields(obj)}
    return set(inspect.signature(obj).parameters)


STATE_FIELDS = _param_names(yuma.SubnetState)
EPOCH_KWARGS = set(inspect.signature(yuma.epoch).parameters)


def _first_present(candidates: tuple[str, ...], names: set[str]) -> str | None:
    return next((c for c in candidates if c in names), None)


PRESENT_NAME = _first_present(("weights_present", "weights_mask", "weight_mask", "present"), STATE_FIELDS)
PREV_NAME = _first_present(("previous_consensus", "prev_consensus", "consensus_previous", "last_consensus",
                            "consensus"), STATE_FIELDS | EPOCH_KWARGS)


@dataclasses.dataclass
class Case:
    weights: list[list[int]]
    stake: list[int]
    last_update: list[int]
    block_at_registration: list[int]
    validator_permit: list[bool]
    bonds: list[list[int]]
    block: int
    owner_uid: int
    params: RefParams
    emission: int
    previous_consensus: list[int] | None
    weights_present: list[list[bool]] | None

    def reference(self) -> dict:
        return reference_epoch(self.weights, self.stake, self.last_update, self.block_at_registration,
                               self.validator_permit, self.bonds, self.block, self.owner_uid, self.params,
                               self.emission, self.previous_consensus, self.weights_present)


def _state(cases: list[Case]) -> tuple[Any, dict]:
    """SubnetState for one case (no batch dim) or a batch of same-n cases (leading dim)."""
    single = len(cases) == 1

    def stack(get, dtype):
        t = torch.tensor([get(c) for c in cases], dtype=dtype)
        return t[0] if single else t

    kwargs: dict[str, Any] = dict(
        weights=stack(lambda c: c.weights, torch.int64),
        stake=stack(lambda c: c.stake, torch.int64),
        last_update=stack(lambda c: c.last_update, torch.int64),
        block_at_registration=stack(lambda c: c.block_at_registration, torch.int64),
        validator_permit=stack(lambda c: c.validator_permit, torch.bool),
        bonds=stack(lambda c: c.bonds, torch.int64),
        block=cases[0].block if single else stack(lambda c: c.block, torch.int64),
        owner_uid=cases[0].owner_uid if single else stack(lambda c: c.owner_uid, torch.int64),
    )
    extra: dict[str, Any] = {}
    if any(c.weights_present is not None for c in cases):
        assert PRESENT_NAME is not None, "the tensor API has no weights-presence mask"
        n = len(cases[0].stake)
        kwargs[PRESENT_NAME] = stack(lambda c: c.weights_present or [[True] * n] * n, torch.bool)
    if any(c.previous_consensus is not None for c in cases):
        assert PREV_NAME is not None, "the tensor API has no previous-consensus input"
        target = kwargs if PREV_NAME in STATE_FIELDS else extra
        target[PREV_NAME] = stack(lambda c: c.previous_consensus, torch.int64)
    return yuma.SubnetState(**kwargs), extra


def _yuma_params(p: RefParams) -> Any:
    return yuma.YumaParams(**dataclasses.asdict(p))


def _run(cases: list[Case], *, exact: bool = True, payout: str = "chain") -> Any:
    state, extra = _state(cases)
    return yuma.epoch(state, _yuma_params(cases[0].params), cases[0].emission, exact=exact, payout=payout,
                      **extra)


def _field(result: Any, name: str) -> torch.Tensor:
    value = result[name] if isinstance(result, dict) else getattr(result, name)
    return torch.as_tensor(value)


def _ints(t: torch.Tensor) -> list:
    return t.to(torch.int64).tolist() if t.dtype != torch.bool else t.tolist()


# --------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------

def mostly(common: st.SearchStrategy, rare: st.SearchStrategy, percent: int = 80) -> st.SearchStrategy:
    """``common`` in about ``percent``% of draws, else ``rare`` (edge cases stay reachable, live subnets dominate)."""
    return st.integers(0, 99).flatmap(lambda r: common if r < percent else rare)


u16 = st.one_of(st.just(0), st.just(65535), st.integers(1, 65535))
weight_cell = mostly(st.integers(1, 65535), st.sampled_from([0, 65535]), 70)
# Generic (fast-mode) weights: nonzero cells within a factor 256 of the largest u16, so a
# normalised weight keeps enough I32F32 bits that fixed and float differ by rounding only (a cell
# of 1 beside 65535 is ~1.5e-5, held by the chain with ~16 significant bits; stake-weighted and
# column-normalised, such cells legitimately move the chain's dividends by several u16 units).
generic_weight_cell = mostly(st.integers(256, 65535), st.sampled_from([0, 65535]), 70)
stakes = mostly(st.integers(1, 2**50), st.sampled_from([0, 1, 1000, 2**50]), 70)


@st.composite
def params_strategy(draw, *, generic: bool = False) -> RefParams:
    alpha_low = draw(mostly(st.just(45875), st.integers(1638, 65535), 50))
    alpha_high = draw(mostly(st.just(max(58982, alpha_low)), st.integers(alpha_low, 65535), 50))
    if generic:  # keep the median's kappa comparison away from exact stake boundaries
        kappa = draw(st.sampled_from([32767, 21000, 45000]))
    else:
        kappa = draw(mostly(st.sampled_from([32767, 16000, 40000]), st.one_of(
            st.sampled_from([0, 65535, 32768]), st.integers(0, 65535)), 70))
    yuma3 = draw(st.booleans())
    return RefParams(
        kappa=kappa,
        bonds_penalty=draw(st.one_of(st.sampled_from([65535, 0]), st.integers(0, 65535))),
        # Generic: alpha and 1 - alpha >= 0.01, so no bond the EMA keeps underflows I32F32 (the chain
        # legitimately zeroes e.g. 1e-6 * 6e-5; float keeps it and the column max-upscale shows it).
        bonds_moving_average=draw(st.integers(100_000, 990_000) if generic else mostly(
            st.sampled_from([900_000, 975_000]), st.one_of(st.sampled_from([0, 1_000_000]),
                                                           st.integers(0, 1_000_000)), 60)),
        yuma3=yuma3,
        liquid_alpha=draw(mostly(st.just(True), st.just(False), 70)) if yuma3 else draw(st.booleans()),
        alpha_low=alpha_low,
        alpha_high=alpha_high,
        alpha_sigmoid_steepness=draw(mostly(st.just(1000), st.sampled_from([1, 250, 3333, 10000, -500]), 60)),
        liquid_alpha_consensus_mode=draw(st.sampled_from(MODES)),
        activity_cutoff=draw(mostly(st.just(5000), st.sampled_from([100, 1]), 80)),
        max_allowed_validators=draw(mostly(st.just(128), st.integers(0, 14), 60)),
        stake_threshold=draw(mostly(st.just(0), st.sampled_from([500, 10**9, 2**40]), 75)),
        tempo=draw(mostly(st.just(360), st.sampled_from([1, 99]), 70)),
        path=draw(mostly(st.just("sparse"), st.just("dense"), 75)),
    )


@st.composite
def case_strategy(draw, *, n: int | None = None, params: RefParams | None = None, generic: bool = False) -> Case:
    n = draw(st.integers(1, 12)) if n is None else n
    p = draw(params_strategy(generic=generic)) if params is None else params
    block = draw(st.integers(6000, 7000))
    cutoff_edge = block - p.activity_cutoff
    last_update = [draw(mostly(st.integers(block - 50, block), st.one_of(
        st.integers(cutoff_edge - 2, cutoff_edge + 2), st.integers(0, block)), 75)) for _ in range(n)]
    last_tempo = max(0, block - p.tempo)
    registration = [draw(mostly(st.integers(0, 100), st.one_of(
        st.integers(0, block), st.sampled_from([last_tempo, max(0, last_tempo - 1), last_update[j],
                                                max(0, last_update[j] - 1)])), 75)) for j in range(n)]
    if generic:
        # Nonzero stakes within a factor 1000 of each other: the I32F32 normalised stake keeps >= 22
        # significant bits, so float and fixed point differ by rounding only (a stake of a few ulps of
        # the total is legitimately quantised by the chain, e.g. 27/31 instead of 0.8466).
        stake = draw(st.lists(mostly(st.integers(10**6, 10**9), st.just(0), 75), min_size=n, max_size=n))
    else:
        stake = draw(st.lists(stakes, min_size=n, max_size=n))
    present = draw(mostly(st.none(), st.lists(st.lists(mostly(st.just(True), st.just(False), 70), min_size=n,
                                                       max_size=n), min_size=n, max_size=n), 60))
    previous = draw(mostly(st.lists(u16, min_size=n, max_size=n), st.none(), 60))
    return Case(
        weights=draw(st.lists(st.lists(generic_weight_cell if generic else weight_cell, min_size=n, max_size=n),
                              min_size=n, max_size=n)),
        stake=stake,
        last_update=last_update,
        block_at_registration=registration,
        validator_permit=draw(st.lists(mostly(st.just(True), st.just(False), 75), min_size=n, max_size=n)),
        bonds=draw(st.lists(st.lists(mostly(u16, st.just(0), 60), min_size=n, max_size=n), min_size=n, max_size=n)),
        block=block,
        owner_uid=draw(st.integers(-1, n - 1)),
        params=p,
        emission=draw(mostly(st.just(10**9), st.integers(0, 2**40), 60)),
        previous_consensus=previous,
        weights_present=present,
    )


# --------------------------------------------------------------------------------------------------
# Exact mode: bit for bit
# --------------------------------------------------------------------------------------------------


def _assert_exact(result: Any, ref: dict, case: Case, index: tuple = ()) -> None:
    def got(name: str) -> list:
        return _ints(_field(result, name)[index] if index else _field(result, name))

    for name in U16_FIELDS + WEI_FIELDS:
        assert got(name) == ref[name], f"{name}: {got(name)} != reference {ref[name]}\n{case}"
    assert got("stake_weight") == ref["stake_weight"], f"stake_weight\n{case}"
    for name in ("consensus", "incentive", "dividends", "validator_trust", "stake", "active_stake"):
        key = "stake_weight_float" if name == "stake" else f"{name}_float"
        floats = (_field(result, key)[index] if index else _field(result, key)).tolist()
        bits = ref[f"{name}_bits"]
        assert floats == [b / 2**32 for b in bits], f"{key}: {floats} != {[b / 2**32 for b in bits]}\n{case}"
    assert got("active") == [not x for x in ref["inactive"]], f"active\n{case}"
    assert got("bonds") == ref["bonds"], f"bonds: {got('bonds')} != reference {ref['bonds']}\n{case}"
    assert got("validator_permit") == ref["validator_permit"], f"validator_permit\n{case}"
    dust = _ints(_field(result, "dust")[index] if index else _field(result, "dust"))
    assert dust in (ref["dust"], ref["payout_dust"]), f"dust {dust} vs {ref['dust']}/{ref['payout_dust']}\n{case}"


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case_strategy())
def test_exact_epoch_matches_reference_bit_for_bit(case: Case) -> None:
    ref = case.reference()
    _label_branches(case, ref)
    _assert_exact(_run([case]), ref, case)


def _label_branches(case: Case, ref: dict) -> None:
    """hypothesis ``event``s naming the epoch branches an example exercises (``--hypothesis-show-statistics``)."""
    p = case.params
    consensus_nonzero = any(ref["consensus_bits"])
    event(f"yuma3={p.yuma3} liquid_alpha={p.liquid_alpha and p.yuma3} consensus_nonzero={consensus_nonzero}")
    if p.yuma3 and p.liquid_alpha:
        event(f"liquid alpha mode={p.liquid_alpha_consensus_mode} previous_given={case.previous_consensus is not None}")
    event("zero-emission fallback to stake" if not any(ref["incentive_bits"]) and not any(ref["dividends_bits"])
          else "incentive/dividends paid")
    event(f"bonds_penalty={'0' if p.bonds_penalty == 0 else '1' if p.bonds_penalty == 65535 else 'mid'}")
    if any(any(row) for row in ref["bonds"]):
        event("new bonds nonzero")


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], max_examples=15)
@given(st.data())
def test_exact_batch_equals_loop_of_singles(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 8))
    params = data.draw(params_strategy())
    cases = [data.draw(case_strategy(n=n, params=params)) for _ in range(3)]
    emission = cases[0].emission
    for c in cases:
        c.emission = emission
    if len({c.previous_consensus is None for c in cases}) > 1:
        for c in cases:
            c.previous_consensus = None
    result = _run(cases)
    for b, case in enumerate(cases):
        _assert_exact(result, case.reference(), case, (b,))


def _pad(rows: list, n: int, fill: Any) -> list:
    """Pad a per-uid list, or an n x n grid, to size n with ``fill``."""
    if rows and isinstance(rows[0], list):
        return [r + [fill] * (n - len(r)) for r in rows] + [[fill] * n for _ in range(n - len(rows))]
    return rows + [fill] * (n - len(rows))


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], max_examples=15)
@given(st.data())
def test_exact_padded_batch_of_different_sizes_matches_reference(data: st.DataObject) -> None:
    """Subnets of different sizes in one padded batch (``n_valid``): each equals its reference alone."""
    params = data.draw(params_strategy())
    cases = [data.draw(case_strategy(params=params)) for _ in range(3)]
    n = max(len(c.stake) for c in cases)
    emission = cases[0].emission
    use_prev = all(c.previous_consensus is not None for c in cases)
    use_present = any(c.weights_present is not None for c in cases)
    state = yuma.SubnetState(
        weights=torch.tensor([_pad(c.weights, n, 0) for c in cases]),
        stake=torch.tensor([_pad(c.stake, n, 0) for c in cases]),
        last_update=torch.tensor([_pad(c.last_update, n, 0) for c in cases]),
        block_at_registration=torch.tensor([_pad(c.block_at_registration, n, 0) for c in cases]),
        validator_permit=torch.tensor([_pad(c.validator_permit, n, False) for c in cases]),
        bonds=torch.tensor([_pad(c.bonds, n, 0) for c in cases]),
        block=torch.tensor([c.block for c in cases]),
        owner_uid=torch.tensor([c.owner_uid for c in cases]),
        n_valid=torch.tensor([len(c.stake) for c in cases]),
        weights_present=torch.tensor([_pad(c.weights_present or [[True] * len(c.stake)] * len(c.stake), n, False)
                                      for c in cases]) if use_present else None,
        previous_consensus=torch.tensor([_pad(c.previous_consensus, n, 0) for c in cases]) if use_prev else None,
    )
    result = yuma.epoch(state, _yuma_params(params), emission)
    for b, case in enumerate(cases):
        case.emission = emission
        if not use_prev:
            case.previous_consensus = None
        ref = case.reference()
        m = len(case.stake)
        for name in U16_FIELDS + WEI_FIELDS + ("stake_weight", "validator_permit"):
            got = _ints(_field(result, name)[b])
            assert got[:m] == ref[name], f"{name}[{b}]: {got[:m]} != {ref[name]}\n{case}"
            assert not any(got[m:]), f"{name}[{b}] padding not zero: {got[m:]}"
        bonds = _ints(_field(result, "bonds")[b])
        assert [row[:m] for row in bonds[:m]] == ref["bonds"], f"bonds[{b}]\n{case}"
        assert _ints(_field(result, "dust")[b]) in (ref["dust"], ref["payout_dust"])


def _silence(case: Case, silent: list[bool]) -> Case:
    """The case with the weights and bonds rows of the ``silent`` uids emptied (their stake kept):
    validators that hold a permit but set no weights, which the epoch leaves out of its matrices."""
    n = len(case.stake)
    weights = [[0] * n if quiet else row for row, quiet in zip(case.weights, silent)]
    bonds = [[0] * n if quiet else row for row, quiet in zip(case.bonds, silent)]
    return dataclasses.replace(case, weights=weights, bonds=bonds)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_exact_epoch_with_silent_validators_matches_reference(data: st.DataObject) -> None:
    """Staked, permitted uids with empty weights and bonds rows (the epoch computes on the other
    rows only and lets their stake vote 0 in the consensus): still the reference's bits, kappa
    edges included."""
    case = data.draw(case_strategy())
    n = len(case.stake)
    silent = data.draw(st.lists(mostly(st.booleans(), st.just(True), 50), min_size=n, max_size=n))
    case = _silence(case, silent)
    event(f"silent uids: {sum(silent)} of {n}")
    _assert_exact(_run([case]), case.reference(), case)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], max_examples=25)
@given(st.data())
def test_exact_batch_with_different_silent_validators_equals_reference(data: st.DataObject) -> None:
    """Subnets with different numbers of rows left to compute, in one batch: each equals its reference."""
    n = data.draw(st.integers(2, 10))
    params = data.draw(params_strategy())
    cases = []
    for _ in range(3):
        case = data.draw(case_strategy(n=n, params=params))
        silent = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
        cases.append(dataclasses.replace(_silence(case, silent), emission=10**9, previous_consensus=None))
    result = _run(cases)
    for b, case in enumerate(cases):
        _assert_exact(result, case.reference(), case, (b,))


@pytest.mark.cuda
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], max_examples=20)
@given(case_strategy())
def test_exact_epoch_on_cuda_matches_reference(case: Case) -> None:
    """The exact path on a CUDA device gives the reference's (= the chain's) bits too."""
    state, extra = _state([case])
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if isinstance(value, torch.Tensor):
            setattr(state, f.name, value.cuda())
    result = yuma.epoch(state, _yuma_params(case.params), case.emission, **extra)
    _assert_exact(dataclasses.replace(result, **{f.name: torch.as_tensor(getattr(result, f.name)).cpu()
                                                 for f in dataclasses.fields(result)}), case.reference(), case)


def test_exact_epoch_defaults_on_a_fixed_subnet() -> None:
    """The chain's ``test_bonds`` first epoch, through the tensor API (a regression anchor)."""
    n = 8
    weights = [[0] * n for _ in range(n)]
    for i in range(4):
        weights[i][4:8] = [16383, 32767, 49149, 65535]
    case = Case(weights, [1, 2, 3, 4, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0], [0] * n, [True] * 4 + [False] * 4,
                [[0] * n for _ in range(n)], 1, -1, RefParams(tempo=1, max_allowed_validators=n), 10**9, None, None)
    ref = case.reference()
    assert ref["emission"] == [49999998, 99999999, 150000000, 200000001, 49998779, 100000610, 149996337, 200004272]
    _assert_exact(_run([case]), ref, case)


def _checked_epoch(*args: Any) -> dict:
    """``reference_epoch``'s signature: run both implementations, assert equal bits, return the reference."""
    case = Case(*args)
    ref = case.reference()
    _assert_exact(_run([case]), ref, case)
    return ref


def test_chain_test_bonds_replayed_through_the_tensor_epoch() -> None:
    """``tests/epoch/bonds.rs::test_bonds`` (8 epochs, original Yuma), both implementations in lockstep."""
    n = 8
    chain = ChainSim(n, [1, 2, 3, 4, 0, 0, 0, 0], 0, RefParams(tempo=1, max_allowed_validators=n),
                     epoch_fn=_checked_epoch)
    chain.epoch()
    chain.block = 1
    for uid in range(4):
        chain.set_weights(uid, [4, 5, 6, 7], [16383, 32767, 49149, 65535])
    schedule = {1: (0, [0], [65535]), 2: (1, [1], [65535]), 3: (2, [2], [65535]), 4: (2, [7], [65535])}
    for block in range(1, 9):
        chain.block = block
        chain.epoch()
        if block in schedule:
            chain.set_weights(*schedule[block])
    assert [chain.bonds[i][7] for i in range(4)] == [7363, 16549, 49150, 65535]  # the trace's last emaB


@pytest.mark.parametrize("mode", MODES)
def test_chain_yuma3_liquid_alpha_scenario_replayed_through_the_tensor_epoch(mode: str) -> None:
    """``tests/epoch/yuma_3.rs::test_yuma_3_kappa_moves_first`` in lockstep, for each consensus mode."""
    params = RefParams(tempo=1, bonds_penalty=65535 if mode == "auto" else 0, bonds_moving_average=975_000,
                       kappa=32767, liquid_alpha=True, alpha_low=6553, alpha_high=19660, yuma3=True,
                       max_allowed_validators=3, liquid_alpha_consensus_mode=mode)
    chain = ChainSim(5, [8, 1, 1, 0, 0], 1, params, epoch_fn=_checked_epoch)
    chain.block = 2
    chain.epoch()
    schedule = {0: [[65535, 0]] * 3, 1: [[0, 65535], [65535, 0], [65535, 0]],
                2: [[0, 65535], [0, 65535], [65535, 0]], 3: [[0, 65535]] * 3}
    for epoch_index in range(6):
        for uid, row in enumerate(schedule.get(epoch_index, [])):
            chain.set_weights(uid, [3, 4], row)
        chain.block += 1
        chain.epoch()


SNAPSHOT = "/work/shared/data/sn15_block4769998.npz"


@pytest.mark.parametrize("yuma3", [False, True])
def test_real_subnet_snapshot_three_epochs_in_lockstep(yuma3: bool) -> None:
    """Subnet 15 at block 4,769,998 (256 uids): three chained epochs, tensor == reference bit for bit.

    The snapshot holds float stake (TAO) and float weight rows; they enter as the chain would hold them:
    stake in rao (``round(S * 1e9)``) and each row max-upscaled to u16 (``round(w / max(w) * 65535)``).
    """
    np = pytest.importorskip("numpy")
    try:
        data = np.load(SNAPSHOT)
    except FileNotFoundError:
        pytest.skip(f"snapshot {SNAPSHOT} not available")
    weights = data["W"].astype(np.float64)
    row_max = weights.max(axis=1, keepdims=True)
    row_max[row_max == 0] = 1.0
    weights_u16 = np.floor(weights / row_max * 65535 + 0.5).astype(np.int64)
    stake = [int(round(float(s) * 1e9)) for s in data["S"].astype(np.float64)]
    n, block = len(stake), int(data["block"])
    params = RefParams(yuma3=yuma3, liquid_alpha=yuma3, bonds_penalty=0 if yuma3 else 65535)
    chain = ChainSim(n, stake, 0, params, epoch_fn=_checked_epoch)
    chain.weights = weights_u16.tolist()
    chain.present = [[True] * n for _ in range(n)]
    chain.last_update = [block] * n
    for k in range(3):
        chain.block = block + k * params.tempo
        chain.last_update = [chain.block] * n
        out = chain.epoch()
    assert sum(out["validator_permit"]) == 128
    assert any(out["consensus"]) and any(out["dividends"])


# --------------------------------------------------------------------------------------------------
# Fast mode: within float tolerance
# --------------------------------------------------------------------------------------------------


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case_strategy(generic=True))
def test_fast_epoch_within_tolerance_of_reference(case: Case) -> None:
    ref = case.reference()
    result = _run([case], exact=False)
    for name in U16_FIELDS:
        got = _ints(_field(result, name))
        assert all(abs(a - b) <= 3 for a, b in zip(got, ref[name])), f"{name}: {got} vs {ref[name]}\n{case}"
    got_bonds = _ints(_field(result, "bonds"))
    for row_g, row_r in zip(got_bonds, ref["bonds"]):
        assert all(abs(a - b) <= 3 for a, b in zip(row_g, row_r)), f"bonds: {got_bonds} vs {ref['bonds']}\n{case}"
    assert _ints(_field(result, "validator_permit")) == ref["validator_permit"]
    tol = 1e-6 * case.emission + 2
    for name in WEI_FIELDS:
        got = _ints(_field(result, name))
        assert all(abs(a - b) <= tol for a, b in zip(got, ref[name])), f"{name}: {got} vs {ref[name]}\n{case}"


# --------------------------------------------------------------------------------------------------
# payout="exact": the dust is handed out
# --------------------------------------------------------------------------------------------------


def _pre_floor_shares(ref: dict, case: Case) -> tuple[list[Fraction], list[Fraction]]:
    """The chain's server / validator shares before its floor: ``bits * E / 2**32`` (exact rationals)."""
    from tests.chain import yuma_reference as R

    inc, div = ref["incentive_bits"], ref["dividends_bits"]
    total = sum(R.sat_add(a, b) for a, b in zip(inc, div))
    if total == 0:
        fallback = ref["stake_bits"] if sum(ref["active_stake_bits"]) == 0 else ref["active_stake_bits"]
        server_bits, validator_bits = [0] * len(inc), list(fallback)
    else:
        server_bits = [R.safe_div(v, total) for v in inc]
        validator_bits = [R.safe_div(v, total) for v in div]
    scale = Fraction(case.emission, 1 << 32)
    return [b * scale for b in server_bits], [b * scale for b in validator_bits]


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case_strategy())
def test_exact_payout_hands_out_the_dust(case: Case) -> None:
    ref = case.reference()
    result = _run([case], payout="exact")
    server = _ints(_field(result, "server_emission"))
    validator = _ints(_field(result, "validator_emission"))
    assert min(server + validator, default=0) >= 0
    shares_s, shares_v = _pre_floor_shares(ref, case)
    total_share = sum(shares_s) + sum(shares_v)
    if total_share == 0:
        return  # nothing to apportion (no stake at all): there is no share to follow
    assert sum(server) + sum(validator) == case.emission, f"{sum(server) + sum(validator)} != {case.emission}"
    assert _ints(_field(result, "emission")) == [a + b for a, b in zip(server, validator)]
    assert int(_field(result, "dust")) == 0
    # The I32F32 proportions lose < 1 ulp each, so the shares fall short of E by less than 2n ulps * E.
    slack = Fraction(2 * len(server) * case.emission, 1 << 32)
    for got, share in zip(server + validator, shares_s + shares_v):
        assert share - 1 - slack <= got <= share + 1 + slack, f"{got} vs share {float(share)}\n{case}"
