"""The ``mdt-tensor`` argument parser and its dispatch to one module per subcommand.

Each subcommand module adds its subparser with ``add_parser(commands, epilog)``, lists its
``EXAMPLES`` and sets ``handler`` (``handler(args) -> int``; it raises on failure). A module that
supports ``--distributed`` (:mod:`.distributed`) also sets ``dist_handler(args, env) -> int``.
:func:`main` parses and runs the handler under the rules of :mod:`.failures`: exit 0, 2 for bad
input or options with one line on stderr, 1 for an internal error; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import sys

from . import epoch, info, replay, serve_weights, sweep
from .failures import OneLineParser, UsageError, guarded, one_line
from .options import add_debug

__all__ = ["build_parser", "main"]

#: The subcommand modules, in the order ``--help`` lists them (``cli/sweep.py`` joins after replay).
_COMMANDS = (epoch, replay, sweep, serve_weights, info)

_EPILOG = "examples:\n" + "".join(command.EXAMPLES for command in _COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mdt-tensor`` (exposed for documentation and tests)."""
    parser = OneLineParser(
        prog="mdt-tensor",
        description="mdt_tensor: torch-native weights, Yuma consensus and exact money for Bittensor-style networks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(commands, _EPILOG)
    for subparser in commands.choices.values():
        add_debug(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mdt-tensor`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(one_line(exc), file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "distributed", False):
        from .distributed import run_command

        return run_command(args.dist_handler, args)
    return guarded(args.command, lambda: args.handler(args), debug=args.debug)
