"""The Yuma epoch: exact against fast, and the multi-epoch runner against the simulator users run.

Measured in the same run:

* one exact epoch (I32F32 on int64) on a ``(64, 256, 256)`` batch against the fast float64 epoch
  on the same batch (target: at most 4x its time);
* ``mt.yuma.run_epochs`` (u16 weights as an int32 stack, all subnets batched) against the
  open-source simulator's way (``_yuma_simulator``: one float32 epoch per subnet and epoch, the
  sort-recipe consensus, bonds carried by hand) at ``(subnets, epochs, uids)`` = ``(64, 5, 256)``,
  ``(16, 5, 1024)``, ``(2, 3, 4096)``, original Yuma and Yuma 3. Targets: the fast path (float32,
  the baseline's dtype) at least 3x faster, the exact path at least as fast. The simulator's
  legacy per-column bisection is one labelled extra row.
* peak memory growth of each (a fresh subprocess per call: the resident high-water mark reset
  before the call and read after it), against the input's size.

The inputs are the CLI's deterministic demo network (log-normal stakes, validators scoring miners,
rows max-upscaled to u16), jittered per epoch. The largest incentive gap between the baseline
(without its consensus rescaling) and ours is reported beside each row.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import torch

from benchmarks._harness import Comparison, Context, time_call
from benchmarks._yuma_simulator import simulator_run
from mdt_tensor import yuma
from mdt_tensor.cli.demo import demo_network


def _runner_inputs(subnets: int, uids: int, epochs: int) -> tuple[yuma.SubnetState, torch.Tensor]:
    """A demo network and ``(T, b, n, n)`` int32 weights, everyone staked a validator, all active."""
    state = demo_network(subnets, uids, seed=1, validators=min(64, uids // 4))
    state.validator_permit = torch.as_tensor(state.stake) > 0
    state.last_update = None
    state.block_at_registration = None
    g = torch.Generator().manual_seed(2)
    weights = torch.as_tensor(state.weights).to(torch.float64)
    jitter = 1 + 0.05 * (2 * torch.rand((epochs, *weights.shape), generator=g, dtype=torch.float64) - 1)
    updates = torch.floor(weights * jitter).clamp(0, 65535).to(torch.int32)
    return state, updates


def _run_ours(state: yuma.SubnetState, updates: torch.Tensor, yuma3: bool, exact: bool) -> yuma.EpochResult:
    params = yuma.YumaParams(max_allowed_validators=updates.shape[-1], yuma3=yuma3)
    dtype = None if exact else torch.float32
    return yuma.run_epochs(state, updates, params, exact=exact, dtype=dtype, validate=False)[0]


def _run_baseline(state: yuma.SubnetState, updates: torch.Tensor, yuma3: bool, **kw: bool) -> list[list[torch.Tensor]]:
    return simulator_run(updates.to(torch.float32), torch.as_tensor(state.stake).to(torch.float32), yuma3=yuma3, **kw)


_MEMORY_SCRIPT = """
import json, sys, torch
from benchmarks.bench_yuma import _runner_inputs, _run_ours, _run_baseline
b, t, n, who = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
state, updates = _runner_inputs(b, n, t)
weights = updates.to(torch.float32) if who == "baseline" else None  # the simulator's own input
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark to the current size
before = rss("VmRSS:")
if who == "baseline":
    from benchmarks._yuma_simulator import simulator_run
    simulator_run(weights, torch.as_tensor(state.stake).to(torch.float32), yuma3=False)
else:
    result = _run_ours(state, updates, False, who == "exact")
print(json.dumps({"growth": rss("VmHWM:") - before, "input": updates.numel() * updates.element_size()}))
"""


def peak_growth(subnets: int, epochs: int, uids: int, who: str) -> tuple[int, int]:
    """Bytes the resident high-water mark grows by during one call, and the int32 input's bytes."""
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(subnets), str(epochs), str(uids), who],
                         capture_output=True, text=True, check=True, timeout=900)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return figures["growth"], figures["input"]


def _once(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def _runner_rows(ctx: Context, subnets: int, epochs: int, uids: int) -> list[Comparison]:
    state, updates = _runner_inputs(subnets, uids, epochs)
    shape = f"({subnets}, {epochs}, {uids})"
    rows = []
    for yuma3 in (False, True):
        kind = "Yuma 3" if yuma3 else "original Yuma"
        fast = _run_ours(state, updates, yuma3, exact=False)
        plain = _run_baseline(state, updates, yuma3, quantise_consensus=False)
        ours_incentive = torch.as_tensor(fast.incentive_float)
        gap = max(float((ours_incentive[t, b] - plain[t][b]).abs().max()) for t in range(epochs) for b in range(subnets))
        repeat = max(1, ctx.repeat // 3)  # the baseline's calls take seconds at the larger shapes
        ours = max(3, ctx.repeat // 2)  # a median of a few more of ours: this VM's timing is noisy
        fast_s = time_call(lambda: _run_ours(state, updates, yuma3, exact=False), repeat=ours, device=ctx.device)
        exact_s = time_call(lambda: _run_ours(state, updates, yuma3, exact=True), repeat=ours, device=ctx.device)
        base_s = time_call(lambda: _run_baseline(state, updates, yuma3), repeat=repeat, device=ctx.device, min_time=0)
        baseline = "simulator-style loop, float32, sort-recipe consensus"
        rows.append(Comparison(
            name=f"run_epochs fast (float32), {kind}, {shape}", ours_s=fast_s, baseline=baseline, baseline_s=base_s,
            min_speedup=3.0, extra={"max incentive gap": f"{gap:.1e}",
                                    "per subnet-epoch": f"{fast_s / (subnets * epochs) * 1e3:.2f} ms"},
        ))
        rows.append(Comparison(
            name=f"run_epochs exact, {kind}, {shape}", ours_s=exact_s, baseline=baseline, baseline_s=base_s,
            min_speedup=1.0, extra={"per subnet-epoch": f"{exact_s / (subnets * epochs) * 1e3:.2f} ms"},
        ))
    if ctx.mode != "smoke":
        memory = {who: peak_growth(subnets, epochs, uids, who) for who in ("baseline", "fast", "exact")}
        size = memory["fast"][1]
        for who in ("fast", "exact"):
            rows.append(Comparison(
                name=f"peak memory growth, run_epochs {who}, original Yuma, {shape}",
                ours_s=memory[who][0] / 1e6, baseline=f"input (T, b, n, n) int32: {size / 1e6:.0f} MB",
                baseline_s=size / 1e6, max_slowdown=2.0, unit="MB",
                extra={"simulator's growth": f"{memory['baseline'][0] / 1e6:.0f} MB"},
            ))
    return rows


def run(ctx: Context) -> list[Comparison]:
    comparisons = []

    # ---- one exact epoch vs one fast epoch on the same batch
    subnets, uids = ctx.size((64, 256), (16, 256), (2, 16))
    state = demo_network(subnets, uids, seed=0)
    exact = yuma.epoch(state, validate=False)
    fast = yuma.epoch(state, exact=False, validate=False)
    gap = float((torch.as_tensor(exact.incentive_float) - torch.as_tensor(fast.incentive_float)).abs().max())
    assert gap < 1e-6, f"exact and fast epochs disagree by {gap}"
    exact_s = time_call(lambda: yuma.epoch(state, validate=False), repeat=ctx.repeat, device=ctx.device)
    fast_s = time_call(lambda: yuma.epoch(state, exact=False, validate=False), repeat=ctx.repeat, device=ctx.device)
    comparisons.append(Comparison(
        name=f"exact epoch ({subnets}, {uids}, {uids})",
        ours_s=exact_s,
        baseline="fast epoch (float64), same batch",
        baseline_s=fast_s,
        max_slowdown=4.0,
        extra={"exact/fast": f"{exact_s / fast_s:.2f}x", "per subnet (exact)": f"{exact_s / subnets * 1e3:.2f} ms"},
    ))

    # ---- the runner vs the simulator's default loop, at the shapes
    for shape in ctx.size([(64, 5, 256), (16, 5, 1024), (2, 3, 4096)], [(16, 3, 256), (4, 2, 1024)], [(2, 2, 16)]):
        comparisons += _runner_rows(ctx, *shape)

    # ---- the simulator's legacy bisection consensus, one labelled extra row (a few subnets, scaled)
    subnets, epochs, uids = ctx.size((4, 1, 256), (2, 1, 256), (1, 1, 16))
    state, updates = _runner_inputs(subnets, uids, epochs)
    legacy_s = _once(lambda: _run_baseline(state, updates, False, legacy_consensus=True))
    ours_s = time_call(lambda: _run_ours(state, updates, False, exact=False), repeat=ctx.repeat, device=ctx.device)
    comparisons.append(Comparison(
        name=f"run_epochs fast (float32), original Yuma, ({subnets}, {epochs}, {uids})",
        ours_s=ours_s, baseline="EXTRA: the simulator's legacy bisection consensus (LEGACY_CONSENSUS=1)",
        baseline_s=legacy_s,
    ))
    return comparisons
