"""The ``mdt-tensor`` argument parser and its dispatch to one module per subcommand.

Each subcommand module (today :mod:`.epoch`) adds its own subparser with ``add_parser`` and
handles its arguments with the ``handler`` it sets; :func:`main` parses, checks what all
subcommands share (the device) and turns the package's errors into exit status 2.
"""

from __future__ import annotations

import argparse
import sys

import torch

from ..errors import MdtError
from . import epoch, info, replay, serve_weights

__all__ = ["build_parser", "main"]

#: The subcommand modules, in the order ``--help`` lists them.
_COMMANDS = (epoch, replay, serve_weights, info)

_EPILOG = "examples:\n" + "".join(command.EXAMPLES for command in _COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mdt-tensor`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="mdt-tensor",
        description="mdt_tensor: torch-native weights, Yuma consensus and exact money for Bittensor-style networks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(commands, _EPILOG)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mdt-tensor`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    device = getattr(args, "device", "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {device}: CUDA is not available on this machine")
    try:
        return int(args.handler(args))
    except (MdtError, OSError) as exc:
        print(f"mdt-tensor: error: {exc}", file=sys.stderr)
        return 2
