"""Pictures of studio results (the ``plot`` extra: matplotlib, imported on use).

``plot_sweep`` draws one summary of a sweep over its first two grid axes as a heat map;
``plot_retention`` draws a retention map as filled contours with the retention line (the major
group keeps exactly its stake share) drawn bold. Both write a PNG and return its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import ValueRangeError
from .retention import RetentionMap
from .sweep import SweepResult

__all__ = ["plot_sweep", "plot_retention"]


def _matplotlib() -> tuple[Any, Any]:
    from ..io.plot import _matplotlib as figure_and_canvas  # io (and matplotlib) load on first use

    return figure_and_canvas()


def _save(figure: Any, canvas_type: Any, path: Path, dpi: int) -> Path:
    from ..io.export import atomic_path

    canvas_type(figure)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return path


def plot_sweep(result: SweepResult, path: str | Path, *, metric: str = "group_dividends_share", dpi: int = 100) -> Path:
    """A heat map of one summary (e.g. ``group_dividends_share``, ``incentive_hhi``) over the grid's first two axes.

    A one-axis grid is drawn as a line. Raises :class:`~mdt_tensor.io.MissingExtraError` without matplotlib.
    """
    figure_type, canvas_type = _matplotlib()
    if len(result.shape) > 2:
        raise ValueRangeError(f"plot_sweep draws grids of one or two axes, but this one has {len(result.shape)}.")
    values = result.metric(metric)
    labels = [[str(point.values[name]) for point in result.points] for name in result.names]
    figure = figure_type(figsize=(7.0, 5.5))
    axis = figure.add_subplot(1, 1, 1)
    if len(result.shape) == 1:
        axis.plot(range(result.shape[0]), values.tolist(), marker="o")
        axis.set_xticks(range(result.shape[0]), labels[0])
        axis.set_xlabel(result.names[0])
        axis.set_ylabel(metric)
    else:
        rows, cols = result.shape
        image = axis.imshow(values.tolist(), origin="lower", aspect="auto", cmap="viridis")
        figure.colorbar(image, ax=axis, label=metric)
        axis.set_yticks(range(rows), labels[0][::cols])
        axis.set_xticks(range(cols), labels[1][:cols])
        axis.set_ylabel(result.names[0])
        axis.set_xlabel(result.names[1])
        for i in range(rows):
            for j in range(cols):
                axis.text(j, i, f"{float(values[i, j]):.3f}", ha="center", va="center", fontsize=7, color="white")
    axis.set_title(f"{metric} per grid point")
    figure.tight_layout()
    return _save(figure, canvas_type, Path(path), dpi)


def plot_retention(retention: RetentionMap, path: str | Path, *, dpi: int = 100) -> Path:
    """Filled contours of the major group's retained share (``major_share / major_stake``); the line 1.0 in bold."""
    figure_type, canvas_type = _matplotlib()
    x = retention.minor_self_weight
    y = retention.major_stake
    if x.numel() < 2 or y.numel() < 2:
        raise ValueRangeError("plot_retention needs at least two major stakes and two self-weights.")
    grid_x, grid_y = torch.meshgrid(x, y, indexing="xy")
    z = retention.retained
    figure = figure_type(figsize=(7.0, 5.5))
    axis = figure.add_subplot(1, 1, 1)
    filled = axis.contourf(grid_x.numpy(), grid_y.numpy(), z.numpy(), levels=12, cmap="viridis")
    figure.colorbar(filled, ax=axis, label="major share / major stake")
    if float(z.min()) < 1.0 < float(z.max()):
        line = axis.contour(grid_x.numpy(), grid_y.numpy(), z.numpy(), levels=[1.0], colors="white", linewidths=2.5)
        axis.clabel(line, fmt="retained = %.1f")
    axis.set_xlabel("minor validators' self-weight")
    axis.set_ylabel("major stake share")
    axis.set_title("Emission retained by the major group")
    figure.tight_layout()
    return _save(figure, canvas_type, Path(path), dpi)
