"""Per-rank result files of a distributed epoch job, committed only when every rank succeeded.

For jobs larger than one machine's memory each rank writes its share of the results as ``.npz``
part files (one per chunk of jobs, named by their global job range) instead of gathering them.
A part is written under a temporary name; only after all ranks report success is it renamed, and
then rank 0 writes ``manifest.json`` (also via a temporary file). The manifest is what marks a
run complete: readers (:func:`load_parts`, :func:`iter_parts`) refuse a directory without one,
and a failed run leaves none (its temporary parts are removed). A stale manifest is removed when
a new run starts in the same directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import yuma
from ..errors import ShapeError

__all__ = ["MANIFEST", "PartFile", "load_parts", "iter_parts"]

#: The file that marks a complete run.
MANIFEST = "manifest.json"
_FORMAT = "mdt_tensor.distributed.parts/1"


@dataclass(frozen=True)
class PartFile:
    """One part: the results of the global jobs ``jobs`` (a range), at ``path`` once committed."""

    path: Path
    jobs: range

    @property
    def temporary(self) -> Path:
        return self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")


def part_for(out_dir: Path, jobs: range) -> PartFile:
    return PartFile(out_dir / f"part-{jobs.start:09d}-{jobs.stop:09d}.npz", jobs)


def write_part(part: PartFile, result: dict[str, Tensor], final: dict[str, Tensor]) -> None:
    """Write ``result`` / ``final`` fields (original layouts) to the part's temporary file."""
    arrays = {f"result.{k}": v.detach().cpu().numpy() for k, v in result.items()}
    arrays.update({f"final.{k}": v.detach().cpu().numpy() for k, v in final.items()})
    part.path.parent.mkdir(parents=True, exist_ok=True)
    with open(part.temporary, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
        handle.flush()
        os.fsync(handle.fileno())


def discard(parts: list[PartFile]) -> None:
    """Remove ``parts``, temporary or already committed (after a failure of any rank)."""
    for part in parts:
        part.temporary.unlink(missing_ok=True)
        part.path.unlink(missing_ok=True)


def commit(parts: list[PartFile]) -> None:
    """Rename every temporary part to its final name."""
    for part in parts:
        os.replace(part.temporary, part.path)


def remove_manifest(out_dir: Path) -> None:
    (out_dir / MANIFEST).unlink(missing_ok=True)


def write_manifest(out_dir: Path, parts: list[PartFile], total_jobs: int, job_axis: int, epochs: int | None) -> Path:
    """Write ``manifest.json`` atomically (rank 0, after every rank committed its parts)."""
    manifest = {
        "format": _FORMAT,
        "jobs": total_jobs,
        "job_axis": job_axis,
        "epochs": epochs,
        "parts": [{"file": p.path.name, "jobs": [p.jobs.start, p.jobs.stop]} for p in parts],
    }
    path = out_dir / MANIFEST
    temporary = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(manifest, indent=1))
    os.replace(temporary, path)
    return path


def _read_manifest(out_dir: Path) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {out_dir} does not hold a complete distributed run.")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != _FORMAT:
        raise ShapeError(f"Expected {path} to have format {_FORMAT!r}, but got {manifest.get('format')!r}.")
    return manifest


def _result_from(data: Any, prefix: str, cls: type) -> Any:
    present = {k[len(prefix):]: torch.from_numpy(data[k]) for k in data.files if k.startswith(prefix)}
    names = [f.name for f in fields(cls)]
    return cls(**{name: present.get(name) for name in names}) if present else None


def iter_parts(out_dir: str | Path) -> Iterator[tuple[range, yuma.EpochResult, yuma.SubnetState | None]]:
    """The parts of a complete run, in job order: ``(jobs, results, final_state)`` each.

    Reads one part at a time, so a run larger than memory can be streamed.
    """
    out_dir = Path(out_dir)
    manifest = _read_manifest(out_dir)
    for entry in manifest["parts"]:
        with np.load(out_dir / entry["file"]) as data:
            result = _result_from(data, "result.", yuma.EpochResult)
            final = _result_from(data, "final.", yuma.SubnetState)
        yield range(*entry["jobs"]), result, final


def load_parts(out_dir: str | Path) -> tuple[yuma.EpochResult, yuma.SubnetState | None]:
    """All parts of a complete run merged in job order (as a single-process run returns them)."""
    manifest = _read_manifest(Path(out_dir))
    axis = int(manifest["job_axis"])
    results, finals = [], []
    for _, result, final in iter_parts(out_dir):
        results.append(result)
        finals.append(final)
    if not results:
        raise ShapeError(f"{out_dir} holds a run without jobs.")

    def merge(items: list[Any], cls: type, dim: int) -> Any:
        out = {}
        for f in fields(cls):
            values = [getattr(item, f.name) for item in items]
            out[f.name] = None if values[0] is None else torch.cat(values, dim=dim)
        return cls(**out)

    final_state = None if finals[0] is None else merge(finals, yuma.SubnetState, 0)
    return merge(results, yuma.EpochResult, axis), final_state
