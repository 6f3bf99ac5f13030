"""``mdt-tensor info``: versions, devices, active compute engines and the CPU's instruction set.

What a bug report or a benchmark table needs to say about the machine: which SIMD paths numpy
and torch take here (they differ between AVX2-only and AVX-512 CPUs), whether CUDA, CuPy and
Triton are usable, and which CPU engine the numpy kernels run under.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from typing import Any

import torch

from .._cpu.engine import current_cpu_engine

__all__ = ["EXAMPLES", "add_parser", "collect_info", "run"]

EXAMPLES = """\
  mdt-tensor info                           versions, devices, engines, the CPU's SIMD level
  mdt-tensor info --json                    the same as JSON
"""

_PACKAGES = ("mdt-tensor", "torch", "numpy", "aiohttp", "tenacity", "psutil", "cupy-cuda12x", "cupy-cuda13x",
             "triton", "uvloop", "matplotlib", "pyarrow", "rich", "tqdm")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _numpy_cpu_features() -> dict[str, Any]:
    """numpy's SIMD baseline, the dispatch targets this CPU supports, and whether AVX-512 is among them."""
    try:
        umath: Any = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:  # numpy < 2 keeps it under numpy.core
        umath = importlib.import_module("numpy.core._multiarray_umath")
    __cpu_baseline__, __cpu_dispatch__, __cpu_features__ = (
        umath.__cpu_baseline__, umath.__cpu_dispatch__, umath.__cpu_features__)
    active = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    return {
        "baseline": list(__cpu_baseline__),
        "dispatch_active": active,
        "avx512": bool(__cpu_features__.get("AVX512F")),
        "disabled_by_env": os.environ.get("NPY_DISABLE_CPU_FEATURES", ""),
    }


def _cuda_devices() -> list[dict[str, Any]]:
    if not torch.cuda.is_available():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append({"index": index, "name": props.name, "memory_bytes": props.total_memory,
                        "capability": f"{props.major}.{props.minor}"})
    return devices


def collect_info() -> dict[str, Any]:
    """Everything ``mdt-tensor info`` prints, as a JSON-ready dict."""
    cuda = _cuda_devices()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in _PACKAGES if _version(name) is not None},
        "cpu": {
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY", ""),
            "numpy": _numpy_cpu_features(),
        },
        "cuda": {"available": bool(cuda), "torch_cuda": torch.version.cuda, "devices": cuda},
        "engines": {
            "torch": True,
            "cpu_kernels": current_cpu_engine(),
            "cupy": importlib.util.find_spec("cupy") is not None,
            "triton": importlib.util.find_spec("triton") is not None,
        },
    }


def _lines(info: dict[str, Any]) -> list[str]:
    cpu, numpy_cpu = info["cpu"], info["cpu"]["numpy"]
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    devices = "; ".join(f"cuda:{d['index']} {d['name']} ({d['memory_bytes'] / 2**30:.0f} GiB, sm {d['capability']})"
                        for d in info["cuda"]["devices"]) or "none"
    engines = info["engines"]
    return [
        f"python     {info['python']} on {info['platform']}",
        f"versions   {versions}",
        f"cpu        {cpu['processor']}, {cpu['cores']} cores, torch {cpu['torch_threads']} threads",
        f"simd       torch {cpu['torch_capability']}; numpy baseline {' '.join(numpy_cpu['baseline'])}, "
        f"dispatch {' '.join(numpy_cpu['dispatch_active']) or '-'} (AVX-512: {'yes' if numpy_cpu['avx512'] else 'no'})",
        f"cuda       {devices}",
        f"engines    torch; numpy CPU kernels: {engines['cpu_kernels']}; "
        f"cupy: {'installed' if engines['cupy'] else 'no'}; triton: {'installed' if engines['triton'] else 'no'}",
    ]


def run(args: argparse.Namespace) -> int:
    """Print the machine's facts; always exit 0."""
    info = collect_info()
    print(json.dumps(info, indent=2) if args.json else "\n".join(_lines(info)))
    return 0


def add_parser(commands: Any, epilog: str) -> None:
    """Add the ``info`` subcommand to ``commands`` (the parser's subparsers action)."""
    parser = commands.add_parser("info", help="versions, devices, engines and the CPU's instruction set",
                                 description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=run)
