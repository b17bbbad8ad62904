"""Figures for the notebooks. All text inside figures is English (CJK fonts are not
guaranteed on a reader's machine); :func:`save_figure` writes ``images/`` atomically."""

import io
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from .checks import IMAGE_SIDE
from .files import atomic_write, project_root

CELL = IMAGE_SIDE + 2  # one image plus make_grid's padding, in grid pixels


def use_style() -> None:
    """One clean look for every notebook figure."""
    sns.set_theme(context="notebook", style="whitegrid", palette="deep", rc={"image.cmap": "gray",
        "figure.dpi": 100, "savefig.dpi": 120, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def save_figure(fig: plt.Figure, name: str, folder: str | os.PathLike | None = None) -> Path:
    """Save ``fig`` atomically as ``<folder>/<name>`` (default: ``$AELIB_IMAGES_DIR``, else ``images/``)."""
    path = Path(folder or os.environ.get("AELIB_IMAGES_DIR") or project_root() / "images") / name
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png"))


def show_images(images: torch.Tensor, nrow: int = 10, title: str | None = None,
                ax: plt.Axes | None = None, labels: Sequence[str] | None = None) -> plt.Axes:
    """Flat ``[N, 784]`` images as one grid, ``nrow`` a row, dark on white; ``labels`` under the columns."""
    from torchvision.utils import make_grid  # imported here: torchvision is slow to import
    ax = ax or plt.subplots(figsize=(min(nrow, len(images)) * 0.9, -(-len(images) // nrow) * 0.9 + 0.4))[1]
    grid = make_grid(images.detach().float().cpu().reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE),
                     nrow=nrow, padding=2, pad_value=0.15)[0]
    ax.imshow(grid.numpy(), cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([2 + CELL * i + 14 for i in range(min(nrow, len(labels or [])))])
    ax.set_xticklabels(list(labels or [])[:nrow], fontsize=9)
    ax.set(yticks=[], title=title or "")
    ax.grid(False)
    ax.tick_params(length=0)
    return ax


def plot_image_rows(rows: Sequence[torch.Tensor], row_labels: Sequence[str],
                    column_labels: Sequence[str] | None = None, title: str | None = None,
                    ax: plt.Axes | None = None) -> plt.Axes:
    """Equally long rows of images, each named on the left (originals, then reconstructions, ...)."""
    rows = [r.detach().float().cpu().reshape(len(r), -1) for r in rows]
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) == 0 or len(row_labels) != len(rows):
        raise ValueError(f"need non-empty, equally long rows and one label each, got lengths "
                         f"{[len(r) for r in rows]} and {len(row_labels)} labels")
    n = len(rows[0])
    ax = ax or plt.subplots(figsize=(max(4.0, n * 0.8 + 1.4), 0.8 * len(rows) + 0.6))[1]
    show_images(torch.cat(rows), nrow=n, ax=ax, labels=column_labels, title=title)
    ax.set_yticks([16 + CELL * i for i in range(len(rows))], list(row_labels), fontsize=9)
    return ax


def plot_image_panels(panels: dict[str, torch.Tensor], nrow: int = 8, ncols: int = 3,
                      suptitle: str | None = None) -> plt.Figure:
    """One titled image grid per entry of ``panels`` (title -> images), ``ncols`` a row."""
    if not panels or any(len(images) == 0 for images in panels.values()):
        raise ValueError("panels must map at least one title to a non-empty image tensor")
    ncols = min(ncols, len(panels))
    rows, tallest = -(-len(panels) // ncols), max(-(-len(v) // nrow) for v in panels.values())
    fig, axes = plt.subplots(rows, ncols, squeeze=False,
                             figsize=(3.2 * ncols, (3.2 * tallest / nrow + 0.55) * rows + 0.4))
    for ax, (title, images) in zip(axes.flat, panels.items()):
        show_images(images, nrow=nrow, ax=ax, title=title).title.set_fontsize(10)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    fig.suptitle(suptitle or "", fontweight="bold")
    fig.tight_layout()
    return fig


def draw_network(sizes: Sequence[int], names: Sequence[str], ops: Sequence[str],
                 groups: Sequence[tuple[int, int, str]] = (), ax: plt.Axes | None = None) -> plt.Axes:
    """Layers as boxes (height ~ sqrt(size)) labelled with size and name, ``ops`` on the arrows
    between them, ``groups`` (first, last, title) bracketed above: notebook 02's two diagrams."""
    if not len(sizes) == len(names) == len(ops) + 1 or min(sizes) < 1:
        raise ValueError("need one name per layer, one op between two layers, sizes >= 1")
    ax = ax or plt.subplots(figsize=(2.2 * len(sizes), 4.2))[1]
    heights = [3.0 * (0.18 + 0.82 * (s / max(sizes)) ** 0.5) for s in sizes]
    colors = dict(zip(dict.fromkeys(sizes), sns.color_palette("deep")))  # one colour per width
    for i, (size, name, h) in enumerate(zip(sizes, names, heights)):
        x = 2.5 * i
        ax.add_patch(plt.Rectangle((x - 0.25, -h / 2), 0.5, h, facecolor=colors[size], edgecolor="black"))
        ax.text(x, h / 2 + 0.12, str(size), ha="center", va="bottom", fontsize=12, fontweight="bold")
        ax.text(x, -h / 2 - 0.12, name, ha="center", va="top", fontsize=11)
        if i < len(ops):
            ax.annotate("", xy=(x + 2.15, 0), xytext=(x + 0.35, 0),
                        arrowprops={"arrowstyle": "-|>", "color": "0.3", "lw": 1.2})
            ax.text(x + 1.25, 0.1, ops[i], ha="center", va="bottom", fontsize=9, color="0.2")
    top = max(heights) / 2 + 0.75
    for first, last, title in groups:
        ax.plot([2.5 * first + 0.15, 2.5 * last - 0.15], [top, top], color="0.3", lw=2)  # gap at a shared layer
        ax.text(1.25 * (first + last), top + 0.08, title, ha="center", va="bottom", fontsize=13, fontweight="bold")
    ax.set(xlim=(-1.0, 2.5 * (len(sizes) - 1) + 1.0), ylim=(-max(heights) / 2 - 0.7, top + 0.5), aspect="equal")
    ax.axis("off")
    return ax


def plot_loss_curves(history: dict, article: Sequence[float] | None = None, ax: plt.Axes | None = None,
                     label: str = "", article_label: str = "article (train)") -> plt.Axes:
    """Train (and, if recorded, test) loss per epoch from a training ``history``, and an
    optional list of the article's losses for epochs 1, 2, ... drawn dashed."""
    epochs, train = list(history.get("epoch", [])), list(history.get("train_loss", []))
    if not epochs or len(epochs) != len(train):
        raise ValueError("history needs equally long, non-empty 'epoch' and 'train_loss' lists; "
                         "pass the dict that aelib.train or aelib.train_or_load returns")
    ax = ax or plt.subplots(figsize=(7, 4.2))[1]
    ax.plot(epochs, train, "o-", label=f"{label}train (mean over the epoch)")
    if history.get("test_loss"):
        ax.plot(epochs, history["test_loss"], "s-", label=f"{label}test (after the epoch)")
    if article:
        ax.plot(range(1, len(article) + 1), article, "k^--", alpha=0.7, label=article_label)
    ax.set(xlabel="epoch", ylabel="loss", xticks=epochs)
    ax.legend()
    return ax


def code_size_axis(ax: plt.Axes, sizes: Sequence[int], live: dict[int, int] | None = None) -> plt.Axes:
    """Make the x axis of ``ax`` a code-size axis: log2 scale, one labelled tick per size; with
    ``live`` ({k: live dims}) each tick also gives its live dims, "0 (collapsed)" when none is."""
    sizes, live = sorted({int(k) for k in sizes}), live or {}
    if not sizes or sizes[0] < 1:
        raise ValueError(f"sizes must be code sizes >= 1, got {sizes}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [f"{k}\n{live[k]}" + (" (collapsed)" if live[k] == 0 else "") if k in live else str(k)
                          for k in sizes])
    ax.minorticks_off()
    ax.set_xlabel("code size k (log2 scale)" + ("; under it: live dims" if live else ""))
    return ax


def plot_by_k(frame: pd.DataFrame, columns: dict[str, str], hue: str, real: dict[str, float] | None = None,
              title: str = "", live: dict[int, int] | None = None) -> plt.Figure:
    """One panel per entry of ``columns`` (column -> y label): the column against ``k``, one line
    per value of ``hue``, ``real[column]`` (the real test images' score) dashed, ``live`` as in code_size_axis."""
    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 4.2), squeeze=False)
    for ax, (column, label) in zip(axes.flat, columns.items()):
        sns.lineplot(data=frame, x="k", y=column, hue=hue, style=hue, markers=True, dashes=False,
                     ax=ax, legend=ax is axes.flat[0])
        if real is not None and column in real:
            ax.axhline(real[column], color="0.3", ls="--", lw=1.2, label="real test images")
        code_size_axis(ax, frame["k"], live).set_ylabel(label)
    axes.flat[0].legend(fontsize=9, title=None)
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def plot_code_distributions(codes: torch.Tensor, dead: Sequence[int] = (), max_panels: int = 16) -> plt.Figure:
    """A histogram per code dimension (dead ones grey, with their share > 0) for up to
    ``max_panels`` dimensions; beyond that one box per dimension on a shared axis."""
    codes, k, dead = codes.detach().float().cpu(), codes.shape[1], sorted({int(i) for i in dead})
    if any(not 0 <= i < k for i in dead):
        raise ValueError(f"dead dimensions {dead} are out of range for k = {k}")
    blue = sns.color_palette("deep")[0]
    if k > max_panels:
        frame = pd.DataFrame(codes.numpy()).melt(var_name="dim", value_name="value")
        frame["state"] = ["dead" if d in dead else "live" for d in frame["dim"]]
        fig, ax = plt.subplots(figsize=(min(18, 0.28 * k + 2.5), 4.2))
        sns.boxplot(data=frame, x="dim", y="value", hue="state", hue_order=["live", "dead"],
                    palette={"live": blue, "dead": "0.6"}, fliersize=1, linewidth=0.7, ax=ax)
        ax.set_xticks(range(0, k, -(-k // 32)))
        ax.set(xlabel="code dimension", ylabel="code value")
    else:
        ncols = min(k, 4 if k <= 8 else 6)
        fig, axes = plt.subplots(-(-k // ncols), ncols, squeeze=False,
                                 figsize=(max(7.0, 2.6 * ncols), 2.0 * -(-k // ncols) + 0.6))
        for ax in axes.flat[k:]:
            ax.axis("off")
        for i, ax in zip(range(k), axes.flat):
            sns.histplot(codes[:, i].numpy(), bins=30, stat="percent", edgecolor="none", ax=ax,
                         color="0.6" if i in dead else blue)
            ax.set_title(f"dim {i}" + (f" (dead, {(codes[:, i] > 0).float().mean():.1%} > 0)"
                                       if i in dead else ""), fontsize=10)
            ax.set(xlabel="", ylabel="% of codes" if i % ncols == 0 else "")
        fig.supxlabel("code value", fontsize=10)
    fig.suptitle(f"Each code dimension: {len(codes):,} codes, k = {k}, {len(dead)} dead", fontweight="bold")
    fig.tight_layout()
    return fig


def plot_latent_scatter(codes: torch.Tensor, labels: torch.Tensor, dims: Sequence[int] = (0, 1),
                        ax: plt.Axes | None = None, title: str | None = None) -> plt.Axes:
    """Two code dimensions against each other, one colour per digit."""
    if len(dims) != 2 or len(set(dims)) != 2 or not all(0 <= d < codes.shape[1] for d in dims):
        raise ValueError(f"dims must be two different dimensions from 0 to {codes.shape[1] - 1}, got {dims!r}")
    if len(codes) != len(labels):
        raise ValueError(f"one label per code, got {len(codes)} codes and {len(labels)} labels")
    (a, b), ax = dims, ax or plt.subplots(figsize=(6.4, 5.2))[1]
    sns.scatterplot(x=codes[:, a].numpy(), y=codes[:, b].numpy(), hue=labels.numpy(), palette="tab10",
                    s=12, alpha=0.75, linewidth=0, ax=ax)
    ax.set(xlabel=f"code dim {a}", ylabel=f"code dim {b}", title=title or "")
    ax.legend(title="digit", bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=9, frameon=False)
    return ax


def plot_correlation(codes: torch.Tensor, dims: Sequence[int], ax: plt.Axes | None = None,
                     title: str = "Correlation between code dimensions") -> plt.Axes:
    """Heatmap of the Pearson correlation between the (live) code dimensions ``dims``."""
    chosen = codes.detach().float().cpu()[:, list(dims)]
    if len(dims) < 2 or (chosen.std(dim=0) == 0).any():
        raise ValueError(f"need at least two dimensions that vary, got {list(dims)}; pass "
                         f"dims=latent.live_dims(codes) (a dead dimension has no correlation)")
    side = min(11.0, 1.2 + 0.55 * len(dims))
    ax = ax or plt.subplots(figsize=(side + 1.2, side))[1]
    sns.heatmap(torch.corrcoef(chosen.T).numpy(), ax=ax, vmin=-1, vmax=1, center=0, cmap="RdBu_r",
                square=True, annot=len(dims) <= 12, fmt=".2f", annot_kws={"fontsize": 8},
                xticklabels=list(dims), yticklabels=list(dims), cbar_kws={"label": "Pearson r"})
    ax.set(xlabel="code dimension", ylabel="code dimension", title=title)
    return ax


def latent_explorer(model: torch.nn.Module, base_code: torch.Tensor, dims: Sequence[int],
                    low: Sequence[float], high: Sequence[float], clf: torch.nn.Module | None = None):
    """Sliders over the code dimensions ``dims`` (``low`` to ``high``) beside the decoded image and
    the classifier's verdict; ``None`` without ipywidgets or outside Jupyter (show a static grid)."""
    try:
        import ipywidgets as widgets
        from IPython import get_ipython
    except ImportError:
        return None
    if "IPKernelApp" not in getattr(get_ipython(), "config", {}):
        return None
    if not dims or not len(dims) == len(low) == len(high):
        raise ValueError(f"need one low and one high value per dimension, got {len(dims)} dims, "
                         f"{len(low)} lows and {len(high)} highs")
    sliders = {d: widgets.FloatSlider(value=float(base_code[d]), min=float(lo), max=float(hi), description=f"dim {d}",
                                      step=(float(hi) - float(lo)) / 100 or 0.01, readout_format=".1f")
               for d, lo, hi in zip(dims, low, high)}
    picture, verdict = widgets.Image(format="png", width=168, height=168), widgets.Label()

    @torch.no_grad()
    def update(_=None) -> None:
        code = base_code.detach().clone().float()
        for d, slider in sliders.items():
            code[d] = slider.value
        image = model.decode(code[None].to(next(model.parameters()).device))
        buffer = io.BytesIO()
        plt.imsave(buffer, image.cpu().reshape(IMAGE_SIDE, IMAGE_SIDE).numpy(), cmap="gray_r", vmin=0, vmax=1)
        picture.value = buffer.getvalue()
        if clf is not None:
            probs = torch.softmax(clf(image), dim=1)[0]
            verdict.value = f"classifier: {int(probs.argmax())} with probability {float(probs.max()):.2f}"

    for slider in sliders.values():
        slider.observe(update, names="value")
    update()
    class LatentExplorer(widgets.HBox):  # what a notebook shows before it is run (or trusted)
        def __repr__(self) -> str:
            return "Latent explorer: run the notebook to move its sliders"
    return LatentExplorer([widgets.VBox(list(sliders.values())), widgets.VBox([picture, verdict])])
