"""Figures for the notebooks: image grids, loss curves, and saving to images/.

All text inside figures is English: CJK fonts are not guaranteed on a reader's machine.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

from .data import images_to_grid_shape, project_root

IMAGES_DIR_NAME = "images"


def use_style() -> None:
    """A clean, consistent look for every notebook figure."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="deep")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight",
                         "axes.titleweight": "bold", "image.cmap": "gray"})


def images_dir() -> Path:
    """``<repo>/images``, where the notebooks save the figures the README shows."""
    return project_root() / IMAGES_DIR_NAME


def save_figure(fig: plt.Figure, name: str, folder: str | os.PathLike | None = None) -> Path:
    """Save ``fig`` as ``images/<name>`` atomically (temp file, then rename)."""
    folder = Path(folder) if folder is not None else images_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=path.stem, suffix=path.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def image_grid(images: torch.Tensor, nrow: int = 10, padding: int = 2) -> torch.Tensor:
    """Tile flat ``[N, 784]`` (or ``[N, 1, 28, 28]``) images into one ``[H, W]`` picture."""
    grid = make_grid(images_to_grid_shape(images.detach().float().cpu()), nrow=nrow,
                     padding=padding, pad_value=1.0)
    return grid[0]


def show_images(
    images: torch.Tensor,
    nrow: int = 10,
    title: str | None = None,
    ax: plt.Axes | None = None,
    labels: Sequence[str] | None = None,
) -> plt.Axes:
    """Show images as one grid (``nrow`` per row), optionally with a label under each column."""
    if ax is None:
        rows = -(-len(images) // nrow)
        _, ax = plt.subplots(figsize=(min(nrow, len(images)) * 0.9, rows * 0.9 + 0.4))
    ax.imshow(image_grid(images, nrow=nrow), cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if labels is not None:
        step = 28 + 2
        ax.set_xticks([2 + step * i + 14 for i in range(min(nrow, len(labels)))])
        ax.set_xticklabels(list(labels)[:nrow], fontsize=9)
        ax.tick_params(length=0)
    if title:
        ax.set_title(title)
    return ax
