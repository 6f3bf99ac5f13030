"""The ``mdt-tensor`` command line: a parser that dispatches to one module per subcommand.

``mdt-tensor epoch`` (:mod:`.epoch`) runs the Yuma epoch on the built-in demo network
(:mod:`.demo`) or a snapshot file (:mod:`.snapshot`) and prints a summary per subnet.
"""

from __future__ import annotations

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
