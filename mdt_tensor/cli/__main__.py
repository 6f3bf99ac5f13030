"""``python -m mdt_tensor.cli``: the mdt-tensor command."""

import sys

from .parser import main

if __name__ == "__main__":
    sys.exit(main())
