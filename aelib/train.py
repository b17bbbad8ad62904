"""Device, seeds, threads, the training loop and the checkpoint cache.

The loop keeps the whole dataset on the device as one tensor and draws each shuffled
batch by indexing it: no DataLoader and no per-sample Python work in the hot path.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import load_mnist, project_root
from .model import AutoEncoder

THREADS_ENV_VAR = "AELIB_NUM_THREADS"
CHECKPOINT_ENV_VAR = "AELIB_CHECKPOINT_DIR"
CHECKPOINT_FORMAT = 1
History = dict[str, list[float]]


def default_num_threads() -> int:
    """CPU threads for torch: ``$AELIB_NUM_THREADS``, else half the cores (at least 1).

    Measured on a 2-core machine (bench/README.md): on an idle machine two threads make
    an epoch 1.7x faster than one, but as soon as other processes run, two threads are
    2x slower (one busy loop) to 100x slower (other notebooks and tests), because the
    threads wait for each other at every operation. Leaving half the cores free avoids
    that cliff when a second notebook, the browser or CI runs alongside.
    """
    value = os.environ.get(THREADS_ENV_VAR)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{THREADS_ENV_VAR} must be a whole number >= 1, got {value!r}")
        return int(value)
    return max(1, (os.cpu_count() or 1) // 2)


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op CPU threads (default: :func:`default_num_threads`)."""
    if num_threads is None:
        num_threads = default_num_threads()
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a whole number >= 1 or None, got {num_threads!r}")
    torch.set_num_threads(num_threads)
    return num_threads


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else CUDA if available, else Apple MPS, else the CPU."""
    if device is not None:
        try:
            chosen = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device must be None (pick automatically), 'cpu', 'cuda', 'cuda:0', 'mps', "
                f"...; got {device!r}"
            ) from exc
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for, but torch sees no CUDA GPU here; "
                             "use device=None (automatic) or 'cpu'")
        if chosen.type == "mps" and not (getattr(torch.backends, "mps", None)
                                         and torch.backends.mps.is_available()):
            raise ValueError("device='mps' was asked for, but Apple MPS is not available here; "
                             "use device=None (automatic) or 'cpu'")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batch_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Mean loss of one batch: MSE of the reconstruction for an autoencoder
    (``y is None``), cross-entropy of the logits for a classifier."""
    if y is None:
        _, reconstruction = model(x)
        return F.mse_loss(reconstruction, x)
    return F.cross_entropy(model(x), y)


def shuffled_order(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random permutation of ``range(n)`` for one epoch, made on the CPU.

    Without a ``generator`` it is drawn from torch's global generator the way
    ``DataLoader(shuffle=True)`` does it with ``num_workers=0``: the loader first draws a
    base seed for its workers, then the sampler draws the seed of this epoch's order.
    """
    if generator is None:
        torch.empty((), dtype=torch.int64).random_()  # the DataLoader's worker base seed
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)


@torch.no_grad()
def batched_apply(
    fn,
    model: nn.Module,
    inputs: torch.Tensor,
    batch_size: int = 2048,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """``fn(model, batch)`` over ``inputs`` in batches, without gradients, in eval mode;
    the results are concatenated on the CPU. ``device`` defaults to the model's."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = pick_device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [fn(model, inputs[i : i + batch_size].to(device)).cpu()
               for i in range(0, len(inputs), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    batch_size: int = 2048,
    device: str | torch.device | None = None,
) -> float:
    """Mean per-example loss of ``model`` on a whole dataset (no gradients)."""
    if len(images) == 0:
        raise ValueError("evaluate() needs at least one image, got an empty tensor")
    device = pick_device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device)
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        y = None if labels is None else labels[start : start + batch_size].to(device)
        total += batch_loss(model, x, y) * len(x)
    model.train(was_training)
    return total.item() / len(images)


def train(
    model: nn.Module,
    images: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int | None = None,
    device: str | torch.device | None = None,
    labels: torch.Tensor | None = None,
    test_images: torch.Tensor | None = None,
    test_labels: torch.Tensor | None = None,
    verbose: bool = True,
) -> History:
    """Train ``model`` in place with Adam and return its per-epoch history.

    An autoencoder is trained to reconstruct ``images`` (MSE); pass ``labels`` to train
    a classifier instead (cross-entropy).

    The batch order: with ``seed=None`` (the default) each epoch's shuffle is drawn from
    torch's global random generator exactly as ``DataLoader(shuffle=True)`` draws it, so
    ``torch.manual_seed(s)`` before building the model fixes the weights and the batches,
    and the run matches a plain DataLoader loop with the same seed batch for batch. An
    integer ``seed`` uses a generator of its own instead. Each epoch prints one line in the article's form, ``Epoch 1/10: loss=0.0514``, where the loss
    is the mean over the training set during that epoch. With ``test_images`` the
    test loss after each epoch is recorded too.

    Returns ``{"epoch": [...], "train_loss": [...], "test_loss": [...], "seconds": [...]}``
    (``test_loss`` is empty without test images).
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    if images.ndim != 2 or len(images) == 0:
        raise ValueError(f"images must be flat and non-empty, shape [N, 784] "
                         f"(use images.reshape(len(images), -1)); got {tuple(images.shape)}")
    for name, x, y in (("labels", images, labels), ("test_labels", test_images, test_labels)):
        if y is not None and (x is None or len(y) != len(x)):
            raise ValueError(f"{name} must have one entry per image, got {len(y)} labels for "
                             f"{0 if x is None else len(x)} images")
    device = pick_device(device)
    model.to(device).train()
    x_all = images.to(device)
    y_all = None if labels is None else labels.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)  # the tutorial's plain Adam
    shuffler = None if seed is None else torch.Generator().manual_seed(seed)
    n = len(x_all)
    steps = math.ceil(n / batch_size)
    batch_losses = torch.empty(steps, device=device)  # kept on the device: no sync per batch
    batch_sizes = torch.full((steps,), float(batch_size), dtype=torch.float64)
    batch_sizes[-1] = n - (steps - 1) * batch_size
    history: History = {"epoch": [], "train_loss": [], "test_loss": [], "seconds": []}
    bar = tqdm(total=epochs * steps, unit="batch", leave=False,
               disable=True if os.environ.get("TQDM_DISABLE") else None)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = shuffled_order(n, shuffler).to(device)
        for i in range(steps):
            idx = order[i * batch_size : (i + 1) * batch_size]
            x = x_all[idx]
            loss = batch_loss(model, x, None if y_all is None else y_all[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            batch_losses[i] = loss.detach()
            bar.update()
        # the mean over the epoch's examples, summed in float64 on the CPU: one sync per epoch
        train_loss = (batch_losses.cpu().double() @ batch_sizes).item() / n
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
    """The cache folder: the argument, else ``$AELIB_CHECKPOINT_DIR``, else
    ``<repo>/checkpoints``."""
    if path is None:
        path = os.environ.get(CHECKPOINT_ENV_VAR) or project_root() / "checkpoints"
    return Path(path).expanduser()


def save_checkpoint(
    path: str | os.PathLike, model: nn.Module, hparams: dict, history: History
) -> Path:
    """Write weights, hyper-parameters and history atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "kind": type(model).__name__,
        "hparams": dict(hparams),
        "history": {key: list(values) for key, values in history.items()},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a checkpoint is shared like any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None) -> dict:
    """Read a checkpoint (``weights_only=True``) and, if given, load it into ``model``.

    Raises :class:`CheckpointError` when the file is unreadable, was written for another
    kind of model, or its weights do not fit ``model`` (say, another latent size).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"There is no checkpoint file at {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("its format field is missing or unknown")
        for key in ("kind", "hparams", "history", "state_dict"):
            if key not in payload:
                raise ValueError(f"the field {key!r} is missing")
        if not isinstance(payload["hparams"], dict) or not isinstance(payload["history"], dict):
            raise ValueError("the fields 'hparams' and 'history' must be dicts")
    except Exception as exc:
        raise CorruptCheckpointError(
            f"The checkpoint {path} is corrupt or not an aelib checkpoint "
            f"({_load_failure(exc)}). "
            f"Delete it (or pass retrain=True) and it will be trained again."
        ) from exc
    if model is not None:
        _load_into(model, payload, path)
    return payload


def _load_failure(exc: Exception) -> str:
    """A one-line reason for a failed load (torch's own messages run to many lines and
    suggest weights_only=False, which a cache of our own files never needs)."""
    if isinstance(exc, ValueError):
        return str(exc)
    if isinstance(exc, pickle.UnpicklingError):
        return "torch.load(weights_only=True) refuses its content"
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    first = str(exc).split(". ")[0].splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _load_into(model: nn.Module, payload: dict, path: Path) -> None:
    """Load a checkpoint's weights into ``model`` after checking that they fit it."""
    if payload["kind"] != type(model).__name__:
        raise CheckpointError(
            f"The checkpoint {path} holds a {payload['kind']}, not a {type(model).__name__}."
        )
    hparams = getattr(model, "hparams", dict)()
    saved = {k: payload["hparams"].get(k) for k in hparams}
    if saved != hparams:
        raise CheckpointError(
            f"The checkpoint {path} was trained with {saved}, but the model has "
            f"{hparams}. Build the model with the checkpoint's settings, or retrain."
        )
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"The weights in {path} do not fit the model: {exc}") from exc


def _cache_name(prefix: str, hparams: dict) -> str:
    parts = [f"{key}={value}" for key, value in hparams.items()]
    return prefix + "_" + "_".join(parts).replace(" ", "") + ".pt"


def cached_training(
    model: nn.Module,
    hparams: dict,
    train_fn,
    prefix: str,
    cache_dir: str | os.PathLike | None = None,
    retrain: bool = False,
    verbose: bool = True,
) -> tuple[nn.Module, History]:
    """Load ``model`` from the cache file named by ``hparams``, or run ``train_fn`` and save.

    A corrupt cache file is reported and replaced by a fresh training run; a file whose
    stored hyper-parameters differ from ``hparams`` raises :class:`CheckpointError`
    (and leaves ``model`` untouched).
    """
    path = checkpoint_dir(cache_dir) / _cache_name(prefix, hparams)
    if path.exists() and not retrain:
        try:
            payload = load_checkpoint(path)
        except CorruptCheckpointError as exc:
            warnings.warn(f"{exc} Retraining now and overwriting it.", stacklevel=3)
        else:
            if payload["hparams"] != hparams:
                raise CheckpointError(
                    f"The checkpoint {path} was saved with {payload['hparams']}, not "
                    f"{hparams}. Delete it or pass retrain=True."
                )
            _load_into(model, payload, path)
            if verbose:
                print(f"Loaded cached model from {path.relative_to(path.parent.parent)}")
            return model.eval(), payload["history"]
    history = train_fn(model)
    save_checkpoint(path, model, hparams, history)
    return model.eval(), history


def train_or_load(
    latent_dim: int = 8,
    epochs: int = 10,
    seed: int = 0,
    hidden_dim: int = 256,
    code_activation: str | None = "relu",
    batch_size: int = 128,
    lr: float = 1e-3,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike | None = None,
    retrain: bool = False,
    verbose: bool = True,
) -> tuple[AutoEncoder, History]:
    """Train the article's autoencoder on MNIST once, then load it from the cache.

    The cache file name holds every hyper-parameter, so notebooks that ask for the same
    settings share one trained model. ``seed`` fixes both the initial weights and the
    batch order. Returns ``(model, history)``, with the model in eval mode on ``device``.
    """
    hparams = {
        "latent_dim": latent_dim, "hidden_dim": hidden_dim,
        "code_activation": code_activation, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "seed": seed,
    }
    set_seed(seed)
    model = AutoEncoder(latent_dim, hidden_dim, code_activation)
    device = pick_device(device)

    def fit(m: nn.Module) -> History:
        images, _ = load_mnist(train=True)
        test_images, _ = load_mnist(train=False)
        # seed=None: the batches come from the global generator seeded above, exactly as
        # in the article-style script `torch.manual_seed(seed); model = ...; DataLoader(...)`
        return train(m, images, epochs=epochs, batch_size=batch_size, lr=lr, seed=None,
                     device=device, test_images=test_images, verbose=verbose)

    model, history = cached_training(model, hparams, fit, "ae", cache_dir, retrain, verbose)
    return model.to(device), history
