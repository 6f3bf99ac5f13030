"""A picture of a replay: who earned what over the epochs, and why (matplotlib, the ``plot`` extra).

Four panels in one PNG: dividends per uid over the epochs (the top validators), incentive per
uid over the epochs (the top miners), incentive against stake at the last epoch, and the last
epoch's bonds as a heatmap (validators with bonds x uids). Drawn on a bare ``Figure`` with the
Agg canvas (no pyplot state, no display needed) and written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import MissingExtraError
from .export import atomic_path
from .series import ReplayResult

__all__ = ["plot_replay"]


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError("plotting needs matplotlib: pip install 'mdt-tensor[plot]' (or matplotlib)") from None
    return Figure, FigureCanvasAgg


def _series(result: ReplayResult, name: str) -> torch.Tensor:
    """``(T, n_max)`` float: ``name`` per epoch and uid (zero-padded where a subnet was smaller)."""
    values = [torch.as_tensor(getattr(r, name)).detach().cpu().to(torch.float64) for r in result.results]
    width = max(v.shape[-1] for v in values)
    return torch.stack([torch.nn.functional.pad(v, (0, width - v.shape[-1])) for v in values])


def _lines(axis: Any, x: list[int], values: torch.Tensor, top: int, title: str) -> None:
    ranked = torch.argsort(values.sum(0), descending=True)[:top]
    for uid in ranked.tolist():
        if float(values[:, uid].sum()) > 0:
            axis.plot(x, values[:, uid].tolist(), marker="o" if len(x) < 30 else None, markersize=3, label=f"uid {uid}")
    axis.set_title(title)
    axis.set_xlabel("block" if x and x[0] != 0 else "epoch")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7, ncol=2)


def plot_replay(result: ReplayResult, path: str | Path, *, top: int = 8, size: tuple[float, float] = (12.0, 9.0), dpi: int = 100) -> Path:
    """Draw ``result`` into a PNG of ``size * dpi`` pixels (default 1200 x 900) at ``path``.

    Args:
        result: what :func:`replay` returned.
        path: the PNG to write (written atomically).
        top: uids drawn per line panel (the largest totals).
        size, dpi: figure size in inches and resolution.

    Raises:
        MissingExtraError: matplotlib is not installed.
    """
    Figure, FigureCanvasAgg = _matplotlib()
    path = Path(path)
    figure = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2)
    blocks = [s.block if s.block is not None else t for t, s in enumerate(result.snapshots)]
    _lines(axes[0][0], blocks, _series(result, "dividends_float"), top, f"dividends per uid (top {top})")
    _lines(axes[0][1], blocks, _series(result, "incentive_float"), top, f"incentive per uid (top {top})")

    last_state, last = result.states[-1], result.results[-1]
    stake = torch.as_tensor(last_state.stake).detach().cpu().to(torch.float64) / 1e9
    incentive = torch.as_tensor(last.incentive_float).detach().cpu().to(torch.float64)
    scatter = axes[1][0]
    scatter.scatter(stake.tolist(), incentive.tolist(), s=10, alpha=0.7)
    if bool((stake > 0).any()):
        scatter.set_xscale("symlog", linthresh=max(float(stake[stake > 0].min()), 1e-9))
        scatter.xaxis.get_major_locator().set_params(numticks=8)
    scatter.set_xlabel("stake (tokens)")
    scatter.set_ylabel("incentive")
    scatter.set_title("incentive against stake (last epoch)")

    bonds = torch.as_tensor(last.bonds).detach().cpu().to(torch.float64)
    rows = (bonds.sum(-1) > 0).nonzero().flatten()
    heat = axes[1][1]
    shown = bonds[rows] if rows.numel() else bonds[:1]
    image = heat.imshow(shown.numpy(), aspect="auto", interpolation="nearest", cmap="viridis")
    figure.colorbar(image, ax=heat, label="bond (u16)")
    heat.set_title(f"bonds, last epoch ({rows.numel()} validators with bonds)")
    heat.set_xlabel("uid")
    heat.set_ylabel("validator (row)")
    epochs = len(result.results)
    figure.suptitle(
        f"replay of subnet {result.snapshots[0].netuid if result.snapshots[0].netuid is not None else '?'}: "
        f"{epochs} epoch(s), {'exact' if result.exact else 'fast'}"
    )
    figure.subplots_adjust(left=0.07, right=0.97, bottom=0.07, top=0.92, hspace=0.32, wspace=0.2)  # fixed: no extra draw
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return path
