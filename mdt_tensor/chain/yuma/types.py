"""What an epoch reads and returns: the hyperparameters, the subnet state and the result.

``YumaParams`` checks its fields when built (the chain's storage ranges); ``SubnetState`` and
``EpochResult`` are plain containers of arrays, checked by ``inputs._prepare`` when an epoch runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from ..._array import Array, as_tensor, is_array
from ..._constants import U16_MAX
from ..._validation import check_bool, check_choice, check_in_range, check_int, first_index
from ...errors import DTypeError, ValueRangeError

__all__ = ["YumaParams", "SubnetState", "EpochResult", "Path", "ConsensusMode", "Payout", "IntParam"]

#: A numeric hyperparameter: one int for the whole batch, or an int64 tensor of the batch shape.
IntParam = int | Tensor

Path = Literal["sparse", "dense"]
ConsensusMode = Literal["current", "previous", "auto"]
Payout = Literal["chain", "exact"]

#: The integer fields of YumaParams and their storage ranges, in the order they are checked.
_INT_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("kappa", 0, U16_MAX),
    ("bonds_penalty", 0, U16_MAX),
    ("alpha_low", 0, U16_MAX),
    ("alpha_high", 0, U16_MAX),
    ("bonds_moving_average", 0, 1_000_000),
    ("alpha_sigmoid_steepness", -(2**15), 2**15 - 1),
    ("activity_cutoff", 0, 2**62),
    ("max_allowed_validators", 0, U16_MAX),
    ("stake_threshold", 0, 2**62),
    ("tempo", 0, U16_MAX),
)


@dataclass(frozen=True)
class YumaParams:
    """A subnet's epoch hyperparameters, in the chain's storage units, with its defaults.

    Attributes:
        kappa: consensus majority as u16 (``kappa / 65535``; 32767 is 0.49999).
        bonds_penalty: u16; ``beta = bonds_penalty / 65535`` (65535: bonds use clipped weights).
        bonds_moving_average: per million; the bonds EMA uses ``alpha = 1 - bma / 1e6``.
        yuma3: Yuma 3 bonds (absolute proportions per validator-miner pair) instead of the original.
        liquid_alpha: Yuma 3 only: a per-cell EMA alpha from the chain's ``alpha_sigmoid``.
        alpha_low, alpha_high: liquid-alpha bounds as u16 (45875, 58982 are 0.7 and 0.9).
        alpha_sigmoid_steepness: i16; the sigmoid uses ``steepness / 100``.
        liquid_alpha_consensus_mode: which consensus the liquid alpha compares against:
            ``"current"`` (this epoch's), ``"previous"`` (``SubnetState.previous_consensus``) or
            ``"auto"`` (previous when ``bonds_penalty == 65535``, else current).
        activity_cutoff: blocks after the last weight update before a validator is inactive.
        max_allowed_validators: k of the top-k stake validator permits.
        stake_threshold: minimum raw stake (in the stake's unit) to count; the owner is exempt.
        tempo: blocks per epoch; the bonds of uids registered within the last ``tempo`` blocks
            are dropped (``last_tempo = block - tempo``).
        bonds_reset_enabled: the chain's ``BondsResetOn``: the bonds column of each uid in
            ``SubnetState.bonds_reset`` is removed before the epoch reads the bonds.
        commit_reveal_weights_enabled: commit-reveal is on: on the sparse path, validator i's
            weight on uid j is dropped when i's earliest active commit
            (``SubnetState.commit_block``) predates j's registration.
        path: ``"sparse"`` is the chain's production ``epoch_mechanism`` (the default);
            ``"dense"`` is its test-only ``epoch_dense_mechanism``, which masks the owner's
            self-weight too, does not exempt or force the owner, keeps the bonds rows of uids
            that never had a permit, and runs the Yuma 3 EMA over every cell
            (``docs/design/yuma-epoch.md``, "Sparse and dense").

    Per-element parameters: every integer field also accepts an integer array of the batch
    shape ``(*)`` (torch, numpy or a list), one value per subnet of the batch it runs on, so a
    grid of parameter sets runs as one batch (stored as an int64 tensor; checked against the
    batch shape when an epoch runs). A batch mixing parameters gives what each subnet gives
    alone (exact: bit for bit). ``yuma3``, ``liquid_alpha``, the consensus mode and ``path`` are
    shared by the batch.

    Integer fields accept Python and numpy integers (stored as Python ints); a wrong type raises
    :class:`~mdt_tensor.errors.DTypeError`, a value out of range or an unknown option string
    :class:`~mdt_tensor.errors.ValueRangeError`.

    Example:
        >>> YumaParams().kappa, YumaParams(yuma3=True).bonds_moving_average
        (32767, 900000)
    """

    kappa: IntParam = 32767
    bonds_penalty: IntParam = 65535
    bonds_moving_average: IntParam = 900_000
    yuma3: bool = False
    liquid_alpha: bool = False
    alpha_low: IntParam = 45875
    alpha_high: IntParam = 58982
    alpha_sigmoid_steepness: IntParam = 1000
    liquid_alpha_consensus_mode: ConsensusMode = "current"
    activity_cutoff: IntParam = 5000
    max_allowed_validators: IntParam = 128
    stake_threshold: IntParam = 0
    tempo: IntParam = 360
    path: Path = "sparse"
    bonds_reset_enabled: bool = False
    commit_reveal_weights_enabled: bool = False

    def __post_init__(self) -> None:
        for name, low, high in _INT_FIELDS:
            object.__setattr__(self, name, _check_int_param(getattr(self, name), f"YumaParams.{name}", low, high))
        bad = first_index(torch.as_tensor(self.alpha_low > self.alpha_high).reshape(-1))
        if bad is not None:
            raise ValueRangeError(
                f"Expected YumaParams.alpha_low <= alpha_high, but got {_at(self.alpha_low, bad[0])} > "
                f"{_at(self.alpha_high, bad[0])}" + (f" at element {bad[0]}." if self.per_element else ".")
            )
        for name in ("yuma3", "liquid_alpha", "bonds_reset_enabled", "commit_reveal_weights_enabled"):
            object.__setattr__(self, name, check_bool(getattr(self, name), f"YumaParams.{name}"))
        check_choice(self.liquid_alpha_consensus_mode, "YumaParams.liquid_alpha_consensus_mode",
                     ("current", "previous", "auto"))
        check_choice(self.path, "YumaParams.path", ("sparse", "dense"))

    @property
    def per_element(self) -> bool:
        """Whether any integer field holds one value per batch element."""
        return any(isinstance(getattr(self, name), Tensor) for name, _, _ in _INT_FIELDS)

    @classmethod
    def from_chain(cls, hyperparameters: Any, *, strict: bool = False) -> YumaParams:
        """The parameters from the SDK's ``SubnetHyperparameters`` names (a mapping or the SDK's dataclass).

        ``kappa``, ``bonds_moving_avg``, ``alpha_high``, ``alpha_low``, ``liquid_alpha_enabled``,
        ``alpha_sigmoid_steepness``, ``yuma_version``, ``activity_cutoff``, ``max_validators``,
        ``tempo``, ...: see :func:`mdt_tensor.io.hyperparams.params_from_chain`, which this calls.

        Example:
            >>> YumaParams.from_chain({"kappa": 32767, "yuma_version": 3}).yuma3
            True
        """
        from ...io.hyperparams import params_from_chain  # io builds on the epoch, not the other way

        return params_from_chain(hyperparameters, strict=strict)


def _check_int_param(value: Any, name: str, low: int, high: int) -> IntParam:
    """An int (Python, numpy, 0-d array) or an integer array of one value per batch element (int64 tensor)."""
    if not is_array(value) and not isinstance(value, (list, tuple)):
        return check_int(value, name, low=low, high=high)
    t, _ = as_tensor(value, name)
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise DTypeError(f"Expected `{name}` to hold integers, but got dtype {t.dtype}.")
    if t.ndim == 0:
        return check_int(int(t), name, low=low, high=high)
    check_in_range(t, name, low, high)
    return t.to(torch.int64)


def _at(value: IntParam, index: int) -> int:
    return int(value.reshape(-1)[index]) if isinstance(value, Tensor) and value.ndim else int(value)


@dataclass
class SubnetState:
    """What the chain holds for a subnet at the start of an epoch (optionally a batch of subnets).

    Leading batch dimensions ``*`` are subnets (or any grouping); ``n`` is the (padded) size.
    Arrays may be torch tensors, numpy arrays, CuPy arrays or Python lists.

    Attributes:
        weights: ``(*, n, n)`` integer u16 values; row i is what validator i stored.
        stake: ``(*, n)`` raw stake per uid, >= 0 (integer rao: exact; float: see ``epoch``).
        last_update: ``(*, n)`` block of each uid's last weight update; default: ``block``.
        block_at_registration: ``(*, n)`` block each uid was (re)registered; default: 0.
        validator_permit: ``(*, n)`` bool, the permits stored by the previous epoch. Default:
            the permits this stake earns (the steady state; a subnet whose permits have never
            been computed should pass all-False explicitly).
        bonds: ``(*, n, n)`` integer u16 stored bonds; default: zeros (no bonds yet).
        block: current block, an int or ``(*)``; default: the largest ``last_update`` (or 1).
        owner_uid: the subnet owner's uid, an int or ``(*)``; -1 means no owner.
        n_valid: ``(*)`` number of real uids per subnet (the rest is padding); default: n.
        weights_present: ``(*, n, n)`` bool, which cells the chain stores; default: all.
            Matters only for the sparse Yuma 3 liquid-alpha EMA, which drops absent cells
            (``docs/design/yuma-epoch.md``, "Sparse and dense").
        previous_consensus: ``(*, n)`` u16 consensus of the previous epoch, for
            ``liquid_alpha_consensus_mode`` previous/auto; default: none stored, and then the
            current consensus is used (as the chain does when nothing is stored).
        commit_block: ``(*, n)`` block of each uid's earliest still-active weight commit, -1 for
            none; read when ``commit_reveal_weights_enabled``. Default: no commits.
        bonds_reset: ``(*, n)`` bool, uids whose bonds column is reset before this epoch (the
            chain resets it when the uid's hotkey publishes a metadata commitment); read when
            ``bonds_reset_enabled``. Default: none. ``next_state`` and ``run_epochs`` clear it.

    Example:
        >>> state = SubnetState(weights=[[0, 65535], [65535, 0]], stake=[10, 30])
        >>> state.owner_uid
        -1
    """

    weights: Array
    stake: Array
    last_update: Array | None = None
    block_at_registration: Array | None = None
    validator_permit: Array | None = None
    bonds: Array | None = None
    block: Array | int | None = None
    owner_uid: Array | int = -1
    n_valid: Array | None = None
    weights_present: Array | None = None
    previous_consensus: Array | None = None
    commit_block: Array | None = None
    bonds_reset: Array | None = None


@dataclass
class EpochResult:
    """The outputs of one epoch, per uid, as the caller's array type.

    u16 fields are integer arrays holding ``floor(x * 65535)`` as the chain stores them; the
    ``*_float`` fields hold the same quantities as floats (exact mode: the I32F32 value).

    Attributes:
        server_emission, validator_emission: ``(*, n)`` int64 wei paid to uids as miners / validators.
        emission: ``(*, n)`` int64 per-uid total. With ``payout="chain"`` it is the chain's
            ``Emission`` storage item, ``floor(normalize(I + D) * E)``, which floors the combined
            share once and so can differ by 1 wei from ``server_emission + validator_emission``;
            with ``payout="exact"`` it is ``server_emission + validator_emission``.
        dust: ``(*)`` int64, the wei never paid: ``E - sum(server_emission + validator_emission)``
            (0 with ``payout="exact"``).
        consensus, incentive, dividends, validator_trust, stake_weight: ``(*, n)`` u16 values.
        consensus_float, incentive_float, dividends_float, validator_trust_float,
            stake_weight_float, active_stake_float: ``(*, n)`` floats.
        bonds: ``(*, n, n)`` u16 values stored for the next epoch.
        validator_permit: ``(*, n)`` bool, the new permits (stored for the next epoch).
        active: ``(*, n)`` bool, uids whose last update is within the activity cutoff.
    """

    server_emission: Array
    validator_emission: Array
    emission: Array
    dust: Array
    consensus: Array
    incentive: Array
    dividends: Array
    validator_trust: Array
    stake_weight: Array
    consensus_float: Array
    incentive_float: Array
    dividends_float: Array
    validator_trust_float: Array
    stake_weight_float: Array
    active_stake_float: Array
    bonds: Array
    validator_permit: Array
    active: Array
