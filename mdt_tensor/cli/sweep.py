"""``mdt-tensor sweep CONFIG.toml``: a parameter sweep described in a TOML file, exported.

The file names a base (a snapshot file or folder, or a scenario of ``mt.studio.SCENARIOS``), the
grid, the epochs and the outputs (a per-uid table and a per-point summary as CSV / JSON lines /
Parquet, a PNG heat map); relative paths are read from the config file's folder. Bad input of
any kind exits 2 with one line saying what was wrong (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tomllib
from pathlib import Path
from typing import Any, TextIO

from ..errors import MdtError, ValueRangeError
from ..io.errors import MissingExtraError
from ..io.export import write_table
from ..io.hyperparams import params_from_chain
from .replay import parse_emission

__all__ = ["EXAMPLES", "add_parser", "run_sweep", "EXAMPLE_CONFIG"]

EXAMPLES = """\
  mdt-tensor sweep sweep.toml                          grid, base and outputs in one TOML file
  mdt-tensor sweep sweep.toml --fast --quiet           the float path, nothing printed
"""

#: A complete config, shown by ``mdt-tensor sweep --example``.
EXAMPLE_CONFIG = """\
[base]
scenario = "copier"            # or: snapshot = "sn15.npz" (a file or a folder of snapshots)
epochs = 20

[params]                       # optional: the subnet's hyperparameters by the SDK's names
yuma_version = 2

[grid]                         # fractions, or integers in chain units; liquid_alpha: bools or [low, high]
kappa = [0.4, 0.5, 0.6]
bonds_moving_avg = [0.9, 0.975]

[summary]                      # optional
group = [3]                    # uids whose dividends share is summarised
validator = 3                  # uid whose bonds are summarised

[output]
table = "sweep_rows.csv"       # one row per grid point, epoch and uid (.csv, .jsonl, .parquet)
summary = "sweep_summary.csv"  # one row per grid point
plot = "sweep.png"             # heat map of `metric` over the first two grid axes
metric = "group_dividends_share"
emission = "1 MDT"
payout = "chain"               # chain: floor like the chain; exact: every wei paid
"""

_SECTIONS = {"base": {"snapshot", "scenario", "epochs", "options"}, "params": None, "grid": None,
             "summary": {"group", "validator"},
             "output": {"table", "summary", "plot", "metric", "emission", "payout"}}
_TABLES = (".csv", ".jsonl", ".ndjson", ".parquet")


def add_parser(commands: Any, epilog: str) -> None:
    """Add the ``sweep`` subcommand to ``commands`` (the ``mdt-tensor`` parser's subparsers action)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "sweep",
        help="run a parameter grid over a snapshot or a scenario (config in TOML) and export the results",
        description="Run every parameter set of a grid over the same epochs of a base subnet (a snapshot or a "
                    "scenario of the studio's library), then write the per-uid table, the per-point summary and a "
                    "heat map. `--example` prints a complete config.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + EXAMPLES,
    )
    parser.add_argument("config", nargs="?", type=Path, metavar="CONFIG.toml", help="the sweep's configuration")
    parser.add_argument("--example", action="store_true", help="print a complete example config and exit")
    parser.add_argument("--fast", action="store_true", help="float path instead of the exact fixed point")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    parser.set_defaults(handler=run_sweep)


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            config = tomllib.load(handle)
    except OSError as exc:
        raise ValueRangeError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueRangeError(f"{path}: not valid TOML ({exc})") from None
    for section, value in config.items():
        if section not in _SECTIONS:
            raise ValueRangeError(f"{path}: unknown section [{section}]; expected {', '.join(_SECTIONS)}")
        if not isinstance(value, dict):
            raise ValueRangeError(f"{path}: `{section}` must be a [{section}] table")
        allowed = _SECTIONS[section]
        unknown = sorted(set(value) - allowed) if allowed is not None else []
        if unknown:
            raise ValueRangeError(f"{path}: unknown key(s) in [{section}]: {', '.join(unknown)}")
    for section in ("base", "grid"):
        if not config.get(section):
            raise ValueRangeError(f"{path}: the [{section}] section is missing or empty")
    return config


def _base(base: dict[str, Any], folder: Path) -> Any:
    from ..studio.scenarios import SCENARIOS

    if ("snapshot" in base) == ("scenario" in base):
        raise ValueRangeError("[base] needs exactly one of `snapshot` (a path) or `scenario` (a name)")
    if "snapshot" in base:
        return folder / str(base["snapshot"])
    name = base["scenario"]
    if name not in SCENARIOS:
        raise ValueRangeError(f"[base] scenario {name!r}: unknown; the library has {', '.join(sorted(SCENARIOS))}")
    options = base.get("options", {})
    if not isinstance(options, dict):
        raise ValueRangeError("[base] options must be a table of the scenario's keyword arguments")
    try:
        return SCENARIOS[name](**options)
    except TypeError as exc:
        raise ValueRangeError(f"[base] options for scenario {name!r}: {exc}") from None


def _outputs(output: dict[str, Any], folder: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {key: folder / str(output[key]) for key in ("table", "summary", "plot") if key in output}
    for key, path in paths.items():
        if not path.parent.is_dir():
            raise ValueRangeError(f"[output] {key} {path}: the folder {path.parent} does not exist")
        if key != "plot" and path.suffix.lower() not in _TABLES:
            raise ValueRangeError(f"[output] {key} {path}: unknown table format; use .csv, .jsonl or .parquet")
        if path.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
            raise MissingExtraError(f"[output] {key} {path}: Parquet needs pyarrow: pip install pyarrow (or use .csv)")
    if "plot" in paths:
        if paths["plot"].suffix.lower() != ".png":
            raise ValueRangeError(f"[output] plot {paths['plot']}: the plot is written as PNG; name it *.png")
        if importlib.util.find_spec("matplotlib") is None:
            raise MissingExtraError("[output] plot needs matplotlib: pip install 'mdt-tensor[plot]'")
    return paths


def _execute(args: argparse.Namespace, out: TextIO) -> None:
    from ..studio.plot import plot_sweep
    from ..studio.sweep import sweep

    if args.config is None:
        raise ValueRangeError("give a CONFIG.toml (or --example to print one)")
    config = _load(args.config)
    folder = args.config.parent
    output = config.get("output", {})
    paths = _outputs(output, folder)
    try:
        params = params_from_chain(config.get("params", {}), strict=True)
        emission = parse_emission(str(output.get("emission", "1 MDT")))
    except MdtError as exc:
        raise ValueRangeError(f"[params] / [output] emission: {exc}") from None
    payout = output.get("payout", "chain")
    if payout not in ("chain", "exact"):
        raise ValueRangeError(f"[output] payout {payout!r}: expected chain or exact")
    base = config["base"]
    epochs = base.get("epochs")
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
        raise ValueRangeError(f"[base] epochs {epochs!r}: expected a positive integer")
    summary = config.get("summary", {})
    result = sweep(_base(base, folder), config["grid"], epochs=epochs, exact=not args.fast, params=params,
                   emission=emission, payout=payout, group=summary.get("group"), validator=summary.get("validator"))
    metric = str(output.get("metric", "group_dividends_share"))
    summaries = result.summaries()
    if metric not in summaries[0]:
        raise ValueRangeError(f"[output] metric {metric!r}: expected one of {', '.join(k for k in summaries[0] if k != 'point')}")
    if "table" in paths:
        write_table(result.rows(), paths["table"])
    if "summary" in paths:
        write_table(summaries, paths["summary"])
    if "plot" in paths:
        plot_sweep(result, paths["plot"], metric=metric)
    if not args.quiet:
        _report(result.names, summaries, metric, out)
        for key, path in paths.items():
            print(f"wrote {key} {path}", file=out)


def _report(names: list[str], summaries: list[dict[str, Any]], metric: str, out: TextIO) -> None:
    headers = ["point", *names, metric, "incentive_hhi", "paid_wei"]
    rows = [[str(row[h]) if not isinstance(row[h], float) else f"{row[h]:.4f}" for h in headers] for row in summaries]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)), file=out)
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)), file=out)


def run_sweep(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``mdt-tensor sweep``; returns the exit status (0 done, 2 bad input, 1 internal error)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if args.example:
        print(EXAMPLE_CONFIG, file=out, end="")
        return 0
    try:
        _execute(args, out)
    except (MdtError, OSError, ValueError) as exc:
        if args.debug:
            raise
        print(f"mdt-tensor sweep: error: {' '.join(str(exc).split())}", file=err)
        return 2
    except Exception as exc:  # a bug, not bad input: still one line unless --debug
        if args.debug:
            raise
        print(f"mdt-tensor sweep: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", file=err)
        return 1
    return 0
