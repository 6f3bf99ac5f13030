"""Replaying snapshot files end to end against the same epochs on tensors already in memory.

A generated series (``mdt_tensor.io.series.demo_series``: 100 snapshots of 256 uids, one per
tempo, a little churn) is saved as ``.npz`` files. Ours: ``read_series`` on the folder, ``replay``
and ``write_table`` of every uid and epoch as CSV. Baseline: ``replay`` of the same series held
in memory (the epochs alone, with the same carried bonds). Target: reading and writing cost at
most 2x the epochs, i.e. the end-to-end run takes at most 3x the epochs. The exact epoch (the
CLI's default) is the targeted row; the fast epoch is reported beside it, where the same I/O
weighs more against cheaper epochs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks._harness import Comparison, Context, time_call
from mdt_tensor.io import save_npz
from mdt_tensor.io.export import replay_rows, write_table
from mdt_tensor.io.series import demo_series, read_series, replay


def run(ctx: Context) -> list[Comparison]:
    count, uids = ctx.size((100, 256), (20, 256), (3, 16))
    series = demo_series(count, uids, seed=0)
    repeat = min(ctx.repeat, 3)
    rows: list[Comparison] = []
    with tempfile.TemporaryDirectory() as folder:
        for snap in series:
            save_npz(snap, Path(folder) / f"block-{snap.block}.npz")
        table = Path(folder) / "out" / "rows.csv"
        table.parent.mkdir()
        for exact in (True, False):
            mode = "exact" if exact else "fast"

            def end_to_end(exact: bool = exact) -> None:
                write_table(replay_rows(replay(read_series(folder), exact=exact, device=ctx.device)), table)

            def epochs_only(exact: bool = exact) -> None:
                replay(series, exact=exact, device=ctx.device)

            ours = time_call(end_to_end, repeat=repeat, warmup=0, device=ctx.device, min_time=0.0)
            epochs = time_call(epochs_only, repeat=repeat, warmup=0, device=ctx.device, min_time=0.0)
            rows.append(Comparison(
                name=f"replay {count} .npz snapshots x {uids} uids -> CSV ({mode} epochs)",
                ours_s=ours,
                baseline=f"the same {count} {mode} epochs on tensors in memory",
                baseline_s=epochs,
                max_slowdown=3.0 if exact else None,
                extra={"read+write / epochs": f"{(ours - epochs) / epochs:.2f}x (target <= 2x)" if exact else f"{(ours - epochs) / epochs:.2f}x"},
            ))
    return rows
