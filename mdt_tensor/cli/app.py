"""The ``mdt-tensor`` command.

``mdt-tensor epoch`` runs the Yuma epoch (``mt.yuma``) on a built-in, deterministic demo network
(synthesised from ``--seed``; no network access, no data files) or on a snapshot file, and prints
a summary per subnet: the top uids by incentive and by dividends, emission totals, the dust the
chain's floor leaves, and the time taken.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..chain import yuma
from ..errors import MdtError, ShapeError

__all__: list[str] = []

WEI_PER_MDT = 10**9

_EPILOG = """\
examples:
  mdt-tensor epoch                          one exact epoch, 4 demo subnets of 256 uids
  mdt-tensor epoch --epochs 50 --yuma3      50 epochs with Yuma 3 bonds (progress bar)
  mdt-tensor epoch --fast --subnets 64      the float path on 64 subnets
  mdt-tensor epoch --snapshot sn15.npz      a real subnet: keys S (n,) stake, W (n, n) weights
  mdt-tensor epoch --json out.json          also write the summary as JSON
"""


def demo_network(subnets: int, uids: int, seed: int, validators: int | None = None) -> yuma.SubnetState:
    """A deterministic synthetic batch of subnets (the same for a seed on every machine).

    Per subnet: ``validators`` uids (default ``uids // 4``, at most 64) hold stake drawn from a
    heavy-tailed (log-normal) distribution, the rest are miners with little or no stake. Each
    validator scores the miners by a shared latent quality plus its own noise, keeps its top half,
    and stores the row max-upscaled to u16, as ``set_weights`` does.

    Args:
        subnets: number of subnets in the batch.
        uids: uids per subnet (n).
        seed: the generator seed.
        validators: staked uids per subnet.

    Returns:
        A :class:`mdt_tensor.yuma.SubnetState` of shape ``(subnets, uids, uids)``.

    Example:
        >>> state = demo_network(2, 16, seed=0)
        >>> tuple(state.weights.shape), int(state.weights.max())
        ((2, 16, 16), 65535)
    """
    if subnets < 1 or uids < 2:
        raise ShapeError(f"Expected at least 1 subnet of at least 2 uids, but got {subnets} x {uids}.")
    g = torch.Generator().manual_seed(seed)
    v = validators if validators is not None else max(1, min(64, uids // 4))
    is_validator = torch.arange(uids) < v
    stake = torch.exp(torch.randn(subnets, uids, generator=g, dtype=torch.float64) * 1.5 + 9.0)
    stake = torch.where(is_validator, stake, stake * 1e-4 * (torch.rand(subnets, uids, generator=g) < 0.3))
    stake_rao = torch.floor(stake * WEI_PER_MDT).to(torch.int64)
    quality = torch.rand(subnets, 1, uids, generator=g, dtype=torch.float64)
    noise = torch.rand(subnets, uids, uids, generator=g, dtype=torch.float64) * 0.35
    score = (quality + noise) * (~is_validator).to(torch.float64)  # validators score miners only
    cutoff = score.quantile(0.5, dim=-1, keepdim=True)
    score = torch.where(score >= cutoff, score, torch.zeros_like(score)) * is_validator.view(1, -1, 1)
    top = score.amax(-1, keepdim=True)
    weights = torch.where(top > 0, torch.floor(score / torch.where(top > 0, top, 1) * 65535 + 0.5), 0)
    block = 1_000_000
    last_update = block - torch.randint(0, 400, (subnets, uids), generator=g)
    registration = torch.randint(0, block - 10_000, (subnets, uids), generator=g)
    return yuma.SubnetState(
        weights=weights.to(torch.int64),
        stake=stake_rao,
        last_update=last_update,
        block_at_registration=registration,
        block=block,
        owner_uid=torch.zeros(subnets, dtype=torch.int64),
    )


def load_snapshot(path: Path) -> yuma.SubnetState:
    """A snapshot ``.npz`` with ``S`` (n,) stake and ``W`` (n, n) weights as one subnet.

    Float weight rows are quantised to u16 by max-upscaling (``round(w / max(w) * 65535)``, half
    away from zero), as the chain stores them; integer weights are used as they are. An optional
    ``block`` key sets the block.
    """
    with np.load(path) as data:
        missing = {"S", "W"} - set(data.files)
        if missing:
            raise ShapeError(f"Expected keys S and W in {path}, but {sorted(missing)} are missing (found {data.files}).")
        stake, weights = data["S"], data["W"]
        block = int(data["block"]) if "block" in data.files else None
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1] or stake.shape != weights.shape[:1]:
        raise ShapeError(f"Expected S (n,) and W (n, n), but got S {stake.shape} and W {weights.shape}.")
    if np.issubdtype(weights.dtype, np.floating):
        w = weights.astype(np.float64)
        top = w.max(-1, keepdims=True)
        weights = np.where(top > 0, np.floor(w / np.where(top > 0, top, 1) * 65535 + 0.5), 0).astype(np.int64)
    return yuma.SubnetState(
        weights=torch.from_numpy(np.ascontiguousarray(weights).astype(np.int64)),
        stake=torch.from_numpy(stake.astype(np.float64 if np.issubdtype(stake.dtype, np.floating) else np.int64)),
        block=block,
    )


def _move(state: yuma.SubnetState, device: str) -> yuma.SubnetState:
    moved = {
        name: (value.to(device) if isinstance(value, torch.Tensor) else value)
        for name, value in vars(state).items()
    }
    return yuma.SubnetState(**moved)


def _mdt(wei: int) -> str:
    return f"{wei / WEI_PER_MDT:,.6f}"


def _summarise(result: yuma.EpochResult, top: int) -> list[dict[str, Any]]:
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


def _print_summary(summary: dict[str, Any], out: Any) -> None:
    mode = "exact (I32F32 on int64)" if summary["exact"] else f"fast ({summary['dtype']})"
    print(
        f"Yuma epoch on {summary['source']}: {summary['subnets']} subnet(s) x {summary['uids']} uids, "
        f"{summary['epochs']} epoch(s), {mode}, {'Yuma 3' if summary['yuma3'] else 'original Yuma'}, "
        f"device {summary['device']}",
        file=out,
    )
    print(f"emission per subnet and epoch: {_mdt(summary['emission_wei'])} MDT; last epoch shown", file=out)
    for sub in summary["per_subnet"]:
        print(
            f"\nsubnet {sub['subnet']}: miners {_mdt(sub['miner_emission_wei'])} MDT, "
            f"validators {_mdt(sub['validator_emission_wei'])} MDT, dust {sub['dust_wei']} wei",
            file=out,
        )
        print(f"  {'uid':>9}  {'incentive':>9}  {'MDT':>8}  {'uid':>9}  {'dividends':>9}  {'MDT':>8}", file=out)
        for a, b in zip(sub["top_incentive"], sub["top_dividends"]):
            left = f"{a['uid']:>9}  {a['incentive']:>9.6f}  {_mdt(a['emission_wei']):>8}"
            right = f"{b['uid']:>9}  {b['dividends']:>9.6f}  {_mdt(b['emission_wei']):>8}"
            print(f"  {left}  {right}", file=out)
    print(
        f"\ntotal dust (last epoch): {summary['total_dust_wei']} wei; time: {summary['seconds']:.3f} s "
        f"({summary['seconds'] / summary['epochs'] * 1e3:.1f} ms per epoch)",
        file=out,
    )


def _epoch_command(args: argparse.Namespace) -> int:
    if args.snapshot is not None:
        state, source = load_snapshot(args.snapshot), str(args.snapshot)
    else:
        state, source = demo_network(args.subnets, args.uids, args.seed), f"demo network (seed {args.seed})"
    if args.device != "cpu":
        state = _move(state, args.device)
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
        updates = torch.floor(weights.cpu().to(torch.float64) * jitter).clamp(0, 65535).to(torch.int64).to(weights.device)
        results, _ = yuma.run_epochs(state, updates, params, args.emission, progress=not args.quiet, **options)
        result = yuma.EpochResult(**{
            name: (value[-1] if getattr(value, "ndim", 0) >= 1 else value) for name, value in vars(results).items()
        })
    if weights.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    per_subnet = _summarise(result, args.top)
    summary = {
        "source": source,
        "subnets": len(per_subnet),
        "uids": int(weights.shape[-1]),
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
        _print_summary(summary, sys.stdout)
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _wei(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected wei in [0, 2**63), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mdt-tensor`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="mdt-tensor",
        description="mdt_tensor: torch-native weights, Yuma consensus and exact money for Bittensor-style networks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    ep = commands.add_parser(
        "epoch",
        help="run the Yuma epoch on a demo network or a snapshot and print a summary",
        description=(
            "Run the chain's Yuma epoch (mt.yuma.epoch / run_epochs) on a built-in deterministic demo "
            "network, batched over all its subnets, and print per subnet the top uids by incentive and "
            "dividends, the emission totals and the dust. No network access."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    ep.add_argument("--subnets", type=_positive_int, default=4, help="demo subnets in the batch (default 4)")
    ep.add_argument("--uids", type=_positive_int, default=256, help="uids per demo subnet (default 256)")
    ep.add_argument("--epochs", type=_positive_int, default=1, help="consecutive epochs (run_epochs; default 1)")
    ep.add_argument("--seed", type=int, default=0, help="seed of the demo network (default 0)")
    ep.add_argument("--snapshot", type=Path, default=None, metavar="FILE.npz",
                    help="run one real subnet instead: keys S (n,) stake and W (n, n) weights")
    ep.add_argument("--fast", action="store_true", help="float path instead of the exact fixed point")
    ep.add_argument("--float32", action="store_true", help="with --fast: compute in float32")
    ep.add_argument("--yuma3", action="store_true", help="Yuma 3 bonds")
    ep.add_argument("--liquid-alpha", action="store_true", help="Yuma 3 liquid alpha (implies nothing without --yuma3)")
    ep.add_argument("--payout", choices=("chain", "exact"), default="chain",
                    help="chain: floor like the chain (dust lost); exact: apportion every wei (default chain)")
    ep.add_argument("--emission", type=_wei, default=WEI_PER_MDT, help="wei per subnet and epoch (default 1e9 = 1 MDT)")
    ep.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    ep.add_argument("--top", type=_positive_int, default=5, help="uids listed per subnet (default 5)")
    ep.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the summary as JSON")
    ep.add_argument("--quiet", action="store_true", help="print nothing (with --json)")
    ep.set_defaults(handler=_epoch_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mdt-tensor`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available on this machine")
    try:
        return int(args.handler(args))
    except (MdtError, OSError) as exc:
        print(f"mdt-tensor: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
