"""Threads, device, seeds and the training loop, which keeps the dataset on the device and indexes each
shuffled batch out of it (in DataLoader's order); ``model.loss(x, y)`` fits every model."""

import math
import os
import random
import time

import numpy as np
import torch
from joblib import cpu_count
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checks import whole_number

THREADS_ENV_VAR = "AELIB_NUM_THREADS"
History = dict[str, list[float]]
ARTICLE_LOSSES: dict[int, list[float]] = {  # mean training MSE per pixel in epochs 1-10, as reported
    8: [0.0514, 0.0380, 0.0322, 0.0304, 0.0293, 0.0286, 0.0281, 0.0277, 0.0273, 0.0270],
    4: [0.0612, 0.0509, 0.0481, 0.0467, 0.0459, 0.0452, 0.0447, 0.0442, 0.0438, 0.0435],
}


def default_num_threads() -> int:
    """``$AELIB_NUM_THREADS``, else half the CPUs this process may use (its cgroup quota and affinity, as on a
    JupyterHub), from 1 to 4: more threads wait for each other."""
    value = os.environ.get(THREADS_ENV_VAR, "").strip()
    if not value:
        return min(4, max(1, cpu_count() // 2))
    if not (value.isascii() and value.isdigit() and int(value) >= 1):
        raise ValueError(f"{THREADS_ENV_VAR}={value!r}: set it to a whole number >= 1 (e.g. 2), or unset it")
    return int(value)


def configure_threads(num_threads: int | None = None) -> int:
    num_threads = whole_number("num_threads", default_num_threads() if num_threads is None else num_threads)
    torch.set_num_threads(num_threads)
    return num_threads


def pick_device(device: str | torch.device | None = None) -> torch.device:
    mps = torch.backends.mps.is_available()
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be None (pick automatically), 'cpu', 'cuda', 'cuda:0', "
                         f"'mps', ...; got {device!r}") from exc
    if (chosen.type == "cuda" and not torch.cuda.is_available()) or (chosen.type == "mps" and not mps):
        raise ValueError(f"device={str(device)!r} was asked for, but torch cannot use it here; use None or 'cpu'")
    return chosen


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def preserve_rng(device: torch.device | None = None):
    """A context whose random draws (scoring a VAE, building a model) leave torch's generators as they were."""
    cuda = device is not None and torch.device(device).type == "cuda"
    return torch.random.fork_rng(devices=[torch.device(device).index or 0] if cuda else [])


@torch.no_grad()
def batched_apply(fn, model: nn.Module, *tensors: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """``fn(model, *batch)`` in batches on the model's device (eval mode, no gradients); results on the CPU."""
    whole_number("batch_size", batch_size)
    if not tensors or len(tensors[0]) == 0:
        raise ValueError("batched_apply needs a non-empty tensor to work on")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [fn(model, *(t[i:i + batch_size].to(device) for t in tensors)).cpu()
               for i in range(0, len(tensors[0]), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """Mean per-example ``model.loss`` over a whole dataset, without gradients."""
    tensors = (images,) if labels is None else (images, labels)
    sums = batched_apply(lambda m, *b: (m.loss(*b) * len(b[0])).reshape(1).double(), model, *tensors)
    return sums.sum().item() / len(images)


def train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
          epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
          device: str | torch.device | None = None, test_images: torch.Tensor | None = None,
          test_labels: torch.Tensor | None = None, verbose: bool = True) -> History:
    """Train ``model`` in place with Adam on ``model.loss(x, y)``; hand it back in eval mode on ``device`` (``None``:
    :func:`pick_device`). A DataLoader loop from the same ``torch.manual_seed`` gives the same losses. Prints
    ``Epoch 1/10: loss=0.0514`` (mean over the epoch); returns ``{"epoch", "train_loss", "test_loss", "seconds"}``."""
    epochs, batch_size = whole_number("epochs", epochs), whole_number("batch_size", batch_size)
    if images.ndim != 2 or len(images) == 0:
        raise ValueError(f"images must be flat and non-empty, shape [N, 784] (use "
                         f"images.reshape(len(images), -1)); got {tuple(images.shape)}")
    for name, x, y in (("labels", images, labels), ("test_labels", test_images, test_labels)):
        if y is not None and (x is None or len(y) != len(x)):
            raise ValueError(f"{name} must have one entry per image, got {len(y)} labels for "
                             f"{0 if x is None else len(x)} images")
    device = pick_device(device)
    model.to(device).train()
    x_all, y_all = images.to(device), None if labels is None else labels.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n, steps = len(x_all), math.ceil(len(x_all) / batch_size)
    batch_losses = torch.empty(steps, device=device)  # kept on the device: no sync per batch
    sizes = (n - batch_size * torch.arange(steps, dtype=torch.float64)).clamp(max=batch_size)
    history: History = {"epoch": [], "train_loss": [], "test_loss": [], "seconds": []}
    bar = tqdm(total=epochs * steps, unit="batch", leave=False,
               disable=True if os.environ.get("TQDM_DISABLE") else None)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = next(iter(DataLoader(range(n), batch_size=n, shuffle=True))).to(device)  # DataLoader's order
        for i in range(steps):
            idx = order[i * batch_size:(i + 1) * batch_size]
            loss = model.loss(x_all[idx], None if y_all is None else y_all[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            batch_losses[i] = loss.detach()
            bar.update()
        train_loss = (batch_losses.cpu().double() @ sizes).item() / n  # one sync per epoch
        history["epoch"].append(epoch)
        history["train_loss"].append(train_loss)
        history["seconds"].append(time.perf_counter() - start)
        if test_images is not None:
            with preserve_rng(device):
                history["test_loss"].append(evaluate(model, test_images, test_labels))
        if verbose:
            bar.clear()
            print(f"Epoch {epoch}/{epochs}: loss={train_loss:.4f}", flush=True)
    bar.close()
    model.eval()
    return history
