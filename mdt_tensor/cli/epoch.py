"""``mdt-tensor epoch``: run the Yuma epoch on the demo network or a snapshot and summarise it.

The epoch runs batched over all subnets (``mt.yuma.epoch`` / ``run_epochs``); the summary lists
per subnet the top uids by incentive and by dividends, the emission totals and the dust the
chain's floor leaves, and is printed and optionally written as JSON. Amounts print exactly, to
the wei, through :func:`mdt_tensor.money.format_balance`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .._constants import U16_MAX, WEI_PER_MDT
from ..chain import yuma
from ..money import Balance, format_balance
from .demo import demo_network
from .options import positive_int, wei
from .snapshot import load_snapshot

__all__ = ["EXAMPLES", "add_parser", "run"]

EXAMPLES = """\
  mdt-tensor epoch                          one exact epoch, 4 demo subnets of 256 uids
  mdt-tensor epoch --epochs 50 --yuma3      50 epochs with Yuma 3 bonds (progress bar)
  mdt-tensor epoch --fast --subnets 64      the float path on 64 subnets
  mdt-tensor epoch --snapshot sn15.npz      a real subnet: keys S (n,) stake, W (n, n) weights
  mdt-tensor epoch --json out.json          also write the summary as JSON
"""


def add_parser(commands: Any, epilog: str) -> None:
    """Add the ``epoch`` subcommand to ``commands`` (the parser's subparsers action)."""
    ep = commands.add_parser(
        "epoch",
        help="run the Yuma epoch on a demo network or a snapshot and print a summary",
        description=(
            "Run the chain's Yuma epoch (mt.yuma.epoch / run_epochs) on a built-in deterministic demo "
            "network, batched over all its subnets, and print per subnet the top uids by incentive and "
            "dividends, the emission totals and the dust. No network access."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    ep.add_argument("--subnets", type=positive_int, default=4, help="demo subnets in the batch (default 4)")
    ep.add_argument("--uids", type=positive_int, default=256, help="uids per demo subnet (default 256)")
    ep.add_argument("--epochs", type=positive_int, default=1, help="consecutive epochs (run_epochs; default 1)")
    ep.add_argument("--seed", type=int, default=0, help="seed of the demo network (default 0)")
    ep.add_argument("--snapshot", type=Path, default=None, metavar="FILE.npz",
                    help="run one real subnet instead: keys S (n,) stake and W (n, n) weights")
    ep.add_argument("--from-endpoints", type=Path, default=None, metavar="URLS_FILE",
                    help="fetch the weight rows from validators' endpoints (lines 'uid url'; see serve-weights); "
                         "a row that fails keeps the snapshot's row and is reported")
    ep.add_argument("--fast", action="store_true", help="float path instead of the exact fixed point")
    ep.add_argument("--float32", action="store_true", help="with --fast: compute in float32")
    ep.add_argument("--yuma3", action="store_true", help="Yuma 3 bonds")
    ep.add_argument("--liquid-alpha", action="store_true", help="Yuma 3 liquid alpha (implies nothing without --yuma3)")
    ep.add_argument("--payout", choices=("chain", "exact"), default="chain",
                    help="chain: floor like the chain (dust lost); exact: apportion every wei (default chain)")
    ep.add_argument("--emission", type=wei, default=WEI_PER_MDT, help="wei per subnet and epoch (default 1e9 = 1 MDT)")
    ep.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    ep.add_argument("--top", type=positive_int, default=5, help="uids listed per subnet (default 5)")
    ep.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the summary as JSON")
    ep.add_argument("--quiet", action="store_true", help="print nothing (with --json)")
    ep.set_defaults(handler=run)


# ----------------------------------------------------------------------------------------------
# running


def _load_state(args: argparse.Namespace) -> tuple[yuma.SubnetState, str]:
    """The input subnets and a description of where they come from, on ``args.device``."""
    if args.snapshot is not None:
        state, source = load_snapshot(args.snapshot), str(args.snapshot)
    else:
        state, source = demo_network(args.subnets, args.uids, args.seed), f"demo network (seed {args.seed})"
    if args.device != "cpu":
        state = _move(state, args.device)
    return state, source


def _move(state: yuma.SubnetState, device: str) -> yuma.SubnetState:
    moved = {
        name: (value.to(device) if isinstance(value, torch.Tensor) else value)
        for name, value in vars(state).items()
    }
    return yuma.SubnetState(**moved)


def _run_epochs(state: yuma.SubnetState, args: argparse.Namespace) -> tuple[yuma.EpochResult, float]:
    """The last epoch's result and the seconds all epochs took."""
    params = yuma.YumaParams(yuma3=args.yuma3, liquid_alpha=args.liquid_alpha)
    dtype = torch.float32 if args.float32 else None
    options = dict(exact=not args.fast, payout=args.payout, dtype=dtype if args.fast else None)
    weights = torch.as_tensor(state.weights)
    start = time.perf_counter()
    if args.epochs == 1:
        result = yuma.epoch(state, params, args.emission, **options)
    else:
        g = torch.Generator().manual_seed(args.seed + 1)
        # each epoch the validators re-score: +-5% noise on the stored weights, still u16
        jitter = 1 + 0.05 * (2 * torch.rand((args.epochs, *weights.shape), generator=g, dtype=torch.float64) - 1)
        updates = torch.floor(weights.cpu().to(torch.float64) * jitter).clamp(0, U16_MAX).to(torch.int64).to(weights.device)
        results, _ = yuma.run_epochs(state, updates, params, args.emission, progress=not args.quiet, **options)
        result = yuma.EpochResult(**{
            name: (value[-1] if getattr(value, "ndim", 0) >= 1 else value) for name, value in vars(results).items()
        })
    if weights.device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    """The ``epoch`` subcommand: run, summarise, print and write; returns the exit status."""
    state, source = _load_state(args)
    if args.from_endpoints is not None:
        state = _weights_from_endpoints(state, args.from_endpoints)
        source += f", weights from {args.from_endpoints}"
    result, seconds = _run_epochs(state, args)
    per_subnet = summarise(result, args.top)
    summary = {
        "source": source,
        "subnets": len(per_subnet),
        "uids": int(torch.as_tensor(state.weights).shape[-1]),
        "epochs": args.epochs,
        "exact": not args.fast,
        "dtype": "float32" if args.float32 else "float64",
        "yuma3": args.yuma3,
        "liquid_alpha": args.liquid_alpha,
        "payout": args.payout,
        "device": args.device,
        "emission_wei": args.emission,
        "total_dust_wei": sum(s["dust_wei"] for s in per_subnet),
        "seconds": seconds,
        "per_subnet": per_subnet,
    }
    if not args.quiet:
        print_summary(summary, sys.stdout)
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
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


def print_summary(summary: dict[str, Any], out: Any) -> None:
    """The summary of :func:`run` as text on ``out``."""
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
        f"\ntotal dust (last epoch): {summary['total_dust_wei']} wei; time: {summary['seconds']:.3f} s "
        f"({summary['seconds'] / summary['epochs'] * 1e3:.1f} ms per epoch)",
        file=out,
    )
