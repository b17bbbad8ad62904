"""The latent space of a trained autoencoder: codes, dead dimensions, reconstructions.

Everything here runs without gradients, in eval mode, in batches, and returns CPU
tensors or pandas tables, so a notebook can plot the result directly.

The dead-dimension rule (used by notebooks 05 and 06):

* ReLU code (the article's model, every code value >= 0): a dimension is **dead** when
  fewer than ``min_active_share`` (default 1%) of the codes are > 0 in it. Such a
  dimension is (almost) always exactly 0, so the decoder gets no information from it.
* Linear code (``code_activation=None``, values can be negative): "> 0" says nothing
  there, so a dimension is dead when it is (nearly) constant: its standard deviation is
  below ``rel_std`` (default 1e-3) times the largest standard deviation of any dimension.

``dead_dims(..., rule="auto")`` picks the ReLU rule when no code value is negative and
the variance rule otherwise; pass ``rule="relu"`` or ``rule="variance"`` to force one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd
import torch
from torch import nn

from .train import batched_apply

DEAD_RULES = ("auto", "relu", "variance")


def _check_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim not in (2, 4) or len(images) == 0:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
        raise ValueError(
            f"images must be a non-empty tensor of shape [N, 784] or [N, 1, 28, 28], got "
            f"{shape}; load them with aelib.load_mnist()"
        )
    return images


def _check_codes(codes: torch.Tensor) -> torch.Tensor:
    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or codes.shape[0] < 2:
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes)
        raise ValueError(
            f"codes must be a tensor of shape [N, k] with N >= 2, got {shape}; "
            f"make them with latent.embed_images(model, images)"
        )
    return codes.detach().float().cpu()


def embed_images(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 2048,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Encode ``images`` into codes: a CPU tensor ``[N, k]`` (no gradients, eval mode).

    ``device`` defaults to the device the model's weights are on.
    """
    return batched_apply(lambda m, x: m.encode(x), model, _check_images(images), batch_size, device)


def reconstruct(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 2048,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Encode then decode ``images``: a CPU tensor ``[N, 784]`` with pixels in (0, 1)."""
    return batched_apply(lambda m, x: m(x)[1], model, _check_images(images), batch_size, device)


def decode_codes(
    model: nn.Module,
    codes: torch.Tensor,
    batch_size: int = 2048,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Decode codes ``[N, k]`` (e.g. sampled ones) into images: a CPU tensor ``[N, 784]``."""
    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or len(codes) == 0:
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes)
        raise ValueError(f"codes must be a non-empty tensor of shape [N, k], got {shape}")
    return batched_apply(lambda m, z: m.decode(z.float()), model, codes, batch_size, device)


def reconstruction_errors(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = 2048,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Per-image mean squared error over the 784 pixels: a CPU tensor ``[N]``.

    Its mean over a dataset is the MSE loss the model was trained on.
    """
    def mse(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1)
        return (m(flat)[1] - flat).pow(2).mean(dim=1)

    return batched_apply(mse, model, _check_images(images), batch_size, device)


def per_digit_error(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Reconstruction error per digit class.

    Returns a table indexed by ``digit`` (the labels present) with columns ``count``,
    ``mean_error`` (mean per-image MSE) and ``std_error``.
    """
    if len(labels) != len(images):
        raise ValueError(
            f"images and labels must have the same length, got {len(images)} and {len(labels)}"
        )
    errors = reconstruction_errors(model, images, device=device)
    frame = pd.DataFrame({"digit": labels.cpu().numpy(), "error": errors.numpy()})
    table = frame.groupby("digit")["error"].agg(count="count", mean_error="mean",
                                                std_error="std")
    return table


def worst_reconstructions(
    model: nn.Module,
    images: torch.Tensor,
    n: int = 10,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n`` images reconstructed worst: ``(indices, errors)``, largest error first."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(images):
        raise ValueError(f"n must be a whole number from 1 to {len(images)}, got {n!r}")
    errors = reconstruction_errors(model, images, device=device)
    top = torch.topk(errors, n)
    return top.indices, top.values


def dead_dims(
    codes: torch.Tensor,
    min_active_share: float = 0.01,
    rule: str = "auto",
    rel_std: float = 1e-3,
) -> list[int]:
    """Indices of the dead code dimensions (see the module docstring for the rule).

    * ``rule="relu"``: dead when fewer than ``min_active_share`` of the codes are > 0.
    * ``rule="variance"``: dead when the dimension's std is below ``rel_std`` times the
      largest std of any dimension (all dimensions are dead if every one is constant).
    * ``rule="auto"`` (default): ``"relu"`` if no code value is negative, else ``"variance"``.
    """
    codes = _check_codes(codes)
    if rule not in DEAD_RULES:
        raise ValueError(f"rule must be one of {DEAD_RULES}, got {rule!r}")
    if not 0.0 <= min_active_share <= 1.0:
        raise ValueError(f"min_active_share is a share from 0 to 1 (0.01 = 1%), got {min_active_share}")
    if rule == "auto":
        rule = "relu" if codes.min() >= 0 else "variance"
    if rule == "relu":
        share = (codes > 0).float().mean(dim=0)
        dead = share < min_active_share
    else:
        std = codes.std(dim=0)
        dead = std <= rel_std * std.max()
    return [int(i) for i in torch.nonzero(dead).flatten()]


def latent_stats(codes: torch.Tensor, **dead_kwargs) -> pd.DataFrame:
    """One row per code dimension: ``mean``, ``std``, ``share_positive`` (share of codes
    > 0), ``min``, ``max`` and ``dead`` (by :func:`dead_dims`, which gets ``dead_kwargs``).
    """
    codes = _check_codes(codes)
    dead = set(dead_dims(codes, **dead_kwargs))
    table = pd.DataFrame({
        "mean": codes.mean(dim=0).numpy(),
        "std": codes.std(dim=0).numpy(),
        "share_positive": (codes > 0).float().mean(dim=0).numpy(),
        "min": codes.min(dim=0).values.numpy(),
        "max": codes.max(dim=0).values.numpy(),
    })
    table["dead"] = [i in dead for i in range(codes.shape[1])]
    table.index.name = "dim"
    return table


def live_dims(codes: torch.Tensor, **dead_kwargs) -> list[int]:
    """The code dimensions that are not dead (the complement of :func:`dead_dims`)."""
    dead = set(dead_dims(codes, **dead_kwargs))
    return [i for i in range(codes.shape[1]) if i not in dead]


def most_active_dims(codes: torch.Tensor, n: int = 2) -> list[int]:
    """The ``n`` dimensions with the largest standard deviation, largest first."""
    codes = _check_codes(codes)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= codes.shape[1]:
        raise ValueError(f"n must be a whole number from 1 to {codes.shape[1]}, got {n!r}")
    return [int(i) for i in torch.argsort(codes.std(dim=0), descending=True)[:n]]


def sweep_latent_sizes(
    sizes: Iterable[int],
    epochs: int = 10,
    seed: int = 0,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = False,
) -> pd.DataFrame:
    """Train (or load from the cache) one autoencoder per latent size in ``sizes``.

    Returns a table indexed by ``latent_dim`` with the final ``train_loss`` (mean over the
    last epoch), the final ``test_loss`` and ``dead`` (number of dead dimensions of the
    test-set codes, by :func:`dead_dims`). Models not in the cache are trained now
    (under a minute each on a laptop CPU); ``cache_dir`` is passed to ``train_or_load``.
    """
    from .data import load_mnist
    from .train import train_or_load

    sizes = sorted({int(k) for k in sizes})
    if not sizes:
        raise ValueError("sizes is empty; pass latent sizes such as [2, 4, 8, 16, 32]")
    test_images, _ = load_mnist(train=False)
    rows = []
    for k in sizes:
        model, history = train_or_load(latent_dim=k, epochs=epochs, seed=seed, device=device,
                                       cache_dir=cache_dir, verbose=verbose)
        if not history.get("test_loss"):
            raise ValueError(f"the cached model for latent_dim={k} has no test loss history")
        codes = embed_images(model, test_images)
        rows.append({"latent_dim": k, "train_loss": history["train_loss"][-1],
                     "test_loss": history["test_loss"][-1], "dead": len(dead_dims(codes))})
    return pd.DataFrame(rows).set_index("latent_dim")
