"""CPU kernels: numpy SIMD code on a tensor's own memory, where a benchmark shows it beats torch.

Each kernel is tested against its torch path; :func:`cpu_engine` chooses between them.
"""

from __future__ import annotations

from .engine import CpuEngine, cpu_engine, current_cpu_engine, use_numpy_kernel
from .threads import chunked_numpy, cpu_thread_pool, run_blocks

__all__ = ["CpuEngine", "cpu_engine", "current_cpu_engine", "use_numpy_kernel", "chunked_numpy", "cpu_thread_pool", "run_blocks"]
