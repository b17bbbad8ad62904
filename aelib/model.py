"""The article's autoencoder: 784 -> 256 -> k -> 256 -> 784."""

from __future__ import annotations

import torch
from torch import nn

from .data import IMAGE_PIXELS

CODE_ACTIVATIONS = ("relu", None)


def _check_size(name: str, value: object, largest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= largest:
        raise ValueError(
            f"{name} must be a whole number from 1 to {largest} (the input has "
            f"{IMAGE_PIXELS} pixels), got {value!r}. Try latent_dim=8, as in the article."
        )
    return value


class AutoEncoder(nn.Module):
    """An MLP autoencoder for flat 28x28 images.

    Encoder: ``Linear(784, hidden) -> ReLU -> Linear(hidden, k) [-> ReLU]``.
    Decoder: ``Linear(k, hidden) -> ReLU -> Linear(hidden, 784) -> Sigmoid``.

    ``code_activation="relu"`` is the article's model (the code is never negative, so
    some code dimensions may "die" and stay 0); ``None`` leaves the code linear.
    """

    def __init__(
        self, latent_dim: int = 8, hidden_dim: int = 256, code_activation: str | None = "relu"
    ) -> None:
        super().__init__()
        self.latent_dim = _check_size("latent_dim", latent_dim, IMAGE_PIXELS)
        self.hidden_dim = _check_size("hidden_dim", hidden_dim, 4096)
        if code_activation not in CODE_ACTIVATIONS:
            raise ValueError(
                f"code_activation must be 'relu' (the article's model) or None (a linear "
                f"code), got {code_activation!r}"
            )
        self.code_activation = code_activation
        encoder: list[nn.Module] = [
            nn.Linear(IMAGE_PIXELS, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, latent_dim),
        ]
        if code_activation == "relu":
            encoder.append(nn.ReLU())
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, IMAGE_PIXELS),
            nn.Sigmoid(),
        )

    def hparams(self) -> dict:
        """The constructor arguments, enough to rebuild this model."""
        return {
            "latent_dim": self.latent_dim,
            "hidden_dim": self.hidden_dim,
            "code_activation": self.code_activation,
        }

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 784]`` (or ``[N, 1, 28, 28]``) -> codes ``[N, k]``."""
        if x.ndim < 2 or x.shape[1:].numel() != IMAGE_PIXELS:
            raise ValueError(
                f"the encoder takes a batch of images of shape [N, {IMAGE_PIXELS}] or "
                f"[N, 1, 28, 28], got {tuple(x.shape)}; for one image use x.unsqueeze(0)"
            )
        return self.encoder(x.reshape(len(x), IMAGE_PIXELS))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes ``[N, k]`` -> images ``[N, 784]`` with pixels in (0, 1)."""
        if z.ndim != 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"this decoder takes codes with {self.latent_dim} dimensions, got a tensor "
                f"of shape {tuple(z.shape)}; pass codes of shape [N, {self.latent_dim}] "
                f"(for one code use z.unsqueeze(0))"
            )
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(code, reconstruction)``."""
        code = self.encode(x)
        return code, self.decoder(code)
