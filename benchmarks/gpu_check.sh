#!/usr/bin/env bash
# The GPU check: on a CUDA machine, run the `cuda`-marked tests and the benchmarks on `cuda`, and
# write everything under OUT_DIR (default: ./gpu_check_out). Without CUDA it says so, records the
# machine, and exits 0 having skipped the CUDA parts. Bounded to about 8 minutes in all.
#
#   bash benchmarks/gpu_check.sh OUT_DIR            # e.g. OUT_DIR=$OUT on a lent device machine
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check_out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1

python3 -m mdt_tensor.cli info --json > "$out/info.json" 2> "$out/info.err" || echo "info failed" >> "$out/info.err"
if ! python3 -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device here; skipped the CUDA tests and benchmarks (machine: $out/info.json)" | tee "$out/summary.txt"
    exit 0
fi

status=0
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
# The CUDA and CuPy tests: about 2 minutes on an H100/H200.
timeout 240 python3 -m pytest -q -m cuda -p no:cacheprovider --timeout 120 tests > "$out/tests_cuda.txt" 2>&1 || status=1
# The benchmarks on the device, quick sizes: about 3 minutes.
timeout 240 python3 -m benchmarks --quick --device cuda --json "$out/benchmarks_cuda.json" > "$out/benchmarks_cuda.txt" 2>&1 || status=1
{
    echo "gpu_check: exit $status"
    tail -n 3 "$out/tests_cuda.txt"
    grep -c "| NO |" "$out/benchmarks_cuda.txt" | sed 's/^/benchmark rows below target: /'
} | tee "$out/summary.txt"
exit $status
