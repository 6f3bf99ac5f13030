"""Each scenario of the library shows the behaviour it is named for (exact epoch, payout exact)."""

from __future__ import annotations

import pytest
import torch

import mdt_tensor as mt
from mdt_tensor.errors import ValueRangeError
from mdt_tensor.studio import SCENARIOS, run_scenarios, sweep
from mdt_tensor.studio import scenarios as sc

yuma = mt.yuma
PARAMS = {"original": yuma.YumaParams(), "yuma3": yuma.YumaParams(yuma3=True)}


def _run(scenario: sc.Scenario, params: yuma.YumaParams = yuma.YumaParams()) -> yuma.EpochResult:
    return sweep(scenario, {"kappa": [params.kappa]}, params=params, payout="exact").results[0]


def _validator_wei(result: yuma.EpochResult) -> torch.Tensor:
    return torch.as_tensor(result.validator_emission).sum(0)


@pytest.mark.parametrize("mode", list(PARAMS))
def test_copier_of_last_epochs_consensus_earns_less_than_an_honest_validator(mode: str) -> None:
    s = sc.copier(epochs=12)
    wei = _validator_wei(_run(s, PARAMS[mode]))
    honest = wei[s.groups["honest"]].to(torch.float64).mean()
    assert wei[s.groups["copier"][0]] < 0.99 * honest  # equal stakes: the copier's shortfall is its penalty


@pytest.mark.parametrize("mode", list(PARAMS))
def test_late_validator_loses_dividends_to_its_one_epoch_delay(mode: str) -> None:
    s = sc.late_validator(epochs=12)
    wei = _validator_wei(_run(s, PARAMS[mode]))
    assert wei[s.groups["late"][0]] < 0.99 * wei[s.groups["honest"]].to(torch.float64).mean()


def test_switch_all_at_once_moves_all_incentive_in_the_switch_epoch_and_keeps_dividends_equal() -> None:
    s = sc.switch_all_at_once(epochs=8, switch=4)
    r = _run(s)
    incentive = torch.as_tensor(r.incentive)
    old, new = s.groups["old_best"][0], s.groups["new_best"][0]
    assert incentive[:4, old].tolist() == [65535] * 4 and incentive[4:, new].tolist() == [65535] * 4
    per_validator = torch.as_tensor(r.validator_emission)[:, s.groups["validators"]]
    assert int((per_validator.amax(-1) - per_validator.amin(-1)).max()) <= 1  # equal stake, equal weights


def test_large_validator_switching_first_keeps_the_consensus_and_earns_above_its_stake() -> None:
    s = sc.large_validator_first(epochs=12, switch=3, delay=4, large_share=0.6)
    r = _run(s)
    trust = torch.as_tensor(r.validator_trust_float)
    small = s.groups["small"]
    assert bool((trust[3:7, small] < 0.01).all())  # the small ones, still on the old miner, are clipped out
    assert bool((trust[7:, small] > 0.99).all())
    wei = _validator_wei(r).to(torch.float64)
    assert wei[0] / wei.sum() > 0.6


def test_stake_moving_between_validators_moves_their_dividends_and_conserves_the_total() -> None:
    s = sc.stake_moves(epochs=10)
    r = _run(s)
    wei = torch.as_tensor(r.validator_emission)
    # bonds follow the stake with a lag: the shift shows, smaller than the stake shift (x0.1 and x1.9)
    assert wei[-1, 0] < wei[0, 0] * 0.75 and wei[-1, 1] > wei[0, 1] * 1.25
    assert bool((wei[1:, 0] <= wei[:-1, 0]).all()) and bool((wei[1:, 1] >= wei[:-1, 1]).all())
    paid = torch.as_tensor(r.validator_emission).sum(-1) + torch.as_tensor(r.server_emission).sum(-1)
    assert paid.tolist() == [10**9] * 10


@pytest.mark.parametrize("commit_reveal", [False, True])
def test_reused_uid_gets_nothing_in_its_first_epoch_and_no_inherited_bonds(commit_reveal: bool) -> None:
    s = sc.miner_reregistered(epochs=8, at=4)
    params = yuma.YumaParams(commit_reveal_weights_enabled=commit_reveal, bonds_reset_enabled=True)
    r = _run(s, params)
    uid = s.groups["reused"][0]
    incentive, bonds = torch.as_tensor(r.incentive), torch.as_tensor(r.bonds)
    assert int(incentive[3, uid]) > 0 and int(incentive[4, uid]) == 0
    assert int(bonds[4, :, uid].sum()) == 0
    assert 0 < int(incentive[5:, uid].max()) < int(incentive[3, uid])  # the weak newcomer, scored anew


def test_commit_reveal_drops_weights_committed_before_the_reused_uid_registered() -> None:
    # In miner_reregistered each validator's active commit is a tempo before its update: with
    # commit-reveal on, the epoch after the re-registration still drops their weights on the uid.
    s = sc.miner_reregistered(epochs=8, at=4)
    uid = s.groups["reused"][0]
    on = torch.as_tensor(_run(s, yuma.YumaParams(commit_reveal_weights_enabled=True)).incentive)
    off = torch.as_tensor(_run(s, yuma.YumaParams()).incentive)
    assert int(off[5, uid]) > 0 and int(on[5, uid]) == 0


def test_winner_takes_all_minority_pick_is_clipped_and_minority_validators_earn_nothing() -> None:
    s = sc.winner_takes_all(epochs=4)
    r = _run(s)
    assert torch.as_tensor(r.incentive)[:, s.groups["minority_pick"][0]].tolist() == [0] * 4
    assert int(torch.as_tensor(r.validator_trust)[:, s.groups["minority"]].max()) == 0
    assert int(_validator_wei(r)[s.groups["minority"]].sum()) == 0


def test_run_scenarios_runs_the_whole_library_against_a_grid() -> None:
    out = run_scenarios({"kappa": [0.5, 0.6]})
    assert set(out) == set(SCENARIOS)
    for name, result in out.items():
        assert len(result.summaries()) == 2, name  # type: ignore[attr-defined]
    with pytest.raises(ValueRangeError):
        run_scenarios({"kappa": [0.5]}, ["nope"])
