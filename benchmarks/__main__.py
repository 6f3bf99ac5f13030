"""Run the benchmark suite and print ratios; see ``benchmarks/README.md`` for recorded figures."""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import pkgutil
import platform
import sys

import torch

import benchmarks
from benchmarks._harness import Comparison, Context


def _modules() -> list[str]:
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


def _machine(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (torch {torch.__version__}, {torch.get_num_threads()} threads)"


def _print_table(name: str, rows: list[Comparison]) -> None:
    print(f"\n## {name}\n")
    print("| benchmark | ours | baseline | baseline's | speed-up (size: ours / baseline) | target | met | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        met = {True: "yes", False: "NO", None: "-"}[r.met]
        notes = "; ".join(f"{k}: {v}" for k, v in r.extra.items())
        if r.unit == "MB":  # a size against a size: ours / baseline
            ours, base, ratio = f"{r.ours_s:.0f} MB", f"{r.baseline_s:.0f} MB", f"{1 / r.speedup:.2f}x its size"
        else:
            ours, base, ratio = f"{r.ours_s * 1e3:.3f} ms", f"{r.baseline_s * 1e3:.3f} ms", f"{r.speedup:.2f}x"
        print(f"| {r.name} | {ours} | {r.baseline} | {base} | {ratio} | {r.target} | {met} | {notes} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", const="quick", dest="mode", help="smaller sizes, fewer repeats")
    mode.add_argument("--smoke", action="store_const", const="smoke", dest="mode", help="tiny sizes: check that everything runs")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(_modules())}")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    ctx = Context(mode=args.mode or "full", device=args.device)
    names = [n for n in args.only.split(",") if n] or _modules()
    unknown = sorted(set(names) - set(_modules()))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    print(f"# mdt_tensor benchmarks, {datetime.date.today()}, mode {ctx.mode}, device {ctx.device}: {_machine(ctx.device)}")
    results: dict[str, list[dict[str, object]]] = {}
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        rows = module.run(ctx)
        _print_table(name, rows)
        results[name] = [dict(r.__dict__, speedup=r.speedup, met=r.met) for r in rows]
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": _machine(ctx.device), "mode": ctx.mode, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
