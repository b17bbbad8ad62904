"""MNIST as two plain tensors (loaded through torchvision), and two small shared checks.

The data root is ``$AELIB_DATA_DIR`` (default: ``data/`` in the repository); torchvision
looks for the four official ``.gz`` files in ``ROOT/MNIST/raw`` and downloads them if missing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

DATA_ENV_VAR = "AELIB_DATA_DIR"
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
IMAGE_SIDE, IMAGE_PIXELS = 28, 28 * 28


class MNISTUnavailableError(RuntimeError):
    """MNIST could be neither found locally nor downloaded, or a file is corrupt."""


def whole_number(name: str, value: object, low: int = 1, high: int | None = None,
                 hint: str = "") -> int:
    """``value`` if it is an int from ``low`` to ``high``, else a ValueError that says so."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        limits = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be a whole number {limits}, got {value!r}{hint}")
    return value


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(temp_path)``, then rename the temp file to ``path``: a reader never
    sees a half-written file, and a failed write leaves the old file in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=path.suffix + ".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these files are shared like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def project_root() -> Path:
    """The repository folder (where ``pyproject.toml`` lives), or the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The argument, else ``$AELIB_DATA_DIR``, else ``<repo>/data``."""
    return Path(root or os.environ.get(DATA_ENV_VAR) or project_root() / "data").expanduser().resolve()


def _damaged_files(raw: Path) -> list[str]:
    """Files in ``raw`` that exist but are damaged (wrong MD5, or an extract of the wrong size)."""
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import check_md5

    counts = zip(MNIST_FILES, (60_000, 60_000, 10_000, 10_000))  # header + one byte per pixel or label
    sizes = {n[:-3]: (16 + IMAGE_PIXELS * c if "images" in n else 8 + c) for n, c in counts}
    return ([f"{raw / n} (MD5 checksum does not match)" for n, md5 in MNIST.resources
             if (raw / n).is_file() and not check_md5(raw / n, md5)]
            + [f"{raw / n} ({(raw / n).stat().st_size} bytes, expected {s})" for n, s in sizes.items()
               if (raw / n).is_file() and (raw / n).stat().st_size != s])


def load_mnist(train: bool = True, root: str | os.PathLike | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The training (60,000) or test (10,000) split in the official order: float32 images
    ``[N, 784]`` with pixels in [0, 1], and int64 labels ``[N]``."""
    from torchvision.datasets import MNIST  # imported here: torchvision is slow to import

    path = data_root(root)
    expected = (60_000 if train else 10_000, IMAGE_SIDE, IMAGE_SIDE)
    try:
        dataset = MNIST(str(path), train=train, download=True)
        if tuple(dataset.data.shape) != expected:
            raise ValueError(f"images have shape {tuple(dataset.data.shape)}, expected {expected}")
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        reason = f"{type(exc).__name__}: {exc}".strip()
        try:
            damaged = _damaged_files(path / "MNIST" / "raw")
        except OSError:  # an unreadable file: the original reason says enough
            damaged = []
        if damaged:
            reason = "corrupt or partial file(s): " + "; ".join(damaged) + f". {reason}"
        files = "\n".join(f"    {path / 'MNIST' / 'raw' / name}" for name in MNIST_FILES)
        raise MNISTUnavailableError(
            f"Could not load MNIST from the data root {path} ({reason}).\n"
            f"Either allow the download (network access), or put the four official files here:\n"
            f"{files}\nTo use another folder, set the environment variable {DATA_ENV_VAR}="
            f"/path/to/root (the folder that contains MNIST/raw). A corrupt or partial file: "
            f"delete it and the extracted file of the same name without .gz, then try again."
        ) from exc
    images = dataset.data.reshape(len(dataset.data), IMAGE_PIXELS).float().div_(255.0)
    return images, dataset.targets.long()
