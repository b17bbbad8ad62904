"""The code space of a trained model: codes, reconstructions, dead dimensions, baselines
(without gradients, in eval mode, in batches; CPU tensors or pandas tables)."""

import pandas as pd
import torch
from torch import nn

from .cache import train_or_load
from .checks import whole_number
from .mnist import load_mnist
from .training import batched_apply


def embed_images(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Images -> codes ``[N, k]`` (a VAE gives its means)."""
    return batched_apply(lambda m, x: m.encode(x), model, images)


def decode_codes(model: nn.Module, codes: torch.Tensor) -> torch.Tensor:
    """Codes ``[N, k]`` -> images ``[N, 784]``."""
    return batched_apply(lambda m, z: m.decode(z.float()), model, codes)


def reconstruct(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Encode, then decode: ``[N, 784]`` (eval mode, so a VAE decodes its means)."""
    return batched_apply(lambda m, x: m(x)[1], model, images)


def reconstruction_errors(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return (reconstruct(model, images) - images.reshape(len(images), -1).cpu()).pow(2).mean(dim=1)


def per_digit_error(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> pd.DataFrame:
    if len(labels) != len(images):
        raise ValueError(f"images and labels differ in length: {len(images)} and {len(labels)}")
    frame = pd.DataFrame({"digit": labels.numpy(), "error": reconstruction_errors(model, images)})
    return frame.groupby("digit")["error"].agg(count="count", mean_error="mean", std_error="std")


def dead_dims(codes: torch.Tensor, min_active_share: float = 0.01, rule: str = "auto",
              rel_std: float = 1e-3) -> list[int]:
    """Indices of the dead code dimensions: in a ReLU code (no value < 0; ``rule="relu"``), > 0 in fewer than
    ``min_active_share`` of the codes; in a linear code (``rule="variance"``), std <= ``rel_std`` times the largest."""
    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or len(codes) < 2:
        raise ValueError(f"codes must be a tensor [N, k] with N >= 2, got "
                         f"{getattr(codes, 'shape', type(codes))}; use embed_images(model, images)")
    if rule not in (rules := ("auto", "relu", "variance")):
        raise ValueError(f"rule must be one of {rules}, got {rule!r}")
    if not 0.0 <= min_active_share <= 1.0:
        raise ValueError(f"min_active_share is a share from 0 to 1 (0.01 = 1%), got {min_active_share}")
    codes = codes.detach().float().cpu()
    if rule == "relu" or (rule == "auto" and codes.min() >= 0):
        dead = (codes > 0).float().mean(dim=0) < min_active_share
    else:
        dead = codes.std(dim=0) <= rel_std * codes.std(dim=0).max()
    return [int(i) for i in torch.nonzero(dead).flatten()]


def live_dims(codes: torch.Tensor, **dead_kwargs) -> list[int]:
    return sorted(set(range(codes.shape[1])) - set(dead_dims(codes, **dead_kwargs)))


def latent_stats(codes: torch.Tensor, **dead_kwargs) -> pd.DataFrame:
    dead, codes = set(dead_dims(codes, **dead_kwargs)), codes.detach().float().cpu()
    return pd.DataFrame({"mean": codes.mean(0), "std": codes.std(0), "share_positive": (codes > 0).float().mean(0),
                         "min": codes.min(0).values, "max": codes.max(0).values,
                         "dead": [i in dead for i in range(codes.shape[1])]}).rename_axis("dim")


def most_active_dims(codes: torch.Tensor, n: int = 2) -> list[int]:
    whole_number("n", n, 1, codes.shape[1])
    return [int(i) for i in torch.argsort(codes.std(dim=0), descending=True)[:n]]


def fit_pca(train_images: torch.Tensor, n_components: int):
    from sklearn.decomposition import PCA

    whole_number("n_components", n_components, 1, min(train_images.shape))
    solver = "randomized" if n_components <= 100 else "full"
    return PCA(n_components, svd_solver=solver, random_state=0).fit(train_images.numpy())


def pca_reconstruct(pca, images: torch.Tensor, k: int) -> torch.Tensor:
    """``images`` through ``pca``'s first ``k`` components and back: the best linear code of k numbers."""
    whole_number("k", k, 1, pca.n_components_)
    basis = torch.as_tensor(pca.components_[:k], dtype=torch.float32)
    mean = torch.as_tensor(pca.mean_, dtype=torch.float32)
    return ((images.reshape(len(images), -1) - mean) @ basis.T) @ basis + mean


def sweep_latent_sizes(sizes, epochs: int = 10, seed: int = 0, device=None, verbose: bool = False) -> pd.DataFrame:
    """Train (or load) one article autoencoder per code size. A table indexed by ``latent_dim``:
    final ``train_loss`` and ``test_loss``, and ``dead`` (dimensions dead on the test codes)."""
    sizes = sorted({whole_number("a code size", k) for k in sizes})
    if not sizes:
        raise ValueError("sizes is empty; pass latent sizes such as [2, 4, 8, 16, 32]")
    test_images, _ = load_mnist(train=False)
    rows = []
    for k in sizes:
        model, history = train_or_load("ae", epochs=epochs, seed=seed, device=device, verbose=verbose, latent_dim=k)
        rows.append({"latent_dim": k, "train_loss": history["train_loss"][-1], "test_loss": history["test_loss"][-1],
                     "dead": len(dead_dims(embed_images(model, test_images)))})
    return pd.DataFrame(rows).set_index("latent_dim")
