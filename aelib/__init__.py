"""aelib: the plumbing behind the autoencoder notebooks (the models and the loop are read in notebooks 02 and 03).
Core: ``mnist`` (the data), ``models``, ``training`` (the loop), ``cache`` (trained models on disk); topics:
``latent``, ``sampling``, ``metrics``, ``plots``. Importing aelib sets torch's CPU threads (``configure_threads``)."""

from . import exercises, latent, metrics, plots, sampling
from .cache import train_or_load, train_or_load_many
from .mnist import data_root, load_mnist
from .models import VAE, AutoEncoder, DigitClassifier, LinearAutoEncoder
from .training import ARTICLE_LOSSES, configure_threads, evaluate, pick_device, set_seed, train

configure_threads()
