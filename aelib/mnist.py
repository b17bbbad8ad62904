"""MNIST under the data root ``$AELIB_DATA_DIR`` (default ``<repo>/data``), read by torchvision from
``ROOT/MNIST/raw``. Processes asking at once (two notebooks, workers): one extracts, under a lock, in a
temporary folder, moving each file in complete; the others wait."""

import os
import shutil
import tempfile
from pathlib import Path

import torch
from filelock import FileLock

from .checks import IMAGE_PIXELS
from .files import env_folder

DATA_ENV_VAR = "AELIB_DATA_DIR"
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class MNISTUnavailableError(RuntimeError):
    """MNIST could be neither found locally nor downloaded, or a file is corrupt."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    return env_folder(DATA_ENV_VAR, "data", root).resolve()


def _extracted(raw: Path) -> bool:
    return all((raw / name[:-3]).is_file() for name in MNIST_FILES)


def _extract(root: Path) -> None:
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    with tempfile.TemporaryDirectory(dir=root, prefix=".MNIST-") as staging:
        staged = Path(staging) / "MNIST" / "raw"
        shutil.copytree(raw, staged, ignore=shutil.ignore_patterns(".*"))  # the .gz files there, not the lock
        MNIST(staging, download=True)
        for file in staged.iterdir():
            os.replace(file, raw / file.name)


def load_mnist(train: bool = True, root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training (60,000) or test (10,000) split in the official order: float32 images ``[N, 784]``
    in [0, 1] (as ``ToTensor`` makes them), int64 labels ``[N]``; ``TensorDataset(*load_mnist())``."""
    from torchvision.datasets import MNIST  # imported here: torchvision is slow to import

    path = data_root(root)
    raw = path / "MNIST" / "raw"
    try:
        if not _extracted(raw):
            raw.mkdir(parents=True, exist_ok=True)
            with FileLock(raw / ".extract.lock"):
                if not _extracted(raw):  # another process may have extracted them meanwhile
                    _extract(path)
        dataset = MNIST(str(path), train=train, download=True)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        files = "\n".join(f"    {raw / name}" for name in MNIST_FILES)
        raise MNISTUnavailableError(
            f"Could not load MNIST from the data root {path} ({type(exc).__name__}: {exc}).\n"
            f"Either allow the download (network access), or put the four official files here (a corrupt one: "
            f"delete it and its extract without .gz):\n{files}\n"
            f"To use another folder, set {DATA_ENV_VAR}=/path/to/root (the folder that contains MNIST/raw).") from exc
    images = dataset.data.reshape(len(dataset.data), IMAGE_PIXELS).float().div_(255.0)
    return images, dataset.targets.long()
