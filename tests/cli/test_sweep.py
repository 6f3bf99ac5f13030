"""``mdt-tensor sweep CONFIG.toml``: the example config runs and writes its outputs; bad input exits 2 in one line."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import pytest

from mdt_tensor.cli import sweep as sweep_cli

SMALL = """\
[base]
scenario = "copier"
epochs = 4
options = { epochs = 4, validators = 3, miners = 4 }

[grid]
kappa = [0.4, 0.6]
bonds_moving_avg = [0.9, 0.975]

[summary]
group = [2]
validator = 2

[output]
table = "rows.csv"
summary = "summary.csv"
payout = "exact"
"""


def _run(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="mdt-tensor")
    sweep_cli.add_parser(parser.add_subparsers(dest="command"), "")
    args = parser.parse_args(["sweep", *argv])
    out, err = io.StringIO(), io.StringIO()
    return args.handler(args, out, err), out.getvalue(), err.getvalue()


def test_small_config_writes_the_table_and_summary(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SMALL)
    code, out, err = _run([str(tmp_path / "s.toml")])
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "rows.csv").open()))
    assert len(rows) == 4 * 4 * 7  # points x epochs x uids
    per_epoch: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["point"], row["epoch"])
        per_epoch[key] = per_epoch.get(key, 0) + int(row["server_emission_wei"]) + int(row["validator_emission_wei"])
    assert set(per_epoch.values()) == {10**9}
    assert len(list(csv.DictReader((tmp_path / "summary.csv").open()))) == 4
    assert "wrote table" in out


def test_example_config_prints_and_parses(tmp_path: Path) -> None:
    code, out, _ = _run(["--example"])
    assert code == 0 and "[grid]" in out
    import tomllib

    assert set(tomllib.loads(out)) == {"base", "params", "grid", "summary", "output"}


@pytest.mark.parametrize("text, message", [
    ("[base\n", "not valid TOML"),
    ("[grid]\nkappa = [0.5]\n", "[base] section is missing"),
    ("[base]\nscenario = 'copier'\n[grid]\nkappa = [0.5]\n[extra]\n", "unknown section [extra]"),
    ("[base]\nscenario = 'nope'\n[grid]\nkappa = [0.5]\n", "unknown; the library has"),
    ("[base]\nscenario = 'copier'\nsnapshot = 'x.npz'\n[grid]\nkappa = [0.5]\n", "exactly one of"),
    ("[base]\nscenario = 'copier'\n[grid]\nkapa = [0.5]\n", "Unknown grid parameter"),
    ("[base]\nscenario = 'copier'\n[grid]\nkappa = [0.5]\n[params]\nkapa = 1\n", "[params]"),
    ("[base]\nscenario = 'copier'\n[grid]\nkappa = [0.5]\n[output]\ntable = 'x.txt'\n", "unknown table format"),
    ("[base]\nscenario = 'copier'\nepochs = 0\n[grid]\nkappa = [0.5]\n", "positive integer"),
    ("[base]\nsnapshot = 'missing.npz'\n[grid]\nkappa = [0.5]\n", "missing.npz"),
])
def test_bad_config_exits_2_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.toml").write_text(text)
    code, out, err = _run([str(tmp_path / "bad.toml")])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("mdt-tensor sweep: error:") and message in err


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    code, _, err = _run([str(tmp_path / "none.toml")])
    assert code == 2 and "cannot be read" in err
