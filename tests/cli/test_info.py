"""``mdt-tensor info`` and the GPU check script: they run here and say what the machine is."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from mdt_tensor.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_info_prints_versions_engines_and_simd_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert f"torch {torch.__version__}" in text
    assert torch.backends.cpu.get_cpu_capability() in text
    assert "numpy CPU kernels: auto" in text


def test_info_json_names_devices_and_engines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cuda"]["available"] == torch.cuda.is_available()
    assert len(info["cuda"]["devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert info["engines"]["torch"] is True and info["engines"]["cpu_kernels"] == "auto"
    assert info["cpu"]["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(info["cpu"]["numpy"]["avx512"], bool)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA run of the script is the device check itself")
def test_gpu_check_script_skips_cleanly_without_cuda(tmp_path: Path) -> None:
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped" in (tmp_path / "summary.txt").read_text()
    assert json.loads((tmp_path / "info.json").read_text())["cuda"]["available"] is False
