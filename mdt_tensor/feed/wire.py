"""The wire format of one validator's weight row, and the checks a received row must pass.

Binary form (``Content-Type: application/x-mdt-weights``), all integers little-endian::

    offset  size  field
    0       4     magic   b"MDTW"
    4       1     version 1
    5       1     dtype   1 = u16 (the only one defined)
    6       2     reserved, 0
    8       4     n       number of weights (u32)
    12      2*n   the weights, u16 each

JSON form (``application/json``): ``{"uid": 3, "n": 4096, "weights": [0, 65535, ...]}`` or a bare
list of numbers. A JSON value must be an integer in [0, 65535]; NaN, infinities, negatives,
fractions and anything else reject the row. A validator's own service can speak either form.
"""

from __future__ import annotations

import enum
import json
import struct
from typing import Any

import numpy as np
import torch

from .._constants import U16_MAX
from ..errors import ValueRangeError

__all__ = ["MAGIC", "VERSION", "DTYPE_U16", "HEADER_SIZE", "CONTENT_TYPE", "RejectReason", "RowRejected",
           "encode_row", "encode_row_json", "decode_row"]

MAGIC = b"MDTW"
VERSION = 1
DTYPE_U16 = 1
CONTENT_TYPE = "application/x-mdt-weights"
_HEADER = struct.Struct("<4sBBHI")
HEADER_SIZE = _HEADER.size  # 12


class RejectReason(enum.StrEnum):
    """Why a received row was refused."""

    MALFORMED = "malformed"  # neither the binary form nor JSON, or a JSON row of non-numbers
    VERSION = "version"  # a binary header of another version
    DTYPE = "dtype"  # an unknown binary dtype, or JSON values that are not integers
    LENGTH = "length"  # not n weights (or a body that does not match its header)
    NOT_FINITE = "not_finite"  # NaN or an infinity
    NEGATIVE = "negative"
    OUT_OF_RANGE = "out_of_range"  # above 65535
    TOO_LARGE = "too_large"  # the response exceeded the size cap


class RowRejected(ValueRangeError):
    """A row failed a check; ``reason`` says which (a :class:`RejectReason`)."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def encode_row(row: torch.Tensor | np.ndarray) -> bytes:
    """The binary form of one row of u16 values (1-D, integer, in [0, 65535]).

    Example:
        >>> encode_row(np.array([1, 65535]))
        b'MDTW\\x01\\x01\\x00\\x00\\x02\\x00\\x00\\x00\\x01\\x00\\xff\\xff'
    """
    values = np.asarray(row.cpu().numpy() if isinstance(row, torch.Tensor) else row)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise RowRejected(RejectReason.DTYPE, f"expected a 1-D integer row, got {values.dtype} of shape {values.shape}")
    _check_u16(values)
    return _HEADER.pack(MAGIC, VERSION, DTYPE_U16, 0, values.shape[0]) + values.astype("<u2").tobytes()


def encode_row_json(row: torch.Tensor | np.ndarray, uid: int) -> bytes:
    """The JSON form of one row (see the module docstring)."""
    values = np.asarray(row.cpu().numpy() if isinstance(row, torch.Tensor) else row)
    return json.dumps({"uid": uid, "n": int(values.shape[0]), "weights": values.tolist()}).encode()


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_u16(values: np.ndarray) -> None:
    if values.size and values.min() < 0:
        i = _first(values < 0)
        raise RowRejected(RejectReason.NEGATIVE, f"weight {i} is {values[i]}")
    if values.size and values.max() > U16_MAX:
        i = _first(values > U16_MAX)
        raise RowRejected(RejectReason.OUT_OF_RANGE, f"weight {i} is {values[i]} > {U16_MAX}")


def _decode_binary(body: bytes, n: int) -> np.ndarray:
    if len(body) < HEADER_SIZE:
        raise RowRejected(RejectReason.MALFORMED, f"a binary row needs a {HEADER_SIZE}-byte header, got {len(body)} bytes")
    _, version, dtype, _, count = _HEADER.unpack_from(body)
    if version != VERSION:
        raise RowRejected(RejectReason.VERSION, f"format version {version}, expected {VERSION}")
    if dtype != DTYPE_U16:
        raise RowRejected(RejectReason.DTYPE, f"dtype code {dtype}, expected {DTYPE_U16} (u16)")
    if count != n:
        raise RowRejected(RejectReason.LENGTH, f"{count} weights, expected {n}")
    if len(body) != HEADER_SIZE + 2 * n:
        raise RowRejected(RejectReason.LENGTH, f"body of {len(body)} bytes, expected {HEADER_SIZE + 2 * n} for {n} weights")
    return np.frombuffer(body, dtype="<u2", count=n, offset=HEADER_SIZE)


def _decode_json(body: bytes, n: int) -> np.ndarray:
    try:
        document: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise RowRejected(RejectReason.MALFORMED, "neither the binary form nor JSON") from None
    values = document.get("weights") if isinstance(document, dict) else document
    if not isinstance(values, list):
        raise RowRejected(RejectReason.MALFORMED, "JSON without a list of weights")
    if len(values) != n:
        raise RowRejected(RejectReason.LENGTH, f"{len(values)} weights, expected {n}")
    bad = next((i for i, v in enumerate(values) if isinstance(v, bool) or not isinstance(v, (int, float))), None)
    if bad is not None:
        raise RowRejected(RejectReason.MALFORMED, f"weight {bad} is {values[bad]!r}, not a number")
    try:
        array = np.asarray(values, dtype=np.float64)
    except OverflowError:
        raise RowRejected(RejectReason.OUT_OF_RANGE, "an integer too large for any weight") from None
    if not np.isfinite(array).all():
        i = _first(~np.isfinite(array))
        raise RowRejected(RejectReason.NOT_FINITE, f"weight {i} is {array[i]}")
    _check_u16(array)
    if (array != np.floor(array)).any():
        i = _first(array != np.floor(array))
        raise RowRejected(RejectReason.DTYPE, f"weight {i} is {array[i]}, not an integer")
    return array


def decode_row(body: bytes, n: int) -> np.ndarray:
    """The ``n`` weights of a received body (binary or JSON), checked; raises :class:`RowRejected`.

    Returns a 1-D array (u16 for the binary form, float64 holding integers for JSON), ready to be
    copied into an integer or float buffer.

    Example:
        >>> decode_row(encode_row(np.array([3, 4])), 2).tolist()
        [3, 4]
        >>> decode_row(b'[1, NaN]', 2)
        Traceback (most recent call last):
        ...
        mdt_tensor.feed.wire.RowRejected: not_finite: weight 1 is nan
    """
    if body[:4] == MAGIC:
        return _decode_binary(body, n)
    return _decode_json(body, n)
