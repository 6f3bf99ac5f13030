"""The package installs, ships its kernels package and py.typed, and CI runs the README's command."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"# run the tests\n(.+)\n", text)
    assert match, "README's quick start must have a '# run the tests' line followed by the command"
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert _readme_test_command() in ci_lines


@pytest.mark.slow
def test_non_editable_install_into_fresh_venv_imports_kernels(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(ROOT)],
        check=True,
    )
    (wheel,) = wheel_dir.glob("mdt_tensor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mdt_tensor/kernels/__init__.py" in names
    assert "mdt_tensor/py.typed" in names

    venv = tmp_path / "venv"
    # System site-packages provide torch and friends; the venv's own copy of mdt_tensor comes first.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True)
    probe = "import mdt_tensor.kernels as k, mdt_tensor as mt; print(k.__file__); print(mt.__file__)"
    out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    kernels_file, package_file = out.stdout.split()
    assert kernels_file.startswith(str(venv)), kernels_file
    assert package_file.startswith(str(venv)), package_file
