"""The rules every ``mdt-tensor`` subcommand follows when something goes wrong.

Exit 0 on success; 2 on bad input or a bad option (a missing, unreadable, corrupt or hostile
file, a value out of range, an unknown option), with ONE line on stderr naming what was wrong;
1 for an unexpected internal error, also one line. ``--debug`` (before or after the subcommand)
lets the exception through, traceback included. :func:`guarded` applies the rules to a
subcommand's handler; :class:`OneLineParser` makes argparse's usage errors one line too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn, TextIO

from ..errors import MdtError

__all__ = ["BAD_INPUT", "UsageError", "OneLineParser", "one_line", "error_line", "exit_status", "guarded"]

#: What a handler raises for bad input (exit 2): the package's errors (readers, options, the
#: epoch's checks, a distributed job's failure), the OS's (missing, unreadable, unwritable), and
#: ValueError (malformed text, e.g. a JSON file or a number).
BAD_INPUT = (MdtError, OSError, ValueError)


class UsageError(MdtError, ValueError):
    """An option argparse refused (unknown, missing, or not of its type)."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors raise :class:`UsageError` instead of printing usage.

    The subcommands' parsers inherit it (``add_subparsers`` makes parsers of the parent's class),
    so :func:`mdt_tensor.cli.main` reports every usage error as one line and exit status 2.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (whitespace collapsed), or its type name if empty.

    An ``OSError`` from the system reads ``FILE: reason`` (``/x.json: No such file or directory``).
    """
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


def error_line(command: str | None, exc: BaseException) -> str:
    """``mdt-tensor COMMAND: error: MESSAGE`` for bad input, ``... internal error: ...`` otherwise."""
    prog = f"mdt-tensor {command}" if command else "mdt-tensor"
    if isinstance(exc, BAD_INPUT):
        return f"{prog}: error: {one_line(exc)}"
    return f"{prog}: internal error: {type(exc).__name__}: {one_line(exc)} (rerun with --debug for the traceback)"


def exit_status(exc: BaseException) -> int:
    """2 for bad input, 130 for an interrupt, 1 for anything else."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return 2 if isinstance(exc, BAD_INPUT) else 1


def guarded(command: str | None, call: Callable[[], int], *, debug: bool = False, err: TextIO | None = None,
            report: bool = True) -> int:
    """Run a subcommand's handler under the rules; returns the exit status.

    Args:
        command: the subcommand's name, for the message.
        call: the handler (returns its status; raises on failure).
        debug: let the exception propagate (Python prints the traceback).
        err: where the one line goes (default ``sys.stderr``).
        report: print the line (a distributed job prints it on rank 0 only).
    """
    try:
        return int(call())
    except (Exception, KeyboardInterrupt) as exc:
        if debug:
            raise
        if report:
            line = "mdt-tensor: interrupted" if isinstance(exc, KeyboardInterrupt) else error_line(command, exc)
            print(line, file=err or sys.stderr)
        return exit_status(exc)
