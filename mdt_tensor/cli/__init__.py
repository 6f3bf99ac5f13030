"""The ``mdt-tensor`` command line: a parser that dispatches to one module per subcommand.

``epoch`` (:mod:`.epoch`: the demo network of :mod:`.demo` or a snapshot), ``replay`` (a series
of snapshots, exported), ``serve-weights``, ``info``; ``--distributed`` (:mod:`.distributed`) and
the error rules every subcommand follows (:mod:`.failures`) are shared.
"""

from __future__ import annotations

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
