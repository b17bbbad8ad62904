"""MNIST as two plain tensors, loaded through torchvision.

The data root is chosen by the environment variable ``AELIB_DATA_DIR`` (default:
``data/`` next to the package, i.e. in the repository). torchvision looks for the four
official ``.gz`` files in ``ROOT/MNIST/raw``; when they are missing it downloads them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

DATA_ENV_VAR = "AELIB_DATA_DIR"
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
IMAGE_SIDE = 28
IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE  # 784
_EXPECTED_COUNT = {True: 60_000, False: 10_000}


def project_root() -> Path:
    """The repository folder (where ``pyproject.toml`` lives), or the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the data root: the argument, else ``$AELIB_DATA_DIR``, else ``<repo>/data``."""
    if root is None:
        root = os.environ.get(DATA_ENV_VAR) or project_root() / "data"
    return Path(root).expanduser().resolve()


class MNISTUnavailableError(RuntimeError):
    """MNIST could be neither found locally nor downloaded, or a file is corrupt."""


# Sizes of the extracted files: a header (16 bytes for images, 8 for labels) + one byte each.
_EXTRACTED_BYTES = {
    "train-images-idx3-ubyte": 16 + 60_000 * IMAGE_PIXELS,
    "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * IMAGE_PIXELS,
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}


def _damaged_files(root: Path) -> list[str]:
    """Files in ``root/MNIST/raw`` that exist but are damaged: a ``.gz`` whose MD5 is not
    the official one, or an extracted file of the wrong size. Only called after an error."""
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import check_md5

    raw = root / "MNIST" / "raw"
    damaged = []
    for name, md5 in MNIST.resources:
        if (raw / name).is_file() and not check_md5(raw / name, md5):
            damaged.append(f"{raw / name} (MD5 checksum does not match)")
    for name, size in _EXTRACTED_BYTES.items():
        if (raw / name).is_file() and (raw / name).stat().st_size != size:
            damaged.append(f"{raw / name} ({(raw / name).stat().st_size} bytes, expected {size})")
    return damaged


def _help_text(root: Path, reason: str) -> str:
    files = "\n".join(f"    {root / 'MNIST' / 'raw' / name}" for name in MNIST_FILES)
    return (
        f"Could not load MNIST from the data root {root} ({reason}).\n"
        f"Either allow the download (network access), or put the four official files here:\n"
        f"{files}\n"
        f"To use another folder, set the environment variable {DATA_ENV_VAR}=/path/to/root "
        f"(the folder that contains MNIST/raw). A corrupt or partial file: delete it and "
        f"the extracted file of the same name without .gz, then try again."
    )


def load_mnist(
    train: bool = True, root: str | os.PathLike | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the MNIST training (60,000) or test (10,000) split in the official order.

    Returns ``(images, labels)``: ``images`` is float32 of shape ``[N, 784]`` with pixel
    values in [0, 1]; ``labels`` is int64 of shape ``[N]``.
    """
    from torchvision.datasets import MNIST  # imported here: torchvision is slow to import

    path = data_root(root)
    try:
        dataset = MNIST(str(path), train=train, download=True)
        pixels, labels = dataset.data, dataset.targets
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        reason = f"{type(exc).__name__}: {exc}".strip()
        try:
            damaged = _damaged_files(path)
        except OSError:  # an unreadable file: the original reason still says enough
            damaged = []
        if damaged:
            reason = "corrupt or partial file(s): " + "; ".join(damaged) + f". {reason}"
        raise MNISTUnavailableError(_help_text(path, reason)) from exc
    expected = (_EXPECTED_COUNT[train], IMAGE_SIDE, IMAGE_SIDE)
    if tuple(pixels.shape) != expected or labels.shape != (expected[0],):
        raise MNISTUnavailableError(
            _help_text(path, f"images have shape {tuple(pixels.shape)}, expected {expected}")
        )
    images = pixels.reshape(len(pixels), IMAGE_PIXELS).float().div_(255.0)
    return images, labels.long()


def images_to_grid_shape(images: torch.Tensor) -> torch.Tensor:
    """Reshape flat images ``[N, 784]`` to ``[N, 1, 28, 28]`` (a no-op for that shape)."""
    return images.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
