"""``mdt-tensor replay PATH...``: the Yuma epochs of a series of real snapshots, exported.

Reads snapshot files and folders (``mdt_tensor.io``), orders them by block, runs one epoch per
snapshot carrying bonds, prints per epoch what was paid and to whom, and the agreement with the
chain's stored outputs where the files hold them; ``--out`` writes the per-uid table (CSV, JSON
lines, Parquet), ``--plot`` a PNG. Errors follow :mod:`.failures` (bad input: exit 2, one line).
With ``--distributed`` the ranks share the reading of the files; the epochs (sequential: bonds
carry) and the exports run on rank 0, so the files equal the single-process ones byte for byte.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

import mdt_tensor as mt
from mdt_tensor.errors import ValueRangeError

from ..io.errors import MissingExtraError
from ..io.export import replay_rows, write_table
from ..io.readers import read_snapshot
from ..io.series import ReplayResult, order_series, read_series, replay, snapshot_files
from . import distributed
from .failures import guarded
from .options import add_debug, check_device, check_output_folder, emission_option, parse_emission, read_hyperparameters

__all__ = ["EXAMPLES", "add_parser", "add_replay_parser", "run", "run_replay", "run_distributed", "parse_emission"]

EXAMPLES = """\
  mdt-tensor replay sn15.npz                           one snapshot, one exact epoch
  mdt-tensor replay ~/.bittensor/metagraphs/network-finney/netuid-15/ --out sn15.csv --plot sn15.png
  mdt-tensor replay snaps/ --hyperparameters hp.json --emission "0.5 MDT" --payout exact --out rows.parquet
"""

_EPILOG = "examples:\n" + EXAMPLES

_TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")
_SHOWN_EPOCHS = 10


def add_parser(commands: Any, epilog: str) -> None:
    """Add the ``replay`` subcommand to ``commands`` (the ``mdt-tensor`` parser's subparsers action)."""
    add_replay_parser(commands)


def add_replay_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``replay`` subcommand to ``subparsers`` (from ``parser.add_subparsers()``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="replay the Yuma epochs of real snapshots (files or folders) and export the results",
        description=(
            "Read snapshots (.npz, the Yuma simulator's .pt, the SDK's Metagraph.save() files, JSON) or folders "
            "of them, order them by block, run one Yuma epoch per snapshot carrying bonds from one to the next, "
            "and report per epoch what was paid, plus the agreement with the chain's stored outputs."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="snapshot files or folders of them")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="write one row per uid and epoch: .csv, .jsonl or .parquet (pyarrow)")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                        help="draw dividends, incentive, incentive vs stake and bonds (matplotlib)")
    parser.add_argument("--hyperparameters", type=Path, default=None, metavar="FILE.json",
                        help="the subnet's hyperparameters by the SDK's names (kappa, bonds_moving_avg, ...)")
    parser.add_argument("--emission", default="1 MDT", metavar="AMOUNT",
                        help='emission per epoch with its unit: "1 MDT", "0.5 MDT", "1000000000 wei" (default 1 MDT)')
    parser.add_argument("--payout", default="chain", metavar="{chain,exact}",
                        help="chain: floor like the chain (dust lost); exact: every wei paid (default chain)")
    parser.add_argument("--fast", action="store_true", help="float path instead of the exact fixed point")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default cpu)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_debug(parser)
    distributed.add_arguments(parser)
    parser.set_defaults(handler=run, dist_handler=run_distributed)
    return parser


# =============================================================================== option checks


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse unusable output options before any work is done."""
    check_output_folder("--out", args.out)
    check_output_folder("--plot", args.plot)
    if args.out is not None:
        if args.out.suffix.lower() not in _TABLE_SUFFIXES:
            raise ValueRangeError(f"--out {args.out}: unknown table format; use .csv, .jsonl or .parquet")
        if args.out.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
            raise MissingExtraError("--out *.parquet needs pyarrow: pip install pyarrow (or use .csv / .jsonl)")
    if args.plot is not None:
        if args.plot.suffix.lower() != ".png":
            raise ValueRangeError(f"--plot {args.plot}: the plot is written as PNG; name it *.png")
        if importlib.util.find_spec("matplotlib") is None:
            raise MissingExtraError("--plot needs matplotlib: pip install 'mdt-tensor[plot]'")


# =============================================================================== report


def _table(headers: list[str], rows: list[list[str]], out: TextIO) -> None:
    """A table through rich when installed (and ``out`` is stdout), else aligned plain text."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None  # noqa: N806
    if Console is not None and out is sys.stdout:
        table = Table(*headers)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)), file=out)
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)), file=out)


def _report(result: ReplayResult, out: TextIO) -> None:
    first, last = result.snapshots[0], result.snapshots[-1]
    netuid = first.netuid if first.netuid is not None else "?"
    blocks = f"block {first.block}" if len(result.snapshots) == 1 else f"blocks {first.block}..{last.block}"
    emission = mt.format_balance(mt.Balance.from_wei(result.emission))
    print(
        f"replayed {len(result.results)} epoch(s) of subnet {netuid}, {blocks}, {last.n} uids, "
        f"{'exact' if result.exact else 'fast'}, payout {result.payout}, {emission} per epoch",
        file=out,
    )
    rows = []
    start = max(0, len(result.results) - _SHOWN_EPOCHS)
    for t in range(start, len(result.results)):
        r, snap = result.results[t], result.snapshots[t]
        paid = int(torch.as_tensor(r.server_emission).sum() + torch.as_tensor(r.validator_emission).sum())
        inc, div = torch.as_tensor(r.incentive_float).cpu(), torch.as_tensor(r.dividends_float).cpu()
        rows.append([
            str(t), str(snap.block), f"{paid:,}", f"{int(torch.as_tensor(r.dust)):,}",
            f"{int(inc.argmax())} ({float(inc.max()):.4f})", f"{int(div.argmax())} ({float(div.max()):.4f})",
            str(len(result.reregistered[t])),
        ])
    if start:
        print(f"(the first {start} epoch(s) are in --out; the last {_SHOWN_EPOCHS} follow)", file=out)
    _table(["epoch", "block", "paid wei", "dust wei", "top incentive uid", "top dividends uid", "re-registered"], rows, out)
    if result.agreement:
        print("agreement with the chain's stored outputs (u16 units):", file=out)
        for a in result.agreement.values():
            print(
                f"  {a.field}: max {a.max_u16} (epoch {a.worst_epoch}, uid {a.worst_uid}), mean {a.mean_u16:.3f} "
                f"over {a.epochs} epoch(s)",
                file=out,
            )
    else:
        print("agreement: the files hold no chain outputs to compare with", file=out)
    for snap in result.snapshots:
        for note in snap.notes:
            print(f"note: {note}", file=out)


# =============================================================================== command


@dataclass(frozen=True)
class _Options:
    """The checked options of one replay."""

    params: mt.yuma.YumaParams
    emission: int

    def run(self, series: list[Any], args: argparse.Namespace, device: torch.device) -> ReplayResult:
        return replay(series, self.params, exact=not args.fast, emission=self.emission, payout=args.payout, device=device)


def _options(args: argparse.Namespace, err: TextIO | None) -> _Options:
    """Check every option before any file is read; raises naming the option."""
    emission = emission_option(args.emission)
    if args.payout not in ("chain", "exact"):
        raise ValueRangeError(f"--payout {args.payout}: expected chain or exact")
    params = read_hyperparameters(args.hyperparameters, None, err)
    _check_outputs(args)
    return _Options(params, emission)


def _write_table(result: ReplayResult, path: Path) -> None:
    write_table(replay_rows(result), path)


def _write_plot(result: ReplayResult, path: Path) -> None:
    from ..io.plot import plot_replay

    plot_replay(result, path)


def _finish(result: ReplayResult, args: argparse.Namespace, out: TextIO) -> None:
    if args.quiet:
        return
    _report(result, out)
    for option, path in (("table", args.out), ("plot", args.plot)):
        if path is not None:
            print(f"wrote {option} {path}", file=out)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``mdt-tensor replay`` on one process; returns 0 and raises on failure (see :mod:`.failures`)."""
    out, err = out or sys.stdout, err or sys.stderr
    options = _options(args, err)
    device = check_device(args.device or "cpu")
    result = options.run(read_series(args.paths), args, device)
    if args.out is not None:
        _write_table(result, args.out)
    if args.plot is not None:
        _write_plot(result, args.plot)
    _finish(result, args, out)
    return 0


def run_replay(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """:func:`run` under the CLI's rules: the exit status (0 done, 2 bad input, 1 internal error), one line on ``err``."""
    return guarded("replay", lambda: run(args, out, err), debug=getattr(args, "debug", False), err=err)


def run_distributed(args: argparse.Namespace, env: distributed.DistEnv) -> int:
    """``replay --distributed``: each rank reads its share of the files; rank 0 replays, prints and writes.

    A series is sequential (each epoch starts from the bonds the previous one left), so its epochs
    run on rank 0; the ranks share the reading and parsing of the files, and the exports are
    the single-process files byte for byte.
    """
    if args.device is not None:
        raise ValueRangeError("--device: not with --distributed (each rank uses its own device: cuda:LOCAL_RANK "
                              "under NCCL, else the CPU)")
    options = distributed.on_every_rank(lambda: _options(args, sys.stderr if env.is_root else None), env, "checking the options")
    files = distributed.on_every_rank(lambda: snapshot_files(args.paths), env, "listing the snapshots")
    snapshots = distributed.map_files(files, read_snapshot, env)
    result = distributed.on_root(lambda: options.run(order_series(snapshots or []), args, env.device), env, "replaying")
    if args.out is not None:
        distributed.write_on_root(args.out, lambda target: _write_table(result, target), env)  # type: ignore[arg-type]
    if args.plot is not None:
        distributed.write_on_root(args.plot, lambda target: _write_plot(result, target), env)  # type: ignore[arg-type]
    if result is not None:
        _finish(result, args, sys.stdout)
    return 0
