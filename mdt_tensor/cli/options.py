"""Option parsers the subcommands share (argparse ``type=`` callables).

They turn the text of an option into a value or raise ``argparse.ArgumentTypeError``, which
argparse reports as a usage error (exit status 2). Kept apart from :mod:`.parser` so that every
subcommand module can use them without importing the parser that imports it.
"""

from __future__ import annotations

import argparse

__all__ = ["positive_int", "wei"]


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def wei(text: str) -> int:
    """An amount of wei in ``[0, 2**63)`` (it must fit the chain's int64 tensors)."""
    value = int(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected wei in [0, 2**63), got {text}")
    return value
