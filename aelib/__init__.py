"""aelib: the small helper package behind the autoencoder notebooks.

The basics live at the top level (``aelib.AutoEncoder``, ``aelib.load_mnist``,
``aelib.train``, ``aelib.train_or_load``, ``aelib.pick_device``); the later chapters'
helpers live in topic modules: ``aelib.plots``, ``aelib.latent``, ``aelib.sampling``,
``aelib.classifier``, ``aelib.metrics`` and ``aelib.article``.

Importing aelib sets torch's CPU threads to half the cores (``AELIB_NUM_THREADS``
overrides it); see ``aelib.train.default_num_threads`` for why.
"""

from . import article, classifier, latent, metrics, plots, sampling
from .data import DATA_ENV_VAR, MNIST_FILES, MNISTUnavailableError, data_root, load_mnist
from .model import AutoEncoder
from .train import (
    CheckpointError,
    CorruptCheckpointError,
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
    "AutoEncoder", "CheckpointError", "CorruptCheckpointError", "DATA_ENV_VAR",
    "MNIST_FILES", "MNISTUnavailableError", "article", "classifier", "configure_threads",
    "data_root", "evaluate", "latent", "load_checkpoint", "load_mnist", "metrics",
    "pick_device", "plots", "sampling", "save_checkpoint", "set_seed", "train",
    "train_or_load",
]
