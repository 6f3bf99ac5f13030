"""Replay over many blocks: snapshots ordered by block become consecutive epochs.

``read_series`` reads files and folders and orders the snapshots by block. ``replay`` runs one
epoch per snapshot with that snapshot's weights, stake and activity, carrying the previous
epoch's bonds, validator permits and consensus (as the chain carries its storage). A uid whose
hotkey differs from the previous snapshot's (or that is new) was re-registered: its bonds row
and column start from zero and, unless the file says when, it counts as registered the block
after the previous snapshot. Files without hotkeys reveal only new uids, not replaced ones. Where a file holds the chain's outputs, the replay reports how far
its own are from them, in u16 units, per field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import mdt_tensor as mt

from .errors import SnapshotError
from .readers import read_snapshot
from .snapshot import Snapshot

__all__ = ["snapshot_files", "order_series", "read_series", "replay", "ReplayResult", "FieldAgreement", "demo_series", "SNAPSHOT_SUFFIXES"]

#: The file names a folder is searched for.
SNAPSHOT_SUFFIXES = (".npz", ".pt", ".pth", ".pkl", ".pickle", ".json")

#: The outputs compared with a file's stored values (the epoch no longer computes trust or ranks).
_COMPARED = ("incentive", "dividends", "consensus", "validator_trust")


def snapshot_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The snapshot files ``paths`` name: files as given, folders expanded to their snapshots (sorted)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SNAPSHOT_SUFFIXES and not p.name.startswith("."))
            if not found:
                raise SnapshotError(f"{path}: the folder holds no snapshot ({', '.join(SNAPSHOT_SUFFIXES)})")
            files.extend(found)
        else:
            files.append(path)
    if not files:
        raise SnapshotError("no snapshot given")
    return files


def read_series(paths: str | Path | Iterable[str | Path]) -> list[Snapshot]:
    """Read snapshots (files, or folders of ``.npz``/``.pt``/``.pkl``/``.json``) ordered by block.

    Raises:
        SnapshotError: a bad file; two snapshots of the same block; snapshots of different
            subnets; a series of several files where one has no block.
    """
    return order_series([read_snapshot(path) for path in snapshot_files(paths)])


def order_series(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """Snapshots already read, checked to form one series and ordered by block (see :func:`read_series`)."""
    snapshots = list(snapshots)
    if len(snapshots) > 1:
        for snap in snapshots:
            if snap.block is None:
                raise SnapshotError(f"{snap.path}: has no block, so it cannot be ordered in a series")
        netuids = {s.netuid for s in snapshots if s.netuid is not None}
        if len(netuids) > 1:
            raise SnapshotError(f"the series mixes subnets {sorted(netuids)}; replay one subnet at a time")
        snapshots.sort(key=lambda s: s.block or 0)
        for a, b in zip(snapshots, snapshots[1:]):
            if a.block == b.block:
                raise SnapshotError(f"{a.path} and {b.path} are both block {a.block}")
    return snapshots


@dataclass(frozen=True)
class FieldAgreement:
    """How far the replay is from the chain's stored values of one output, in u16 units.

    Attributes:
        field: ``incentive``, ``dividends``, ``consensus`` or ``validator_trust``.
        epochs: epochs whose file held the field; values: uid values compared.
        max_u16, mean_u16: largest and mean absolute difference.
        worst_epoch, worst_uid: where the largest difference is (the first such place).
    """

    field: str
    epochs: int
    values: int
    max_u16: int
    mean_u16: float
    worst_epoch: int
    worst_uid: int


@dataclass
class ReplayResult:
    """What :func:`replay` ran and found.

    Attributes:
        snapshots: the series, in block order (epoch ``t`` ran on ``snapshots[t]``).
        results: one :class:`mdt_tensor.yuma.EpochResult` per epoch (torch tensors, ``(n_t,)``).
        states: the state each epoch ran on (with the carried bonds, permits and consensus).
        reregistered: per epoch, the uids treated as newly registered (empty for the first).
        agreement: per compared field present in the files, the distance to the chain's values.
        params, emission, exact, payout: how it ran (``emission`` in wei per epoch).
    """

    snapshots: list[Snapshot]
    results: list[Any]
    states: list[Any]
    reregistered: list[list[int]]
    agreement: dict[str, FieldAgreement]
    params: mt.yuma.YumaParams
    emission: int
    exact: bool
    payout: str = "chain"
    extra: dict[str, Any] = field(default_factory=dict)


def _moved(state: mt.yuma.SubnetState, device: torch.device | None) -> mt.yuma.SubnetState:
    if device is None:
        return state
    moved = {name: value.to(device) if isinstance(value, Tensor) else value for name, value in vars(state).items()}
    return mt.yuma.SubnetState(**moved)


def _grow(t: Tensor, n: int, *, matrix: bool = False) -> Tensor:
    """``t`` zero-padded from ``(m,)`` / ``(m, m)`` to ``(n,)`` / ``(n, n)``."""
    m = t.shape[-1]
    if m == n:
        return t.clone()
    out = torch.zeros((n, n) if matrix else (n,), dtype=t.dtype, device=t.device)
    if matrix:
        out[:m, :m] = t
    else:
        out[:m] = t
    return out


def _fresh_uids(previous: Snapshot, current: Snapshot) -> Tensor:
    """``(n,)`` bool: uids new since ``previous`` or whose hotkey changed."""
    m, n = previous.n, current.n
    fresh = torch.zeros(n, dtype=torch.bool)
    fresh[m:] = True
    if previous.hotkeys is not None and current.hotkeys is not None:
        changed = [a != b for a, b in zip(previous.hotkeys, current.hotkeys[:m])]
        fresh[:m] = torch.tensor(changed, dtype=torch.bool)
    return fresh


def _carry(state: mt.yuma.SubnetState, previous: Snapshot, current: Snapshot, result: Any) -> tuple[mt.yuma.SubnetState, list[int]]:
    m, n = previous.n, current.n
    if n < m:
        raise SnapshotError(f"{current.path}: has {n} uids but the snapshot before it ({previous.path}) had {m}; uids never disappear")
    device = torch.as_tensor(state.weights).device
    fresh = _fresh_uids(previous, current).to(device)
    bonds = _grow(torch.as_tensor(result.bonds), n, matrix=True)
    bonds[fresh, :] = 0
    bonds[:, fresh] = 0
    changes: dict[str, Any] = {
        "bonds": bonds,
        "validator_permit": _grow(torch.as_tensor(result.validator_permit), n),
        "previous_consensus": _grow(torch.as_tensor(result.consensus), n),
    }
    if state.block_at_registration is None and previous.block is not None and bool(fresh.any()):
        registration = torch.zeros(n, dtype=torch.int64, device=device)
        registration[fresh] = previous.block + 1
        changes["block_at_registration"] = registration
    return dataclasses.replace(state, **changes), fresh.nonzero().flatten().tolist()


def _agreement(snapshots: Sequence[Snapshot], results: Sequence[Any]) -> dict[str, FieldAgreement]:
    found: dict[str, FieldAgreement] = {}
    for name in _COMPARED:
        epochs, values, total, worst, where = 0, 0, 0, -1, (0, 0)
        for t, (snap, result) in enumerate(zip(snapshots, results)):
            chain = snap.chain_outputs.get(name)
            if chain is None:
                continue
            diff = (torch.as_tensor(getattr(result, name)).cpu().to(torch.int64) - chain.to(torch.int64)).abs()
            epochs, values, total = epochs + 1, values + diff.numel(), total + int(diff.sum())
            top = int(diff.max())
            if top > worst:
                worst, where = top, (t, int(diff.argmax()))
        if epochs:
            found[name] = FieldAgreement(name, epochs, values, worst, total / values, where[0], where[1])
    return found


def replay(
    series: Sequence[Snapshot],
    params: mt.yuma.YumaParams | None = None,
    *,
    exact: bool = True,
    emission: int = 10**9,
    payout: str = "chain",
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> ReplayResult:
    """Run one epoch per snapshot, in order, carrying bonds, permits and consensus.

    Epoch ``t`` runs on ``series[t]``'s weights, stake, ``last_update`` and block; for ``t > 0``
    its bonds, validator permits and previous consensus are the outputs of epoch ``t - 1`` (a
    file's own bonds are used only for the first epoch), grown with zeros if the subnet grew,
    and the bonds row and column of every re-registered uid are zeroed (see the module
    docstring). Files may differ in ``n`` only by growing.

    Args:
        series: snapshots in block order (:func:`read_series`).
        params: hyperparameters (default: the chain's defaults).
        exact, payout, dtype: as in :func:`mdt_tensor.yuma.epoch`.
        emission: wei per epoch, an int in ``[0, 2**63)``.
        device: run the epochs there (the results stay there).

    Returns:
        :class:`ReplayResult`, with the agreement for each output the files hold.

    Example:
        >>> result = replay(demo_series(3, 8, seed=0), emission=1000, payout="exact")
        >>> [int(r.emission.sum()) for r in result.results]
        [1000, 1000, 1000]
    """
    snapshots = list(series)
    if not snapshots:
        raise SnapshotError("nothing to replay: the series is empty")
    params = params or mt.yuma.YumaParams()
    target = torch.device(device) if device is not None else None
    results: list[Any] = []
    states: list[Any] = []
    fresh_per_epoch: list[list[int]] = []
    for t, snap in enumerate(snapshots):
        state = _moved(snap.state, target)
        fresh: list[int] = []
        if t > 0:
            state, fresh = _carry(state, snapshots[t - 1], snap, results[-1])
        try:
            result = mt.yuma.epoch(state, params, emission, exact=exact, payout=payout, dtype=dtype)  # type: ignore[arg-type]
        except mt.MdtError as exc:
            raise SnapshotError(f"{snap.path or f'snapshot {t}'}: {exc}") from None
        results.append(result)
        states.append(state)
        fresh_per_epoch.append(fresh)
    return ReplayResult(
        snapshots=snapshots,
        results=results,
        states=states,
        reregistered=fresh_per_epoch,
        agreement=_agreement(snapshots, results),
        params=params,
        emission=int(emission),
        exact=exact,
        payout=payout,
    )


def demo_series(count: int, uids: int, seed: int = 0, *, churn: float = 0.02, tempo: int = 360) -> list[Snapshot]:
    """A generated series of ``count`` snapshots of ``uids`` uids, one per tempo (deterministic).

    A quarter of the uids (at least 1) are validators with log-normal stake in rao that drifts a
    little each epoch; they score the miners by a shared quality plus noise and store rows
    max-upscaled to u16. Each step, about ``churn`` of the miners are replaced (new hotkey).

    Example:
        >>> series = demo_series(2, 8, seed=1)
        >>> [s.block for s in series], series[0].n
        ([1000000, 1000360], 8)
    """
    g = torch.Generator().manual_seed(seed)
    v = max(1, uids // 4)
    validator = torch.arange(uids) < v
    stake = torch.exp(torch.randn(uids, generator=g, dtype=torch.float64) * 1.5 + 9.0) * 10**9
    stake = torch.where(validator, stake, stake * 1e-4)
    generation = torch.zeros(uids, dtype=torch.int64)
    quality = torch.rand(uids, generator=g, dtype=torch.float64)
    snapshots = []
    for t in range(count):
        block = 1_000_000 + t * tempo
        replaced = (torch.rand(uids, generator=g) < churn) & ~validator if t else torch.zeros(uids, dtype=torch.bool)
        generation += replaced.to(torch.int64)
        quality = torch.where(replaced, torch.rand(uids, generator=g, dtype=torch.float64), quality)
        stake = stake * (1 + 0.02 * (2 * torch.rand(uids, generator=g, dtype=torch.float64) - 1))
        score = (quality + 0.3 * torch.rand(uids, uids, generator=g, dtype=torch.float64)) * (~validator)
        score = score * validator.view(-1, 1)
        top = score.amax(-1, keepdim=True)
        weights = torch.where(top > 0, torch.floor(score / torch.where(top > 0, top, 1) * 65535 + 0.5), 0)
        state = mt.yuma.SubnetState(
            weights=weights.to(torch.int64),
            stake=torch.floor(stake).to(torch.int64),
            last_update=block - torch.randint(0, 100, (uids,), generator=g),
            block=block,
        )
        hotkeys = [f"hk{uid}-{int(gen)}" for uid, gen in enumerate(generation)]
        snapshots.append(Snapshot(state=state, netuid=1, block=block, hotkeys=hotkeys))
    return snapshots
