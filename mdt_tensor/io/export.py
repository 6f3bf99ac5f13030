"""Result tables: one row per uid and epoch, as CSV, JSON lines or Parquet, written atomically.

``replay_rows`` flattens a :class:`ReplayResult` into rows; ``write_table`` writes them in the
format its file name asks for. Every writer goes through :func:`atomic_path`: the data lands in
a temporary file in the same folder, renamed over the target only when complete, so a failed
run never leaves a half-written file that looks finished.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import MissingExtraError
from .series import ReplayResult

__all__ = ["TABLE_COLUMNS", "replay_rows", "write_table", "atomic_path"]

#: The columns of a result table, in order.
TABLE_COLUMNS = (
    "netuid", "block", "epoch", "uid", "hotkey", "stake_wei", "incentive", "dividends", "consensus", "trust",
    "validator_trust", "server_emission_wei", "validator_emission_wei",
)

_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed to ``path`` if the block succeeds, removed if not.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600; give the file what a plain open() would
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The permission bits ``path`` keeps (if it exists) or would get from ``open()`` (0666 less the umask)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _column(values: Any) -> list[Any]:
    return torch.as_tensor(values).detach().cpu().tolist()


def replay_rows(result: ReplayResult) -> list[dict[str, Any]]:
    """One row per uid and epoch of ``result`` (columns :data:`TABLE_COLUMNS`).

    Types: ``netuid`` (None if unknown), ``block``, ``epoch``, ``uid`` ints; ``hotkey`` text or
    None; ``stake_wei`` the stake the epoch used (int rao/wei); ``incentive``, ``dividends``,
    ``consensus``, ``validator_trust`` floats from the epoch (the I32F32 value in exact mode);
    ``trust`` the file's stored trust as a float (``u16 / 65535``) or None: the chain no longer
    computes trust, so the replay does not either; ``server_emission_wei``,
    ``validator_emission_wei`` ints.
    """
    rows: list[dict[str, Any]] = []
    for t, (snap, state, epoch) in enumerate(zip(result.snapshots, result.states, result.results)):
        n = snap.n
        block = snap.block if snap.block is not None else int(torch.as_tensor(state.block)) if state.block is not None else None
        hotkeys: list[Any] = snap.hotkeys if snap.hotkeys is not None else [None] * n
        trust_u16 = snap.chain_outputs.get("trust")
        trust: list[Any] = [v / 65535 for v in _column(trust_u16)] if trust_u16 is not None else [None] * n
        columns = zip(
            range(n), hotkeys, _column(state.stake), _column(epoch.incentive_float), _column(epoch.dividends_float),
            _column(epoch.consensus_float), trust, _column(epoch.validator_trust_float),
            _column(epoch.server_emission), _column(epoch.validator_emission),
        )
        for uid, hotkey, stake, incentive, dividends, consensus, tr, vtrust, server, validator in columns:
            rows.append({
                "netuid": snap.netuid, "block": block, "epoch": t, "uid": uid, "hotkey": hotkey,
                "stake_wei": int(stake), "incentive": incentive, "dividends": dividends, "consensus": consensus,
                "trust": tr, "validator_trust": vtrust, "server_emission_wei": server, "validator_emission_wei": validator,
            })
    return rows


def _format(path: Path) -> str:
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: unknown table format {path.suffix!r}; use .csv, .jsonl (or .ndjson) or .parquet")
    return kind


def _write_parquet(rows: list[dict[str, Any]], columns: list[str], tmp: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("writing Parquet needs pyarrow: pip install pyarrow (or write .csv / .jsonl)") from None
    table = pa.table({name: [row.get(name) for row in rows] for name in columns})
    pq.write_table(table, tmp)


def write_table(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` to ``path`` as CSV, JSON lines or Parquet, chosen by its extension.

    ``.csv`` (a header line, then one line per row; None is an empty cell), ``.jsonl`` /
    ``.ndjson`` (one JSON object per line) or ``.parquet`` (pyarrow, an optional dependency).
    Columns: :data:`TABLE_COLUMNS` first (those present), then any other keys in first-seen
    order. Integers stay exact in every format. Written atomically (:func:`atomic_path`).

    Raises:
        ValueError: an unknown extension.
        MissingExtraError: ``.parquet`` without pyarrow.
        OSError: the folder is missing or not writable.
    """
    path = Path(path)
    kind = _format(path)
    materialised = [dict(row) for row in rows]
    seen: dict[str, None] = {}
    for row in materialised:
        seen.update(dict.fromkeys(row))
    columns = [c for c in TABLE_COLUMNS if c in seen] + [c for c in seen if c not in TABLE_COLUMNS]
    with atomic_path(path) as tmp:
        if kind == "parquet":
            _write_parquet(materialised, columns, tmp)
        elif kind == "csv":
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns, restval="", extrasaction="raise")
                writer.writeheader()
                writer.writerows(materialised)
        else:
            with open(tmp, "w", encoding="utf-8") as handle:
                for row in materialised:
                    handle.write(json.dumps({c: row.get(c) for c in columns}, allow_nan=False))
                    handle.write("\n")
    return path
