"""``mdt-tensor replay PATH...``: the Yuma epochs of a series of real snapshots, exported.

Reads snapshot files and folders (``mdt_tensor.io``), orders them by block, runs one epoch per
snapshot carrying bonds, prints per epoch what was paid and to whom, and the agreement with the
chain's stored outputs where the files hold them; ``--out`` writes the per-uid table (CSV, JSON
lines, Parquet), ``--plot`` a PNG. Bad input of any kind exits 2 with one line saying what was
wrong (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import torch

import mdt_tensor as mt
from mdt_tensor.errors import MdtError, ValueRangeError

from ..io.errors import MissingExtraError, SnapshotError
from ..io.export import replay_rows, write_table
from ..io.hyperparams import chain_fields, params_from_chain
from ..io.series import ReplayResult, read_series, replay

__all__ = ["EXAMPLES", "add_parser", "add_replay_parser", "run_replay", "parse_emission"]

EXAMPLES = """\
  mdt-tensor replay sn15.npz                           one snapshot, one exact epoch
  mdt-tensor replay ~/.bittensor/metagraphs/network-finney/netuid-15/ --out sn15.csv --plot sn15.png
  mdt-tensor replay snaps/ --hyperparameters hp.json --emission "0.5 MDT" --payout exact --out rows.parquet
"""

_EPILOG = "examples:\n" + EXAMPLES

_TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")
_SHOWN_EPOCHS = 10


def parse_emission(text: str) -> int:
    """Wei per epoch from text with a unit: ``"1 MDT"``, ``"1MDT"``, ``"0.5 MDT"``, ``"1000000000 wei"``.

    Read by :func:`mdt_tensor.parse_balance` (a unit is required; finer than one wei is an error).

    Raises:
        BalanceError, DTypeError: malformed text, no unit, or sub-wei precision.
        ValueRangeError: negative or not below ``2**63`` wei.

    Example:
        >>> parse_emission("0.5 MDT"), parse_emission("1000000000 wei")
        (500000000, 1000000000)
    """
    wei = mt.parse_balance(text.strip()).wei
    if not 0 <= wei < 2**63:
        raise ValueRangeError(f"Expected an emission in [0, 2**63) wei, but got {wei} wei.")
    return int(wei)


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
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    parser.set_defaults(handler=run_replay)
    return parser


# =============================================================================== option checks


def _device(text: str) -> torch.device:
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueRangeError(f"--device {text}: not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueRangeError(f"--device {text}: CUDA is not available on this machine")
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueRangeError(f"--device {text}: cannot be used ({str(exc).splitlines()[0][:120]})") from None
    return device


def _hyperparameters(path: Path | None, err: TextIO) -> mt.yuma.YumaParams:
    if path is None:
        return mt.yuma.YumaParams()
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"--hyperparameters {path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    except ValueError as exc:
        raise SnapshotError(f"--hyperparameters {path}: not valid JSON ({exc})") from None
    if not isinstance(mapping, dict):
        raise SnapshotError(f"--hyperparameters {path}: expected a JSON object of SDK names, got {type(mapping).__name__}")
    _, _, unknown = chain_fields(mapping)
    if unknown:
        print(f"mdt-tensor replay: note: ignored unknown hyperparameter(s): {', '.join(sorted(unknown))}", file=err)
    try:
        return params_from_chain(mapping)
    except MdtError as exc:
        raise ValueRangeError(f"--hyperparameters {path}: {exc}") from None


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse unusable output options before any work is done."""
    for option, path in (("--out", args.out), ("--plot", args.plot)):
        if path is not None and not path.parent.is_dir():
            raise ValueRangeError(f"{option} {path}: the folder {path.parent} does not exist")
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


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def run_replay(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``mdt-tensor replay``; returns the exit status (0 done, 2 bad input, 1 internal error)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        try:
            emission = parse_emission(args.emission)
        except MdtError as exc:
            raise ValueRangeError(f"--emission {args.emission!r}: {exc}") from None
        if args.payout not in ("chain", "exact"):
            raise ValueRangeError(f"--payout {args.payout}: expected chain or exact")
        device = _device(args.device)
        params = _hyperparameters(args.hyperparameters, err)
        _check_outputs(args)
        series = read_series(args.paths)
        result = replay(series, params, exact=not args.fast, emission=emission, payout=args.payout, device=device)
        if args.out is not None:
            write_table(replay_rows(result), args.out)
        if args.plot is not None:
            from ..io.plot import plot_replay

            plot_replay(result, args.plot)
    except (MdtError, OSError, ValueError) as exc:
        if args.debug:
            raise
        print(f"mdt-tensor replay: error: {_one_line(exc)}", file=err)
        return 2
    except Exception as exc:  # a bug, not bad input: still one line unless --debug
        if args.debug:
            raise
        print(f"mdt-tensor replay: internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug)", file=err)
        return 1
    if not args.quiet:
        _report(result, out)
        for option, path in (("table", args.out), ("plot", args.plot)):
            if path is not None:
                print(f"wrote {option} {path}", file=out)
    return 0
