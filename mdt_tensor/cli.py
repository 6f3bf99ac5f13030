"""The ``mdt-tensor`` command (placeholder until the epoch command lands)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mdt-tensor`` console script."""
    parser = argparse.ArgumentParser(prog="mdt-tensor", description=__doc__)
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
