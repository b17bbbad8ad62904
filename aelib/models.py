"""The article's autoencoder, a linear autoencoder, a VAE and the yardstick classifier. Each is scored by
``model.loss(x, y)`` (as in nanoGPT), so one loop trains them all; each keeps its constructor arguments."""

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from .checks import IMAGE_PIXELS, IMAGE_SIDE, flat_images, whole_number


def model_args(model: nn.Module) -> dict:
    """The arguments ``model`` was built with: ``type(model)(**model_args(model))`` rebuilds it (the cache key)."""
    return {name: getattr(model, name) for name in inspect.signature(type(model)).parameters}


def _kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var)


def _draw(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """The reparameterisation trick: ``mean + std * noise``, differentiable in both."""
    return mean + torch.randn_like(mean) * (0.5 * log_var).exp()


def _decoder(latent_dim: int, hidden_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(),
                         nn.Linear(hidden_dim, IMAGE_PIXELS), nn.Sigmoid())


class _Coder(nn.Module):
    """What the three autoencoders share (each sets ``encoder``, ``decoder``, ``latent_dim``)."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 784]`` (or ``[N, 1, 28, 28]``) -> codes ``[N, k]``."""
        return self.encoder(flat_images(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"this decoder takes codes [N, {self.latent_dim}], got a tensor of "
                             f"shape {tuple(z.shape)} (for one code use z.unsqueeze(0))")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(code, reconstruction)``, as in the article."""
        code = self.encode(x)
        return code, self.decode(code)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return F.mse_loss(self(x)[1], flat_images(x))


class AutoEncoder(_Coder):
    """The article's model (``code_activation="relu"``); ``None`` leaves the code linear (it may be negative)."""

    def __init__(self, latent_dim: int = 8, hidden_dim: int = 256, code_activation: str | None = "relu") -> None:
        super().__init__()
        self.latent_dim = whole_number("latent_dim", latent_dim, 1, IMAGE_PIXELS)
        self.hidden_dim = whole_number("hidden_dim", hidden_dim, 1, 4096)
        if code_activation not in ("relu", None):
            raise ValueError(f"code_activation must be 'relu' (the article's model) or None "
                             f"(a linear code), got {code_activation!r}")
        self.code_activation = code_activation
        code_layer = [nn.ReLU()] if code_activation == "relu" else []
        self.encoder = nn.Sequential(nn.Linear(IMAGE_PIXELS, self.hidden_dim), nn.ReLU(),
                                     nn.Linear(self.hidden_dim, self.latent_dim), *code_layer)
        self.decoder = _decoder(self.latent_dim, self.hidden_dim)


class LinearAutoEncoder(_Coder):
    """No activation anywhere, trained with MSE: its best solution spans the subspace of PCA's first k components."""

    def __init__(self, latent_dim: int = 8) -> None:
        super().__init__()
        self.latent_dim = whole_number("latent_dim", latent_dim, 1, IMAGE_PIXELS)
        self.encoder = nn.Linear(IMAGE_PIXELS, self.latent_dim)
        self.decoder = nn.Linear(self.latent_dim, IMAGE_PIXELS)


class VAE(_Coder):
    """A variational autoencoder with the article's widths. The encoder gives ``2k`` numbers: a mean and a
    log-variance per code dimension. ``encode`` returns the mean; ``forward`` draws ``z`` while training."""

    def __init__(self, latent_dim: int = 8, hidden_dim: int = 256) -> None:
        super().__init__()
        self.latent_dim = whole_number("latent_dim", latent_dim, 1, IMAGE_PIXELS)
        self.hidden_dim = whole_number("hidden_dim", hidden_dim, 1, 4096)
        self.encoder = nn.Sequential(nn.Linear(IMAGE_PIXELS, self.hidden_dim), nn.ReLU(),
                                     nn.Linear(self.hidden_dim, 2 * self.latent_dim))
        self.decoder = _decoder(self.latent_dim, self.hidden_dim)

    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, log_variance)`` of q(z | x), each ``[N, k]``."""
        return self.encoder(flat_images(x)).chunk(2, dim=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_stats(x)[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.encode_stats(x)
        z = _draw(mean, log_var) if self.training else mean
        return z, self.decode(z)

    def kl_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || N(0, 1)) of each image and code dimension, in nats: ``[N, k]``."""
        return _kl(*self.encode_stats(x))

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The negative ELBO per image, in nats: Bernoulli reconstruction term (binary
        cross-entropy summed over the 784 pixels) plus the KL divergence to N(0, I)."""
        mean, log_var = self.encode_stats(x)
        recon = F.binary_cross_entropy(self.decode(_draw(mean, log_var)), flat_images(x), reduction="sum")
        return (recon + _kl(mean, log_var).sum()) / len(x)


class DigitClassifier(nn.Module):
    """The yardstick: a small CNN; ``features(x)`` gives the activations before the last layer."""

    def __init__(self, channels: int = 16, feature_dim: int = 128, dropout: float = 0.25) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.channels = whole_number("channels", channels, 1, 512)
        self.feature_dim = whole_number("feature_dim", feature_dim, 1, 4096)
        self.dropout = float(dropout)
        c = self.channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 14
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # -> 7
            nn.Flatten(), nn.Linear(2 * c * 7 * 7, self.feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(flat_images(x).reshape(len(x), 1, IMAGE_SIDE, IMAGE_SIDE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # logits [N, 10]

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("a classifier is trained on labels: pass labels=... to train()")
        return F.cross_entropy(self(x), y)


MODELS = {"ae": AutoEncoder, "linear": LinearAutoEncoder, "vae": VAE, "classifier": DigitClassifier}
