"""The CPU kernels' thread pool starts no OpenMP team of its own.

A torch operation above its parallel grain, run in a pool thread, starts an OpenMP team in
that thread; once the process holds more OpenMP threads than cores, libgomp stops spinning
between parallel regions and every later torch operation of the process (the user's too) pays
for a thread wake-up. The kernels hand torch small pieces in their pool threads
(``threads.serial_pieces``): the process's thread count stays where the pool left it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_SCRIPT = """
import os, torch, numpy as np
torch.set_num_threads(2)
import mdt_tensor as mt
from mdt_tensor._cpu.threads import run_blocks

def threads():
    return len(os.listdir("/proc/self/task"))

torch.rand(1 << 20).add_(1)  # the main thread's own team
run_blocks(lambda: None, [(), (), ()])  # the pool's workers
before = threads()
g = torch.Generator().manual_seed(0)
for batch, rows, columns in ((64, 65, 256), (4, 65, 1024), (2, 300, 512)):  # slabs, slabs, column blocks
    mt.weighted_median(torch.rand((batch, rows, columns), generator=g), torch.rand((batch, rows), generator=g))
for count in (16, 128):  # the selection network and the partition kernel
    mt.compute_weight_consensus(torch.rand((count, 64, 1024), generator=g), "median")
print(before, threads())
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through Linux's /proc")
def test_kernels_start_no_openmp_team_in_pool_threads() -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True, timeout=300)
    before, after = map(int, out.stdout.split())
    assert after == before, f"the process went from {before} to {after} threads: a pool thread started an OpenMP team"


def test_blocks_run_in_the_calling_thread_inside_blocks_in_caller() -> None:
    import threading

    import torch

    from mdt_tensor._cpu.threads import blocks_in_caller, run_blocks

    def where(*blocks: int) -> list[int]:
        seen: list[int] = []
        run_blocks(lambda i: seen.append(threading.get_ident()), [(i,) for i in blocks])
        return seen

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with blocks_in_caller():
            assert set(where(1, 2, 3, 4)) == {threading.get_ident()}
        assert threading.get_ident() not in where(1, 2, 3, 4)  # the pool again once the context ends
    finally:
        torch.set_num_threads(threads)
