"""``mdt-tensor epoch``: run the Yuma epoch on the demo network or a snapshot and summarise it.

The epoch runs batched over all subnets (``mt.yuma.epoch`` / ``run_epochs``), or over torchrun's
ranks with ``--distributed``; the summary lists per subnet the top uids by incentive and by
dividends, the emission totals and the dust the chain's floor leaves, and is printed and
optionally written as JSON (atomically; the file holds results only, no timing, so a distributed
exact run writes the single-process bytes). Amounts print exactly through ``format_balance``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._constants import U16_MAX
from ..chain import yuma
from ..errors import ValueRangeError
from ..io.export import atomic_path
from ..money import Balance, format_balance
from . import distributed
from .demo import demo_network
from .options import check_device, check_output_folder, emission_option, positive_int, read_hyperparameters, seed

__all__ = ["EXAMPLES", "add_parser", "run", "run_distributed", "summarise", "print_summary"]

EXAMPLES = """\
  mdt-tensor epoch                          one exact epoch, 4 demo subnets of 256 uids
  mdt-tensor epoch --epochs 50 --yuma3      50 epochs with Yuma 3 bonds (progress bar)
  mdt-tensor epoch --fast --subnets 64      the float path on 64 subnets
  mdt-tensor epoch --snapshot sn15.npz      a real subnet (.npz, simulator .pt, SDK metagraph save, JSON)
  mdt-tensor epoch --json out.json          also write the summary as JSON
"""

#: The demo's largest input, in weight cells (subnets x uids^2 x epochs): about 4 GiB of work tensors.
_MAX_DEMO_CELLS = 2**28


def add_parser(commands: Any, epilog: str) -> None:
    """Add the ``epoch`` subcommand to ``commands`` (the parser's subparsers action)."""
    ep = commands.add_parser(
        "epoch",
        help="run the Yuma epoch on a demo network or a snapshot and print a summary",
        description=(
            "Run the chain's Yuma epoch (mt.yuma.epoch / run_epochs) on a built-in deterministic demo "
            "network, batched over all its subnets, or on a snapshot file, and print per subnet the top uids "
            "by incentive and dividends, the emission totals and the dust. No network access."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    ep.add_argument("--subnets", type=positive_int, default=4, help="demo subnets in the batch (default 4)")
    ep.add_argument("--uids", type=positive_int, default=256, help="uids per demo subnet (default 256)")
    ep.add_argument("--epochs", type=positive_int, default=1, help="consecutive epochs (run_epochs; default 1)")
    ep.add_argument("--seed", type=seed, default=0, help="seed of the demo network and the re-scoring, in [0, 2**63) (default 0)")
    ep.add_argument("--snapshot", type=Path, default=None, metavar="FILE",
                    help="run one real subnet instead: .npz (S, W), the Yuma simulator's .pt, an SDK metagraph save or JSON")
    ep.add_argument("--from-endpoints", type=Path, default=None, metavar="URLS_FILE",
                    help="fetch the weight rows from validators' endpoints (lines 'uid url'; see serve-weights); "
                         "a row that fails keeps the snapshot's row and is reported")
    ep.add_argument("--hyperparameters", type=Path, default=None, metavar="FILE.json",
                    help="the subnet's hyperparameters by the SDK's names (kappa, bonds_moving_avg, yuma_version, ...)")
    ep.add_argument("--fast", action="store_true", help="float path instead of the exact fixed point")
    ep.add_argument("--float32", action="store_true", help="with --fast: compute in float32")
    ep.add_argument("--yuma3", action="store_true", help="Yuma 3 bonds")
    ep.add_argument("--liquid-alpha", action="store_true", help="Yuma 3 liquid alpha (implies nothing without --yuma3)")
    ep.add_argument("--payout", choices=("chain", "exact"), default="chain",
                    help="chain: floor like the chain (dust lost); exact: apportion every wei (default chain)")
    ep.add_argument("--emission", default="1 MDT", metavar="AMOUNT",
                    help='per subnet and epoch, with its unit: "1 MDT", "0.5 MDT", "1000000000 wei" (default 1 MDT)')
    ep.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default cpu)")
    ep.add_argument("--top", type=positive_int, default=5, help="uids listed per subnet (default 5)")
    ep.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the summary as JSON")
    ep.add_argument("--quiet", action="store_true", help="print nothing (with --json)")
    distributed.add_arguments(ep)
    ep.set_defaults(handler=run, dist_handler=run_distributed)


# ----------------------------------------------------------------------------------------------
# running


@dataclass
class _Job:
    """What one run computes: the input subnets (on the CPU), where they come from, how to run them."""

    state: yuma.SubnetState
    source: str
    params: yuma.YumaParams
    emission: int
    updates: torch.Tensor | None  # (epochs, *weights.shape) int64, or None for one epoch

    def options(self, args: argparse.Namespace) -> dict[str, Any]:
        dtype = torch.float32 if args.float32 else None
        return dict(exact=not args.fast, payout=args.payout, dtype=dtype if args.fast else None)


def _prepare(args: argparse.Namespace) -> _Job:
    """Check the options and build the job (everything but the device); raises on bad input."""
    emission = emission_option(args.emission)
    check_output_folder("--json", args.json)
    base = yuma.YumaParams(yuma3=args.yuma3, liquid_alpha=args.liquid_alpha)
    params = read_hyperparameters(args.hyperparameters, base, sys.stderr)
    if args.snapshot is not None:
        from ..io import read_snapshot

        state, source = read_snapshot(args.snapshot).state, str(args.snapshot)
    else:
        cells = args.subnets * args.uids * args.uids * args.epochs
        if cells > _MAX_DEMO_CELLS:
            raise ValueRangeError(
                f"--subnets {args.subnets} --uids {args.uids} --epochs {args.epochs}: {cells:,} weight cells, more than "
                f"the demo's {_MAX_DEMO_CELLS:,}; ask for fewer"
            )
        state, source = demo_network(args.subnets, args.uids, args.seed), f"demo network (seed {args.seed})"
    return _Job(state, source, params, emission, _updates(state, args))


def _updates(state: yuma.SubnetState, args: argparse.Namespace) -> torch.Tensor | None:
    """Each epoch the validators re-score: +-5% noise on the stored weights, still u16 (seeded)."""
    if args.epochs == 1:
        return None
    weights = torch.as_tensor(state.weights).cpu()
    g = torch.Generator().manual_seed(args.seed + 1)
    jitter = 1 + 0.05 * (2 * torch.rand((args.epochs, *weights.shape), generator=g, dtype=torch.float64) - 1)
    return torch.floor(weights.to(torch.float64) * jitter).clamp(0, U16_MAX).to(torch.int64)


def _move(state: yuma.SubnetState, device: torch.device) -> yuma.SubnetState:
    moved = {
        name: (value.to(device) if isinstance(value, torch.Tensor) else value)
        for name, value in vars(state).items()
    }
    return yuma.SubnetState(**moved)


def _last(results: yuma.EpochResult) -> yuma.EpochResult:
    """The last epoch of a ``run_epochs`` result (leading epoch axis)."""
    return yuma.EpochResult(**{
        name: (value[-1] if getattr(value, "ndim", 0) >= 1 else value) for name, value in vars(results).items()
    })


def _run_epochs(job: _Job, args: argparse.Namespace, device: torch.device) -> yuma.EpochResult:
    """The last epoch's result, on one process."""
    state = _move(job.state, device)
    if job.updates is None:
        return yuma.epoch(state, job.params, job.emission, **job.options(args))
    results, _ = yuma.run_epochs(state, job.updates.to(device), job.params, job.emission, progress=not args.quiet,
                                 **job.options(args))
    return _last(results)


def _summary(job: _Job, result: yuma.EpochResult, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The summary written as JSON: inputs, options and results, nothing that varies run to run."""
    per_subnet = summarise(result, args.top)
    return {
        "source": job.source,
        "subnets": len(per_subnet),
        "uids": int(torch.as_tensor(job.state.weights).shape[-1]),
        "epochs": args.epochs,
        "exact": not args.fast,
        "dtype": "float32" if args.float32 else "float64",
        "yuma3": job.params.yuma3,
        "liquid_alpha": job.params.liquid_alpha,
        "payout": args.payout,
        "device": device.type,
        "emission_wei": job.emission,
        "total_dust_wei": sum(s["dust_wei"] for s in per_subnet),
        "per_subnet": per_subnet,
    }


def _write_json(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    """The ``epoch`` subcommand on one process: run, summarise, print and write; returns 0 (raises on failure)."""
    device = check_device(args.device or "cpu")
    job = _prepare(args)
    if args.from_endpoints is not None:
        job.state = _weights_from_endpoints(job.state, args.from_endpoints)
        job.source += f", weights from {args.from_endpoints}"
    start = time.perf_counter()
    result = _run_epochs(job, args, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    summary = _summary(job, result, args, device)
    if args.json is not None:
        with atomic_path(args.json) as temporary:
            _write_json(summary, temporary)
    if not args.quiet:
        print_summary(summary, sys.stdout, seconds)
    return 0


def run_distributed(args: argparse.Namespace, env: distributed.DistEnv) -> int:
    """``epoch --distributed``: the subnets shared over the ranks, rank 0 prints and writes; returns 0."""
    for option, value in (("--device", args.device), ("--from-endpoints", args.from_endpoints)):
        if value is not None:
            raise ValueRangeError(f"{option}: not with --distributed (each rank uses its own device: "
                                  "cuda:LOCAL_RANK under NCCL, else the CPU; endpoints are fetched by one process)")
    job = distributed.on_every_rank(lambda: _prepare(args), env, "reading the input")
    start = time.perf_counter()
    result = distributed.epoch_job(job.state, job.updates, job.params, job.emission, env, **job.options(args))
    seconds = time.perf_counter() - start
    if result is not None and job.updates is not None:
        result = _last(result)
    summary = distributed.on_root(lambda: _summary(job, result, args, env.device), env, "summarising")  # type: ignore[arg-type]
    if args.json is not None:
        distributed.write_on_root(args.json, lambda target: _write_json(summary or {}, target), env)
    if env.is_root and not args.quiet and summary is not None:
        print_summary(summary, sys.stdout, seconds)
    return 0


def _weights_from_endpoints(state: yuma.SubnetState, urls_file: Path) -> yuma.SubnetState:
    """``state`` with the rows the endpoints in ``urls_file`` serve; the feed's report goes to stderr."""
    from ..feed.endpoints import fetch_epoch_weights, format_feed_report  # loads aiohttp

    weights, batch = fetch_epoch_weights(urls_file, state.weights)
    print(format_feed_report(batch), file=sys.stderr)
    return dataclasses.replace(state, weights=weights)


# ----------------------------------------------------------------------------------------------
# the summary


def summarise(result: yuma.EpochResult, top: int) -> list[dict[str, Any]]:
    """Per subnet: emission totals and dust in wei, and the ``top`` uids by incentive and by dividends."""
    incentive = torch.as_tensor(result.incentive_float).cpu()
    dividends = torch.as_tensor(result.dividends_float).cpu()
    server = torch.as_tensor(result.server_emission).cpu()
    validator = torch.as_tensor(result.validator_emission).cpu()
    dust = torch.as_tensor(result.dust).cpu().reshape(-1)
    incentive, dividends = incentive.reshape(-1, incentive.shape[-1]), dividends.reshape(-1, dividends.shape[-1])
    server, validator = server.reshape(incentive.shape), validator.reshape(incentive.shape)
    k = min(top, incentive.shape[-1])
    subnets = []
    for s in range(incentive.shape[0]):  # printing only: the epoch itself ran batched
        by_incentive = torch.topk(incentive[s], k).indices.tolist()
        by_dividends = torch.topk(dividends[s], k).indices.tolist()
        subnets.append({
            "subnet": s,
            "miner_emission_wei": int(server[s].sum()),
            "validator_emission_wei": int(validator[s].sum()),
            "dust_wei": int(dust[s]),
            "top_incentive": [
                {"uid": u, "incentive": float(incentive[s, u]), "emission_wei": int(server[s, u])} for u in by_incentive
            ],
            "top_dividends": [
                {"uid": u, "dividends": float(dividends[s, u]), "emission_wei": int(validator[s, u])} for u in by_dividends
            ],
        })
    return subnets


def _mdt(wei: int, symbol: bool = True) -> str:
    """An amount of wei as exact MDT text, e.g. ``1.000000000 MDT``."""
    return format_balance(Balance.from_wei(wei), symbol=symbol)


def print_summary(summary: dict[str, Any], out: Any, seconds: float) -> None:
    """The summary of :func:`run` as text on ``out``, with the ``seconds`` the epochs took."""
    mode = "exact (I32F32 on int64)" if summary["exact"] else f"fast ({summary['dtype']})"
    print(
        f"Yuma epoch on {summary['source']}: {summary['subnets']} subnet(s) x {summary['uids']} uids, "
        f"{summary['epochs']} epoch(s), {mode}, {'Yuma 3' if summary['yuma3'] else 'original Yuma'}, "
        f"device {summary['device']}",
        file=out,
    )
    print(f"emission per subnet and epoch: {_mdt(summary['emission_wei'])}; last epoch shown", file=out)
    for sub in summary["per_subnet"]:
        print(
            f"\nsubnet {sub['subnet']}: miners {_mdt(sub['miner_emission_wei'])}, "
            f"validators {_mdt(sub['validator_emission_wei'])}, dust {sub['dust_wei']} wei",
            file=out,
        )
        print(f"  {'uid':>9}  {'incentive':>9}  {'MDT':>11}  {'uid':>9}  {'dividends':>9}  {'MDT':>11}", file=out)
        for a, b in zip(sub["top_incentive"], sub["top_dividends"]):
            left = f"{a['uid']:>9}  {a['incentive']:>9.6f}  {_mdt(a['emission_wei'], symbol=False):>11}"
            right = f"{b['uid']:>9}  {b['dividends']:>9.6f}  {_mdt(b['emission_wei'], symbol=False):>11}"
            print(f"  {left}  {right}", file=out)
    print(
        f"\ntotal dust (last epoch): {summary['total_dust_wei']} wei; time: {seconds:.3f} s "
        f"({seconds / summary['epochs'] * 1e3:.1f} ms per epoch)",
        file=out,
    )
