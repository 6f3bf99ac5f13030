"""The errors of the snapshot readers and result writers.

A snapshot is untrusted input: every problem with one (missing, unreadable, corrupt, hostile,
or holding bad values) is a :class:`SnapshotError` naming the file, the field and the first bad
index. A writer whose optional dependency is absent raises :class:`MissingExtraError` naming the
extra to install.
"""

from __future__ import annotations

from ..errors import MdtError

__all__ = ["SnapshotError", "MissingExtraError"]


class SnapshotError(MdtError, ValueError):
    """A snapshot file is missing, unreadable, corrupt, refused as unsafe, or holds bad values."""


class MissingExtraError(MdtError, ImportError):
    """An optional dependency (``pyarrow``, ``matplotlib``) is needed but not installed."""
