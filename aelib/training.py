"""Device, seeds, threads, the training loop and the checkpoint cache.

The loop keeps the whole dataset on the device as one tensor and draws each shuffled
batch by indexing it: no DataLoader and no per-sample Python work in the hot path. It
calls ``model.loss(x, y)``, so it trains every model in :mod:`aelib.models` unchanged.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .data import atomic_write, load_mnist, project_root, whole_number
from .models import MODELS

THREADS_ENV_VAR = "AELIB_NUM_THREADS"
CHECKPOINT_ENV_VAR = "AELIB_CHECKPOINT_DIR"
CHECKPOINT_FORMAT = 2
MAX_DEFAULT_THREADS = 4
History = dict[str, list[float]]
# Mean training loss (MSE per pixel) after each of 10 epochs, as the article reports them.
ARTICLE_LOSSES: dict[int, list[float]] = {
    8: [0.0514, 0.0380, 0.0322, 0.0304, 0.0293, 0.0286, 0.0281, 0.0277, 0.0273, 0.0270],
    4: [0.0612, 0.0509, 0.0481, 0.0467, 0.0459, 0.0452, 0.0447, 0.0442, 0.0438, 0.0435],
}


def default_num_threads() -> int:
    """``$AELIB_NUM_THREADS``, else half the cores, at least 1 and at most 4 (bench/README.md:
    threads that wait for each other on a busy machine are 2x-100x slower, and a shared
    workshop server runs dozens of kernels; this model's small matrices gain little past 4)."""
    value = os.environ.get(THREADS_ENV_VAR)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{THREADS_ENV_VAR} must be a whole number >= 1, got {value!r}")
        return int(value)
    return min(MAX_DEFAULT_THREADS, max(1, (os.cpu_count() or 1) // 2))


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op CPU threads (default: :func:`default_num_threads`)."""
    num_threads = whole_number("num_threads", default_num_threads() if num_threads is None else num_threads)
    torch.set_num_threads(num_threads)
    return num_threads


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else CUDA if available, else Apple MPS, else the CPU."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be None (pick automatically), 'cpu', 'cuda', 'cuda:0', "
                         f"'mps', ...; got {device!r}") from exc
    if (chosen.type == "cuda" and not torch.cuda.is_available()) or (chosen.type == "mps" and not mps):
        raise ValueError(f"device={str(device)!r} was asked for, but torch cannot use it here; "
                         f"use device=None (automatic) or 'cpu'")
    return chosen


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_order(n: int) -> torch.Tensor:
    """A random permutation of ``range(n)``, drawn from torch's global generator exactly as
    ``DataLoader(shuffle=True, num_workers=0)`` draws it: first the loader's worker base
    seed, then the seed of this epoch's order."""
    torch.empty((), dtype=torch.int64).random_()  # the DataLoader's worker base seed
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def batched_apply(fn, model: nn.Module, *tensors: torch.Tensor, batch_size: int = 2048,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """``fn(model, *batch)`` over ``tensors`` in batches, without gradients, in eval mode;
    the results are concatenated on the CPU. ``device`` defaults to the model's."""
    whole_number("batch_size", batch_size)
    if not tensors or len(tensors[0]) == 0:
        raise ValueError("batched_apply needs a non-empty tensor to work on")
    device = pick_device(device) if device is not None else next(model.parameters()).device
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
    """Train ``model`` in place with Adam on ``model.loss(x, y)``; hand it back in eval mode.

    Each epoch's batch order comes from torch's global generator, as a
    ``DataLoader(shuffle=True)`` draws it: ``torch.manual_seed(s)`` before building the
    model fixes weights and batches, and a DataLoader loop from the same seed gives the
    same losses. One line per epoch, ``Epoch 1/10: loss=0.0514`` (the mean over the
    epoch's batches, weighted by batch size). Returns ``{"epoch", "train_loss",
    "test_loss", "seconds"}`` lists (``test_loss`` is empty without test images).
    """
    whole_number("epochs", epochs)
    whole_number("batch_size", batch_size)
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
    sizes = torch.full((steps,), float(batch_size), dtype=torch.float64)
    sizes[-1] = n - (steps - 1) * batch_size
    history: History = {"epoch": [], "train_loss": [], "test_loss": [], "seconds": []}
    bar = tqdm(total=epochs * steps, unit="batch", leave=False,
               disable=True if os.environ.get("TQDM_DISABLE") else None)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = epoch_order(n).to(device)
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
            history["test_loss"].append(evaluate(model, test_images, test_labels))
        if verbose:
            bar.clear()
            print(f"Epoch {epoch}/{epochs}: loss={train_loss:.4f}", flush=True)
    bar.close()
    model.eval()
    return history


# --------------------------------------------------------------------------- checkpoints


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt or does not match the model asked for."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file cannot be read at all (the cache retrains and replaces it)."""


def checkpoint_dir(path: str | os.PathLike | None = None) -> Path:
    """The argument, else ``$AELIB_CHECKPOINT_DIR``, else ``<repo>/checkpoints``."""
    return Path(path or os.environ.get(CHECKPOINT_ENV_VAR) or project_root() / "checkpoints").expanduser()


def save_checkpoint(path: str | os.PathLike, model: nn.Module, hparams: dict, history: History) -> Path:
    """Write weights, hyper-parameters and history atomically (temp file, then rename)."""
    payload = {"format": CHECKPOINT_FORMAT, "kind": type(model).__name__, "hparams": dict(hparams),
               "history": {key: list(values) for key, values in history.items()},
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None) -> dict:
    """Read a checkpoint (``weights_only=True``) and, if given, load it into ``model``; raise
    :class:`CorruptCheckpointError` if unreadable, :class:`CheckpointError` if it does not fit."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"There is no checkpoint file at {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("its format field is missing or unknown")
        missing = [k for k in ("kind", "hparams", "history", "state_dict") if k not in payload]
        if missing or not isinstance(payload["hparams"], dict):
            raise ValueError(f"the fields {missing or ['hparams']} are missing or malformed")
    except Exception as exc:
        reason = (str(exc) if isinstance(exc, ValueError) else
                  "torch.load(weights_only=True) refuses its content"
                  if isinstance(exc, pickle.UnpicklingError) else
                  "the file is empty or cut short" if isinstance(exc, EOFError) else
                  f"{type(exc).__name__}: {str(exc).split('. ')[0].splitlines()[0] if str(exc) else ''}")
        raise CorruptCheckpointError(
            f"The checkpoint {path} is corrupt or not an aelib checkpoint ({reason}). "
            f"Delete it (or pass retrain=True) and it will be trained again.") from exc
    if model is not None:
        if payload["kind"] != type(model).__name__:
            raise CheckpointError(f"The checkpoint {path} holds a {payload['kind']}, "
                                  f"not a {type(model).__name__}.")
        saved = {k: payload["hparams"].get(k) for k in model.hparams()}
        if saved != model.hparams():
            raise CheckpointError(f"The checkpoint {path} was trained with {saved}, but the model "
                                  f"has {model.hparams()}. Build the model with the checkpoint's "
                                  f"settings, or retrain.")
        try:
            model.load_state_dict(payload["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(f"The weights in {path} do not fit the model: {exc}") from exc
    return payload


def train_or_load(kind: str = "ae", epochs: int = 10, seed: int = 0, batch_size: int = 128,
                  lr: float = 1e-3, device: str | torch.device | None = None,
                  cache_dir: str | os.PathLike | None = None, retrain: bool = False,
                  verbose: bool = True, **model_args) -> tuple[nn.Module, History]:
    """Train a model on MNIST once, then load it from the checkpoint cache. ``kind`` is a key
    of :data:`aelib.models.MODELS`; ``model_args`` go to its constructor (``latent_dim=8``).
    ``seed`` seeds torch's global generator before the model is built: it fixes the initial
    weights and the batch order. The file name holds every setting, so notebooks asking for
    the same model share one file; a corrupt file is reported and retrained. Returns
    ``(model, history)``, the model in eval mode on ``device``."""
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {sorted(MODELS)}")
    set_seed(seed)
    model = MODELS[kind](**model_args)
    hparams = {**model.hparams(), "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed}
    name = kind + "_" + "_".join(f"{k}={v}" for k, v in hparams.items()).replace(" ", "") + ".pt"
    path = checkpoint_dir(cache_dir) / name
    device = pick_device(device)
    if path.exists() and not retrain:
        try:
            payload = load_checkpoint(path, model)
        except CorruptCheckpointError as exc:
            warnings.warn(f"{exc} Retraining now and overwriting it.", stacklevel=2)
        else:
            if payload["hparams"] != hparams:  # e.g. a renamed file: never train on silently
                raise CheckpointError(f"The checkpoint {path} was trained with {payload['hparams']}, "
                                      f"but the model has {hparams}. Delete it or pass retrain=True.")
            if verbose:
                print(f"Loaded cached model from {path.parent.name}/{path.name}")
            return model.to(device).eval(), payload["history"]
    (images, labels), (test_images, test_labels) = load_mnist(train=True), load_mnist(train=False)
    history = train(model, images, labels, epochs=epochs, batch_size=batch_size, lr=lr,
                    device=device, test_images=test_images, test_labels=test_labels, verbose=verbose)
    save_checkpoint(path, model, hparams, history)
    return model.eval(), history
