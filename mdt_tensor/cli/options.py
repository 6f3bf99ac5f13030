"""Option checks the subcommands share: argparse ``type=`` callables and handler-time checks.

The ``type=`` callables raise ``argparse.ArgumentTypeError`` (a usage error, exit 2). The checks
run in a handler (emission, device, hyperparameters, output paths) raise the package's errors
naming the option, which :func:`mdt_tensor.cli.failures.guarded` turns into exit 2. Kept apart
from :mod:`.parser` so every subcommand module can use them without importing the parser.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

import torch

from ..chain import yuma
from ..errors import MdtError, ValueRangeError

__all__ = ["positive_int", "seed", "port", "add_debug", "parse_emission", "emission_option", "check_device",
           "read_hyperparameters", "check_output_folder"]

#: Seeds of torch's generators: ``[0, 2**63)`` (negative seeds are refused, not wrapped).
_SEED_LIMIT = 2**63


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def seed(text: str) -> int:
    """A generator seed in ``[0, 2**63)``."""
    value = int(text)
    if not 0 <= value < _SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**63), got {text}")
    return value


def port(text: str) -> int:
    """A TCP port in ``[0, 65535]`` (0: any free port)."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in [0, 65535], got {text}")
    return value


def add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug`` on a subcommand (once); it only ever turns on the global flag of the same name."""
    if "--debug" not in parser._option_string_actions:
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show the traceback of an error instead of one line")


def parse_emission(text: str) -> int:
    """Wei per epoch from text with a unit: ``"1 MDT"``, ``"1MDT"``, ``"0.5 MDT"``, ``"1000000000 wei"``.

    Read by :func:`mdt_tensor.parse_balance` (a unit is required; finer than one wei is an error).

    Raises:
        BalanceError, DTypeError: malformed text, no unit, or sub-wei precision.
        ValueRangeError: negative or not below ``2**63`` wei.

    Example:
        >>> parse_emission("0.5 MDT"), parse_emission("1000000000 wei")
        (500000000, 1000000000)
    """
    from ..money import parse_balance

    wei = parse_balance(text.strip()).wei
    if not 0 <= wei < 2**63:
        raise ValueRangeError(f"Expected an emission in [0, 2**63) wei, but got {wei} wei.")
    return int(wei)


def emission_option(text: str) -> int:
    """:func:`parse_emission` for ``--emission``: errors name the option and the text."""
    if text.strip().lstrip("+-").isdigit():
        raise ValueRangeError(f"--emission {text!r}: no unit; write '{text.strip()} wei' or '{text.strip()} MDT'")
    try:
        return parse_emission(text)
    except MdtError as exc:
        raise ValueRangeError(f"--emission {text!r}: {exc}") from None


def check_device(text: str) -> torch.device:
    """The torch device ``--device`` names, checked usable (one tensor is allocated there)."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueRangeError(f"--device {text}: not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueRangeError(f"--device {text}: CUDA is not available on this machine")
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueRangeError(f"--device {text}: cannot be used ({str(exc).splitlines()[0][:120]})") from None
    return device


def read_hyperparameters(path: Path | None, base: yuma.YumaParams | None = None,
                         err: TextIO | None = None) -> yuma.YumaParams:
    """``YumaParams`` from ``--hyperparameters FILE.json`` (the SDK's names) over ``base``.

    Unknown names are ignored with a note on ``err``; a bad file or value names the option.
    """
    from ..io.errors import SnapshotError
    from ..io.hyperparams import chain_fields, params_from_chain

    base = base if base is not None else yuma.YumaParams()
    if path is None:
        return base
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"--hyperparameters {path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    except ValueError as exc:
        raise SnapshotError(f"--hyperparameters {path}: not valid JSON ({exc})") from None
    if not isinstance(mapping, dict):
        raise SnapshotError(f"--hyperparameters {path}: expected a JSON object of SDK names, got {type(mapping).__name__}")
    _, _, unknown = chain_fields(mapping)
    if unknown and err is not None:
        print(f"mdt-tensor: note: ignored unknown hyperparameter(s): {', '.join(sorted(unknown))}", file=err)
    try:
        return params_from_chain(mapping, base=base)
    except MdtError as exc:
        raise ValueRangeError(f"--hyperparameters {path}: {exc}") from None


def check_output_folder(option: str, path: Path | None) -> None:
    """Refuse an output path whose folder does not exist, before any work is done."""
    if path is None:
        return
    if path.is_dir():
        raise ValueRangeError(f"{option} {path}: is a folder; name the file to write")
    if not path.parent.is_dir():
        raise ValueRangeError(f"{option} {path}: the folder {path.parent} does not exist")
