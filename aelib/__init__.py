"""aelib: the small helper package behind the autoencoder notebooks.

Import what a notebook needs from the top level (``aelib.train_or_load``), and the
topic modules as ``aelib.plots``, ``aelib.latent``, ``aelib.sampling``,
``aelib.classifier`` and ``aelib.metrics``.
"""

from . import plots
from .data import DATA_ENV_VAR, MNIST_FILES, MNISTUnavailableError, data_root, load_mnist
from .model import AutoEncoder
from .train import (
    CheckpointError,
    configure_threads,
    evaluate,
    load_checkpoint,
    pick_device,
    save_checkpoint,
    set_seed,
    train,
    train_or_load,
)

configure_threads()

__version__ = "0.1.0"
__all__ = [
    "AutoEncoder", "CheckpointError", "DATA_ENV_VAR", "MNIST_FILES", "MNISTUnavailableError",
    "configure_threads", "data_root", "evaluate", "load_checkpoint", "load_mnist",
    "pick_device", "plots", "save_checkpoint", "set_seed", "train", "train_or_load",
]
