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
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; figures are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def image_grid(images: torch.Tensor, nrow: int = 10, padding: int = 2) -> torch.Tensor:
    """Tile flat ``[N, 784]`` (or ``[N, 1, 28, 28]``) images into one ``[H, W]`` picture."""
    grid = make_grid(images_to_grid_shape(images.detach().float().cpu()), nrow=nrow,
                     padding=padding, pad_value=0.15)
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
    ax.imshow(image_grid(images, nrow=nrow).numpy(), cmap="gray_r", vmin=0, vmax=1)
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


# --------------------------------------------------------------------------- model diagram


def _box_height(size: int, largest: int) -> float:
    """Drawn height of a layer with ``size`` units: grows like sqrt(size), never vanishes."""
    return 0.18 + 0.82 * (size / largest) ** 0.5


def draw_autoencoder_diagram(
    latent_dim: int,
    ax: plt.Axes | None = None,
    hidden_dim: int = 256,
    input_dim: int = 784,
    code_activation: str | None = "relu",
) -> plt.Axes:
    """Draw encoder -> code z -> decoder as boxes whose heights follow the layer sizes.

    The five layers ``input_dim / hidden_dim / latent_dim / hidden_dim / input_dim`` are
    labelled with their sizes; the encoder and decoder are shaded funnels between them,
    so a small code ``z`` shows up as the narrow waist in the middle.
    ``code_activation`` is the model's (``"relu"`` or ``None``) and only changes a label.
    """
    from matplotlib.patches import FancyBboxPatch, Polygon

    for name, value in (("latent_dim", latent_dim), ("hidden_dim", hidden_dim),
                        ("input_dim", input_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 4.2))
    sizes = [input_dim, hidden_dim, latent_dim, hidden_dim, input_dim]
    names = ["input x", "hidden", "code z", "hidden", "output x\u0302"]
    largest = max(sizes)
    xs = [0.0, 2.5, 5.0, 7.5, 10.0]
    width = 0.5
    colors = ["#4C72B0", "#8DA0CB", "#DD8452", "#8DA0CB", "#55A868"]
    heights = [_box_height(s, largest) * 3.0 for s in sizes]

    # Funnels first, so the boxes are drawn on top of them.
    for i in range(4):
        x0, x1 = xs[i] + width / 2, xs[i + 1] - width / 2
        h0, h1 = heights[i] / 2, heights[i + 1] / 2
        color = "#4C72B0" if i < 2 else "#55A868"
        ax.add_patch(Polygon([(x0, -h0), (x1, -h1), (x1, h1), (x0, h0)], closed=True,
                             facecolor=color, alpha=0.13, edgecolor="none"))
    for x, h, size, name, color in zip(xs, heights, sizes, names, colors):
        ax.add_patch(FancyBboxPatch((x - width / 2, -h / 2), width, h,
                                    boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=color, edgecolor="black", linewidth=1.0))
        label = f"k = {size}" if name == "code z" else str(size)
        ax.text(x, h / 2 + 0.15, label, ha="center", va="bottom", fontsize=12,
                fontweight="bold")
        ax.text(x, -h / 2 - 0.15, name, ha="center", va="top", fontsize=11)

    # Which operation sits between two layers.
    code_op = "Linear + ReLU" if code_activation == "relu" else "Linear"
    ops = ["Linear + ReLU", code_op, "Linear + ReLU", "Linear + Sigmoid"]
    for i, op in enumerate(ops):
        ax.annotate("", xy=(xs[i + 1] - width / 2 - 0.08, 0), xytext=(xs[i] + width / 2 + 0.08, 0),
                    arrowprops={"arrowstyle": "-|>", "color": "0.25", "lw": 1.2})
        ax.text((xs[i] + xs[i + 1]) / 2, 0.12, op, ha="center", va="bottom", fontsize=9,
                color="0.2")

    top = max(heights) / 2 + 0.9
    for (a, b), title, color in (((xs[0], xs[2]), "Encoder", "#4C72B0"),
                                 ((xs[2], xs[4]), "Decoder", "#55A868")):
        ax.annotate("", xy=(b, top - 0.25), xytext=(a, top - 0.25),
                    arrowprops={"arrowstyle": "-", "color": color, "lw": 2})
        ax.text((a + b) / 2, top - 0.15, title, ha="center", va="bottom", fontsize=13,
                fontweight="bold", color=color)
    ax.set_xlim(xs[0] - 0.9, xs[-1] + 0.9)
    ax.set_ylim(-max(heights) / 2 - 0.8, top + 0.45)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


# --------------------------------------------------------------------------- loss curves


def plot_loss_curves(
    history: dict,
    reference: Sequence[float] | None = None,
    ax: plt.Axes | None = None,
    reference_label: str = "article (train)",
) -> plt.Axes:
    """Plot train (and, if recorded, test) loss per epoch from a training ``history``.

    ``history`` is what :func:`aelib.train` returns (keys ``epoch``, ``train_loss`` and
    optionally a non-empty ``test_loss``). ``reference`` is an optional list of losses for
    epochs 1, 2, ... (e.g. the numbers an article reports), drawn dashed for comparison.
    """
    missing = [key for key in ("epoch", "train_loss") if key not in history]
    if missing:
        raise ValueError(f"history lacks {missing}; pass the dict that aelib.train or "
                         f"aelib.train_or_load returns")
    epochs = list(history["epoch"])
    if len(epochs) == 0 or len(epochs) != len(history["train_loss"]):
        raise ValueError(f"history has {len(epochs)} epochs but {len(history['train_loss'])} "
                         f"train losses; they must be equally long and not empty")
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(epochs, history["train_loss"], "o-", label="train (mean over the epoch)")
    test = list(history.get("test_loss") or [])
    if test:
        if len(test) != len(epochs):
            raise ValueError(f"history has {len(epochs)} epochs but {len(test)} test losses")
        ax.plot(epochs, test, "s-", label="test (after the epoch)")
    if reference is not None:
        reference = list(reference)
        if len(reference) == 0:
            raise ValueError("reference is empty; pass None to draw no reference curve")
        ax.plot(range(1, len(reference) + 1), reference, "k^--", alpha=0.7,
                label=reference_label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE loss per pixel")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return ax


# --------------------------------------------------------------------------- code-size axis


def code_size_axis(ax: plt.Axes, sizes: Sequence[int]) -> plt.Axes:
    """Make the x axis of ``ax`` a code-size axis: log2 scale, one labelled tick per size."""
    sizes = sorted({int(k) for k in sizes})
    if not sizes or sizes[0] < 1:
        raise ValueError(f"sizes must be code sizes >= 1, got {sizes}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(k) for k in sizes])
    ax.minorticks_off()
    ax.set_xlabel("code size k (log2 scale)")
    return ax


# --------------------------------------------------------------------------- latent space
# (reconstructions, code distributions, scatter and correlation of the codes; notebooks 04-06)


def plot_reconstructions(
    originals: torch.Tensor,
    reconstructions: torch.Tensor | Sequence[torch.Tensor],
    column_labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Originals in the top row, their reconstructions below, one column per image.

    ``reconstructions`` is one tensor, or a list of tensors (one row each, e.g. from
    models with different code sizes). ``row_labels`` names the rows top to bottom
    (default ``"original"``, ``"reconstruction"``); ``column_labels`` (one short string
    per image, e.g. the digit) go under the columns.
    """
    rows = [reconstructions] if isinstance(reconstructions, torch.Tensor) else list(reconstructions)
    n = len(originals)
    if n == 0 or not rows or any(len(r) != n for r in rows):
        raise ValueError(
            f"need as many reconstructions as originals (and at least one), got {n} "
            f"originals and rows of {[len(r) for r in rows]}"
        )
    if row_labels is None:
        row_labels = ["original"] + (["reconstruction"] if len(rows) == 1 else
                                     [f"reconstruction {i + 1}" for i in range(len(rows))])
    if len(row_labels) != len(rows) + 1:
        raise ValueError(f"row_labels needs {len(rows) + 1} strings (originals first), "
                         f"got {list(row_labels)!r}")
    return plot_image_rows([originals, *rows], row_labels, column_labels, title, ax)


def _dim_grid(k: int, ncols: int | None = None) -> tuple[int, int]:
    ncols = ncols or min(k, 4 if k <= 8 else 6 if k <= 24 else 8)
    return -(-k // ncols), ncols


def plot_code_distributions(
    codes: torch.Tensor,
    dead: Sequence[int] | None = None,
    max_panels: int = 16,
    bins: int = 30,
) -> plt.Figure:
    """The distribution of every code dimension, dead dimensions marked in grey.

    Up to ``max_panels`` dimensions: one small histogram per dimension in a grid sized
    from k. More dimensions: one compact box plot per dimension on a shared axis (still
    readable at k = 64). ``dead`` lists the dead dimensions (e.g. ``latent.dead_dims``).
    """
    import warnings

    import pandas as pd
    import seaborn as sns

    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or len(codes) == 0:
        raise ValueError("codes must be a non-empty tensor [N, k]; use latent.embed_images")
    codes = codes.detach().float().cpu()
    k = codes.shape[1]
    dead = sorted(set(int(i) for i in (dead or [])))
    if any(not 0 <= i < k for i in dead):
        raise ValueError(f"dead dimensions {dead} are out of range for k = {k}")
    live_color, dead_color = sns.color_palette("deep")[0], "0.6"

    if k <= max_panels:
        nrows, ncols = _dim_grid(k)
        fig, axes = plt.subplots(nrows, ncols, figsize=(max(7.0, 2.6 * ncols),
                                                        2.0 * nrows + 0.6), squeeze=False)
        for i, ax in enumerate(axes.flat):
            if i >= k:
                ax.axis("off")
                continue
            is_dead = i in dead
            sns.histplot(codes[:, i].numpy(), bins=bins, ax=ax, stat="percent",
                         color=dead_color if is_dead else live_color, edgecolor="none")
            ax.set_title(f"dim {i}" + (" (dead)" if is_dead else ""), fontsize=10,
                         color="0.45" if is_dead else "black")
            if is_dead:
                share = (codes[:, i] > 0).float().mean().item()
                ax.text(0.97, 0.92, f"{share:.1%} > 0", transform=ax.transAxes,
                        ha="right", va="top", fontsize=8, color="0.35")
            ax.set_ylabel("% of codes" if i % ncols == 0 else "")
            ax.set_xlabel("")
            ax.tick_params(labelsize=8)
        fig.supxlabel("code value", fontsize=10)
    else:
        frame = pd.DataFrame(codes.numpy()).melt(var_name="dim", value_name="value")
        frame["state"] = frame["dim"].map(lambda d: "dead" if d in dead else "live")
        fig, ax = plt.subplots(figsize=(min(18, 0.28 * k + 2.5), 4.2))
        with warnings.catch_warnings():  # seaborn vs. newer matplotlib API deprecations
            warnings.simplefilter("ignore", DeprecationWarning)
            sns.boxplot(data=frame, x="dim", y="value", hue="state", ax=ax, dodge=False,
                        palette={"live": live_color, "dead": dead_color},
                        hue_order=["live", "dead"], fliersize=1, linewidth=0.7, width=0.7)
        step = max(1, -(-k // 32))
        ax.set_xticks(range(0, k, step))
        ax.set_xticklabels([str(i) for i in range(0, k, step)], fontsize=8)
        ax.set_xlabel("code dimension")
        ax.set_ylabel("code value")
        ax.legend(title=None, loc="upper right")
    fig.suptitle(f"Each code dimension: {len(codes):,} codes, k = {k}, {len(dead)} dead",
                 fontweight="bold", fontsize=12)
    fig.tight_layout()
    return fig


def plot_latent_scatter(
    codes: torch.Tensor,
    labels: torch.Tensor,
    dims: Sequence[int] = (0, 1),
    ax: plt.Axes | None = None,
    title: str | None = None,
    point_size: float = 12,
) -> plt.Axes:
    """Scatter two code dimensions against each other, one colour per digit."""
    import seaborn as sns

    if len(dims) != 2:
        raise ValueError(f"dims must name two code dimensions, got {dims!r}")
    if codes.ndim != 2 or len(codes) != len(labels):
        raise ValueError(f"codes [N, k] and labels [N] must match, got "
                         f"{tuple(codes.shape)} and {tuple(labels.shape)}")
    k = codes.shape[1]
    a, b = (int(d) for d in dims)
    if not (0 <= a < k and 0 <= b < k) or a == b:
        raise ValueError(f"dims must be two different dimensions from 0 to {k - 1}, got {dims!r}")
    codes = codes.detach().float().cpu()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 5.2))
    digits = labels.cpu().numpy()
    sns.scatterplot(x=codes[:, a].numpy(), y=codes[:, b].numpy(), hue=digits,
                    hue_order=sorted(set(digits.tolist())), palette="tab10", s=point_size,
                    alpha=0.75, linewidth=0, ax=ax)
    ax.set_xlabel(f"code dim {a}")
    ax.set_ylabel(f"code dim {b}")
    ax.legend(title="digit", bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=9,
              markerscale=1.5, frameon=False)
    if title:
        ax.set_title(title)
    return ax


def plot_correlation(
    codes: torch.Tensor,
    dims: Sequence[int] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = "Correlation between code dimensions",
) -> plt.Axes:
    """Heatmap of the Pearson correlation between the code dimensions ``dims``.

    ``dims`` defaults to all dimensions; every one must vary (pass ``latent.live_dims``),
    since the correlation of a constant dimension is undefined.
    """
    import seaborn as sns

    codes = codes.detach().float().cpu()
    dims = list(range(codes.shape[1])) if dims is None else [int(d) for d in dims]
    if len(dims) < 2:
        raise ValueError(f"a correlation needs at least two dimensions, got {dims}")
    if any(not 0 <= d < codes.shape[1] for d in dims):
        raise ValueError(f"dims {dims} are out of range for k = {codes.shape[1]}")
    chosen = codes[:, dims]
    constant = [d for d, s in zip(dims, chosen.std(dim=0)) if s == 0]
    if constant:
        raise ValueError(f"dimensions {constant} are constant (dead), their correlation is "
                         f"undefined; pass dims=latent.live_dims(codes)")
    corr = torch.corrcoef(chosen.T).numpy()
    n = len(dims)
    if ax is None:
        side = min(11.0, 1.2 + 0.55 * n)
        _, ax = plt.subplots(figsize=(side + 1.2, side))
    names = [str(d) for d in dims]
    sns.heatmap(corr, ax=ax, vmin=-1, vmax=1, center=0, cmap="RdBu_r", square=True,
                annot=n <= 12, fmt=".2f", annot_kws={"fontsize": 8},
                xticklabels=names, yticklabels=names,
                cbar_kws={"label": "Pearson r", "shrink": 0.8},
                linewidths=0.5 if n <= 24 else 0)
    ax.set_xlabel("code dimension")
    ax.set_ylabel("code dimension")
    ax.tick_params(labelsize=8 if n > 16 else 10)
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- samples side by side
# (sample grids of several samplers, traversal grids; notebook 07)


def plot_image_panels(
    panels: dict[str, torch.Tensor],
    nrow: int = 8,
    ncols: int | None = None,
    panel_width: float = 3.2,
    suptitle: str | None = None,
) -> plt.Figure:
    """One titled image grid per entry of ``panels`` (title -> images ``[N, 784]``),
    laid out ``ncols`` panels per figure row (default: up to 3), ``nrow`` images per grid row.
    """
    if not panels or any(len(images) == 0 for images in panels.values()):
        raise ValueError("panels must map at least one title to a non-empty image tensor")
    ncols = ncols or min(3, len(panels))
    rows = -(-len(panels) // ncols)
    tallest = max(-(-len(images) // nrow) for images in panels.values())
    height = panel_width * tallest / nrow + 0.55
    fig, axes = plt.subplots(rows, ncols, figsize=(panel_width * ncols, height * rows + 0.4),
                             squeeze=False)
    for ax, (title, images) in zip(axes.flat, panels.items()):
        show_images(images, nrow=nrow, ax=ax, title=title)
        ax.title.set_fontsize(10)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontweight="bold")
    fig.tight_layout()
    return fig


def plot_image_rows(
    rows: Sequence[torch.Tensor],
    row_labels: Sequence[str],
    column_labels: Sequence[str] | None = None,
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Several equally long rows of images in one grid, each row named on the left
    (e.g. one latent traversal per row, one sampler per row)."""
    rows = [r.detach().float().cpu().reshape(len(r), -1) for r in rows]
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) == 0:
        raise ValueError(f"rows must be non-empty and equally long, got lengths {[len(r) for r in rows]}")
    if len(row_labels) != len(rows):
        raise ValueError(f"need one row label per row ({len(rows)}), got {len(row_labels)}")
    n = len(rows[0])
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, n * 0.8 + 1.4), 0.8 * len(rows) + 0.6))
    show_images(torch.cat(rows), nrow=n, ax=ax, labels=column_labels)
    step = 28 + 2
    ax.set_yticks([2 + 14 + step * i for i in range(len(rows))])
    ax.set_yticklabels(list(row_labels), fontsize=9)
    ax.tick_params(length=0)
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- interactive explorer
# (ipywidgets sliders over code dimensions; notebook 07)


def image_png(image: torch.Tensor, scale: int = 6) -> bytes:
    """One image ``[784]`` as PNG bytes, dark strokes on white, enlarged without smoothing."""
    import io

    from PIL import Image

    pixels = (255 * (1 - image.detach().cpu().reshape(28, 28).clamp(0, 1))).round().byte()
    side = 28 * scale
    buffer = io.BytesIO()
    Image.fromarray(pixels.numpy()).resize((side, side), Image.NEAREST).save(buffer, format="PNG")
    return buffer.getvalue()


def in_jupyter() -> bool:
    """True inside a Jupyter kernel, where widgets can render."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def latent_explorer(
    model: torch.nn.Module,
    base_code: torch.Tensor,
    dims: Sequence[int],
    low: Sequence[float],
    high: Sequence[float],
    classifier: torch.nn.Module | None = None,
):
    """Sliders over the code dimensions ``dims`` (from ``low`` to ``high``), starting at
    ``base_code``, and the decoded image, updated as a slider moves; with a
    ``classifier``, its verdict under the image.

    Returns the ipywidgets box to display, or ``None`` when ipywidgets is not installed
    (show a static traversal grid instead).
    """
    try:
        import ipywidgets as widgets
    except ImportError:
        return None
    if not (len(dims) == len(low) == len(high)) or not dims:
        raise ValueError(f"need one low and one high value per dimension, got {len(dims)} dims, "
                         f"{len(low)} lows and {len(high)} highs")
    sliders = {
        d: widgets.FloatSlider(value=float(base_code[d]), min=float(lo), max=float(hi),
                               step=(float(hi) - float(lo)) / 100 or 0.01, description=f"dim {d}",
                               readout_format=".1f")
        for d, lo, hi in zip(dims, low, high)
    }
    picture = widgets.Image(format="png", width=168, height=168)
    verdict = widgets.Label()

    @torch.no_grad()
    def update(_=None) -> None:
        code = base_code.detach().clone().float()
        for d, slider in sliders.items():
            code[d] = slider.value
        device = next(model.parameters()).device
        image = model.decode(code[None].to(device))[0].cpu()
        picture.value = image_png(image)
        if classifier is not None:
            probs = torch.softmax(classifier(image[None].to(device)), dim=1)[0]
            verdict.value = f"classifier: {int(probs.argmax())} with probability {float(probs.max()):.2f}"

    for slider in sliders.values():
        slider.observe(update, names="value")
    update()
    return widgets.HBox([widgets.VBox(list(sliders.values())), widgets.VBox([picture, verdict])])
