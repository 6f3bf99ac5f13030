"""Commit-reveal weight masking and bond reset against the reference (``tests/chain/yuma_reference.py``).

The chain drops validator i's weight on uid j when commit-reveal is on and i's earliest active commit
predates j's (re)registration (sparse path only), and removes uid j's column from every stored bonds row
when ``BondsResetOn`` holds and j's hotkey publishes a metadata commitment. Random small subnets: exact
mode bit for bit, fast mode within the tolerance of ``test_epoch_vs_reference``; and the reset is an
event, applied once by ``run_epochs``.
"""

from __future__ import annotations

import dataclasses

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mdt_tensor as mt
from tests.chain.test_epoch_vs_reference import (
    U16_FIELDS, Case, _assert_exact, _field, _ints, _state, _yuma_params, case_strategy, mostly,
)
from tests.chain.yuma_reference import U64_MAX, RefParams, do_reset_bonds, reference_epoch

SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], max_examples=25)


@st.composite
def features_case(draw, *, generic: bool = False) -> tuple[Case, list[int | None], list[bool]]:
    """A case with both features drawn on or off, commit blocks around the registration blocks, a reset mask."""
    case = draw(case_strategy(generic=generic))
    params = dataclasses.replace(case.params, commit_reveal_weights_enabled=draw(mostly(st.just(True), st.just(False))),
                                 bonds_reset_enabled=draw(mostly(st.just(True), st.just(False))))
    case = dataclasses.replace(case, params=params)
    n = len(case.stake)
    near = st.sampled_from(sorted(set(case.block_at_registration))).flatmap(
        lambda r: st.integers(max(0, r - 1), r + 1))
    commits = draw(st.lists(mostly(near, st.one_of(st.none(), st.integers(0, case.block)), 60), min_size=n, max_size=n))
    reset = draw(st.lists(mostly(st.just(False), st.just(True), 70), min_size=n, max_size=n))
    return case, commits, reset


def _reference(case: Case, commits: list[int | None], reset: list[bool]) -> dict:
    bonds = case.bonds
    for uid, flag in enumerate(reset):
        if flag:
            bonds = do_reset_bonds(bonds, uid, case.params.bonds_reset_enabled)
    return reference_epoch(case.weights, case.stake, case.last_update, case.block_at_registration,
                           case.validator_permit, bonds, case.block, case.owner_uid, case.params, case.emission,
                           case.previous_consensus, case.weights_present, [U64_MAX if c is None else c for c in commits])


def _run(case: Case, commits: list[int | None], reset: list[bool], exact: bool) -> mt.yuma.EpochResult:
    state, extra = _state([case])
    state = dataclasses.replace(state, commit_block=torch.tensor([-1 if c is None else c for c in commits]),
                                bonds_reset=torch.tensor(reset))
    return mt.yuma.epoch(state, _yuma_params(case.params), case.emission, exact=exact, **extra)


@SETTINGS
@given(features_case())
def test_exact_epoch_with_commit_reveal_and_bonds_reset_matches_reference(drawn: tuple) -> None:
    case, commits, reset = drawn
    _assert_exact(_run(case, commits, reset, exact=True), _reference(case, commits, reset), case)


@SETTINGS
@given(features_case(generic=True))
def test_fast_epoch_with_commit_reveal_and_bonds_reset_within_tolerance(drawn: tuple) -> None:
    case, commits, reset = drawn
    ref, result = _reference(case, commits, reset), _run(case, commits, reset, exact=False)
    for name in U16_FIELDS:
        got = _ints(_field(result, name))
        assert all(abs(a - b) <= 3 for a, b in zip(got, ref[name])), f"{name}: {got} vs {ref[name]}\n{case}"
    assert _ints(_field(result, "validator_permit")) == ref["validator_permit"]


def test_commit_before_reregistration_drops_the_weight_on_the_new_uid() -> None:
    # Validator 0 committed at block 90; uid 2 was re-registered at block 95: its weight on uid 2 is dropped.
    state = mt.yuma.SubnetState(
        weights=[[0, 30000, 30000], [0, 0, 0], [0, 0, 0]], stake=[100, 0, 0], last_update=[100, 0, 0],
        block_at_registration=[0, 0, 95], block=100, commit_block=[90, -1, -1])
    on = mt.yuma.epoch(state, mt.yuma.YumaParams(commit_reveal_weights_enabled=True))
    off = mt.yuma.epoch(state, mt.yuma.YumaParams())
    assert on.incentive.tolist() == [0, 65535, 0]
    assert off.incentive.tolist() == [0, 32767, 32767]


def test_run_epochs_applies_a_bond_reset_once() -> None:
    w = torch.tensor([[0, 65535], [0, 65535]])
    start = mt.yuma.SubnetState(weights=w, stake=[10, 30], block=1000, bonds=[[0, 40000], [0, 40000]],
                                validator_permit=[True, True], bonds_reset=[False, True])
    params = mt.yuma.YumaParams(bonds_reset_enabled=True)
    results, final = mt.yuma.run_epochs(start, torch.stack([w, w]), params)
    sim = RefParams(bonds_reset_enabled=True)
    bonds = do_reset_bonds([[0, 40000], [0, 40000]], 1, sim.bonds_reset_enabled)
    permits = [True, True]
    for t in range(2):
        ref = reference_epoch(w.tolist(), [10, 30], [1000 + 360 * t] * 2, [0, 0], permits, bonds, 1000 + 360 * t,
                              params=sim)
        assert results.bonds[t].tolist() == ref["bonds"]
        bonds, permits = ref["bonds"], ref["validator_permit"]
    assert final.bonds_reset is None
