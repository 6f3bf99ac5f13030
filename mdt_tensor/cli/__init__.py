"""The ``mdt-tensor`` command line."""

from __future__ import annotations

from .app import build_parser, main

__all__ = ["build_parser", "main"]
