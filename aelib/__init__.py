"""aelib: the plumbing behind the autoencoder notebooks (the models and the loop are read in
notebooks 02 and 03), and the topic modules ``latent``, ``sampling``, ``metrics``, ``plots``.
Importing aelib sets torch's CPU threads (``configure_threads``)."""

from . import latent, metrics, plots, sampling
from .data import (DATA_ENV_VAR, CheckpointError, CorruptCheckpointError, MNISTUnavailableError, data_root,
                   load_checkpoint, load_mnist, save_checkpoint, train_or_load, train_or_load_many)
from .models import MODELS, VAE, AutoEncoder, DigitClassifier, LinearAutoEncoder
from .training import ARTICLE_LOSSES, configure_threads, evaluate, pick_device, set_seed, train

configure_threads()
__version__ = "0.2.0"
