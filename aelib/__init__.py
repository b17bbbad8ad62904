"""aelib: the plumbing behind the autoencoder notebooks (the models and the loop are
read in notebooks 02 and 03; caching, devices, plots and scores live here).

Top level: the models, ``load_mnist``, ``train``, ``train_or_load``, ``evaluate``,
``pick_device``, ``set_seed``; topic modules: ``latent``, ``sampling``, ``metrics``,
``plots``. Importing aelib sets torch's CPU threads (see ``training.default_num_threads``).
"""

from . import latent, metrics, plots, sampling
from .data import DATA_ENV_VAR, MNISTUnavailableError, data_root, load_mnist
from .models import MODELS, VAE, AutoEncoder, DigitClassifier, LinearAutoEncoder
from .training import (ARTICLE_LOSSES, CheckpointError, CorruptCheckpointError, configure_threads,
                       evaluate, load_checkpoint, pick_device, save_checkpoint, set_seed, train,
                       train_or_load)

configure_threads()

__version__ = "0.2.0"
__all__ = ["ARTICLE_LOSSES", "AutoEncoder", "CheckpointError", "CorruptCheckpointError", "DATA_ENV_VAR",
           "DigitClassifier", "LinearAutoEncoder", "MNISTUnavailableError", "MODELS", "VAE",
           "configure_threads", "data_root", "evaluate", "latent", "load_checkpoint", "load_mnist",
           "metrics", "pick_device", "plots", "sampling", "save_checkpoint", "set_seed", "train",
           "train_or_load"]
