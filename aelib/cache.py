"""The model cache: one checkpoint file per trained model, named after its settings, in ``$AELIB_CHECKPOINT_DIR``
(default ``<repo>/checkpoints``). ``$AELIB_SHARED_CHECKPOINT_DIR``: a read-only cache (a JupyterHub's, filled once
by ``make pretrain``), looked in first and never written. ``AELIB_CACHE_ONLY=1``: a model in no cache is an error."""

import multiprocessing
import os
import pickle
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import nullcontext
from pathlib import Path

import torch
from filelock import FileLock
from joblib import cpu_count
from torch import nn

from .checks import whole_number
from .files import atomic_write, env_folder
from .mnist import load_mnist
from .models import MODELS, model_args
from .training import History, configure_threads, default_num_threads, pick_device, preserve_rng, train

CHECKPOINT_ENV_VAR, SHARED_CHECKPOINT_ENV_VAR = "AELIB_CHECKPOINT_DIR", "AELIB_SHARED_CHECKPOINT_DIR"
CACHE_ONLY_ENV_VAR, CHECKPOINT_FORMAT = "AELIB_CACHE_ONLY", 2
KINDS = {cls: kind for kind, cls in MODELS.items()}  # AutoEncoder -> "ae", the name a checkpoint stores


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, cannot be read, or does not match the model asked for."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file is not an aelib checkpoint at all (the cache trains the model again)."""


class CacheMissError(RuntimeError):
    """Cache-only mode: the model is in no cache. ``args``: the message and the file it would be saved as."""

    def __str__(self) -> str:
        return self.args[0]


def cache_only_mode(flag: bool | None = None) -> bool:
    if flag is not None:
        return bool(flag)
    value = os.environ.get(CACHE_ONLY_ENV_VAR, "").strip() or "0"
    if value not in ("0", "1"):
        raise ValueError(f"{CACHE_ONLY_ENV_VAR}={value!r}: set it to 1 (a model in no cache is an error) or 0")
    return value == "1"


def save_checkpoint(path: str | os.PathLike, model: nn.Module, hparams: dict, history: History) -> Path:
    payload = {"format": CHECKPOINT_FORMAT, "kind": KINDS.get(type(model), type(model).__name__),
               "hparams": dict(hparams), "history": {key: list(values) for key, values in history.items()},
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None, hparams: dict | None = None) -> dict:
    """Read a checkpoint (``weights_only=True``); load it into ``model`` if given and trained with ``hparams``
    (default: ``model_args(model)``), else a :class:`CheckpointError` (not a checkpoint: ``CorruptCheckpointError``)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("its format field is missing or unknown")
    except OSError as exc:  # missing, no permission, an I/O error: the file itself may be fine, so it is kept
        raise CheckpointError(f"The checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); check that it "
                              f"exists and that this user may read it.") from exc
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise CorruptCheckpointError(f"The checkpoint {path} is corrupt or not an aelib checkpoint that "
                                     f"torch.load(weights_only=True) accepts ({reason}). Delete it (or pass "
                                     f"retrain=True) and it will be trained again.") from exc
    if model is not None:
        wanted = hparams or model_args(model)
        if (saved := {k: payload["hparams"].get(k) for k in wanted}) != wanted:
            raise CheckpointError(f"The checkpoint {path} was trained with {saved}, but the model has {wanted}. "
                                  f"Build the model with the checkpoint's settings, or retrain (pass retrain=True).")
        try:
            model.load_state_dict(payload["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(f"The weights in {path} do not fit the model: {exc}") from exc
    return payload


def _cached_history(path: Path, model: nn.Module, hparams: dict, verbose: bool) -> History | None:
    """Load ``path`` into ``model``, return its history; None if there is no such file or it is corrupt."""
    if not path.exists():
        return None
    try:  # a file of other settings (e.g. renamed) raises: never trained on silently
        payload = load_checkpoint(path, model, hparams)
    except CorruptCheckpointError as exc:
        warnings.warn(f"{exc} Ignoring it.", stacklevel=3)
        return None
    if verbose:
        print(f"Loaded cached model from {path.parent.name}/{path.name}")
    return payload["history"]


def _training_lock(path: Path):
    """A lock beside ``path``, held while its model is trained; none where the folder cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(path.parent / f".{path.name}.lock").acquire()  # released when the with block ends
    except OSError:
        return nullcontext()


def train_or_load(kind: str = "ae", epochs: int = 10, seed: int = 0, batch_size: int = 128, lr: float = 1e-3,
                  device: str | torch.device | None = None, cache_dir: str | os.PathLike | None = None,
                  retrain: bool = False, verbose: bool = True, cache_only: bool | None = None,
                  **model_kwargs) -> tuple[nn.Module, History]:
    """Train a model on MNIST once, then load it from the cache: ``(model, history)``, the model in eval mode on
    ``device``. ``kind``: a key of :data:`aelib.models.MODELS`, built with ``model_kwargs`` (``latent_dim=8``); ``seed``
    fixes its initial weights and batch order (the caller's generators are left alone). Looks in the shared cache,
    then in ``cache_dir``; a model in neither is trained and saved in ``cache_dir`` (``cache_only``: an error)."""
    device = pick_device(device)
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {sorted(MODELS)}")
    with preserve_rng(device):
        torch.manual_seed(seed := whole_number("seed", seed, 0))
        model = MODELS[kind](**model_kwargs)
        hparams = {**model_args(model), "epochs": whole_number("epochs", epochs),
                   "batch_size": whole_number("batch_size", batch_size), "lr": float(lr), "seed": seed}
        settings = "_".join(f"{k}={v}" for k, v in hparams.items()).replace(" ", "")
        path = env_folder(CHECKPOINT_ENV_VAR, "checkpoints", cache_dir) / f"{kind}_{settings}.pt"  # ae_latent_dim=8_...
        shared = env_folder(SHARED_CHECKPOINT_ENV_VAR, None)
        if shared and not retrain and (history := _cached_history(shared / path.name, model, hparams, verbose)):
            return model.to(device).eval(), history
        with _training_lock(path):
            if not retrain and (history := _cached_history(path, model, hparams, verbose)):
                return model.to(device).eval(), history
            if cache_only_mode(cache_only):
                raise CacheMissError(f"{CACHE_ONLY_ENV_VAR}=1 and {path.name} is in no cache ({path.parent}"
                                     f"{f', {shared}' if shared else ''}): run `make pretrain` (or `python "
                                     f"scripts/pretrain.py`), or unset {CACHE_ONLY_ENV_VAR} to train it here.", path)
            (images, labels), (test_images, test_labels) = load_mnist(train=True), load_mnist(train=False)
            history = train(model, images, labels, epochs=epochs, batch_size=batch_size, lr=lr, device=device,
                            test_images=test_images, test_labels=test_labels, verbose=verbose)
            try:
                save_checkpoint(path, model, hparams, history)
            except (OSError, RuntimeError) as exc:  # a folder that cannot be written, a full disk, ...
                warnings.warn(f"The trained model was not saved: cannot write to the cache folder {path.parent} "
                              f"({type(exc).__name__}: {exc}). It is yours for this session only; set "
                              f"{CHECKPOINT_ENV_VAR} (or pass cache_dir=...) to a folder you can write.", stacklevel=2)
    return model.eval(), history


def _train_in_worker(kind: str, kwargs: dict) -> tuple[bytes, list[str]]:
    """A worker of :func:`train_or_load_many`: the pickled ``(model on the CPU, history)`` and its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, history = train_or_load(kind, **{**kwargs, "verbose": False})
    return pickle.dumps((model.cpu(), history)), [str(w.message) for w in caught]


def train_or_load_many(jobs, processes: int | None = None) -> list[tuple[nn.Module, History]]:
    """``[train_or_load(kind, **kwargs) for kind, kwargs in jobs]``; the models in no cache are trained side by side
    in ``processes`` one-thread workers (default: the next lines). A failing worker stops the rest, naming its model."""
    jobs = [(kind, dict(kwargs)) for kind, kwargs in jobs]
    if processes is None:
        processes = 1 if torch.cuda.is_available() else min(4, max(1, cpu_count() // default_num_threads()))
    processes = whole_number("processes", processes)
    results, missing = [None] * len(jobs), {}  # missing: job index -> cache file
    for i, (kind, kwargs) in enumerate(jobs):
        try:
            results[i] = train_or_load(kind, **{**kwargs, "cache_only": True})
        except CacheMissError as miss:
            if cache_only_mode(kwargs.get("cache_only")):
                raise
            missing[i] = miss.args[1].name
    if len(missing) > 1 and processes > 1:  # else the last line trains them here, one by one
        print(f"Training {len(missing)} models, {min(processes, len(missing))} at a time ...", flush=True)
        load_mnist(train=True), load_mnist(train=False)  # MNIST is extracted here once, before any worker starts
        pool = ProcessPoolExecutor(min(processes, len(missing)), mp_context=multiprocessing.get_context("spawn"),
                                   initializer=configure_threads, initargs=(1,))
        futures = {pool.submit(_train_in_worker, *jobs[i]): i for i in missing}
        try:
            for future in as_completed(futures):
                try:
                    pickled, messages = future.result()
                except Exception as exc:  # the worker failed, or one died (which one is then unknown)
                    names = [missing[futures[future]]]
                    if isinstance(exc, BrokenProcessPool):
                        names = [name for i, name in missing.items() if results[i] is None]
                    raise RuntimeError(f"Training {', '.join(names)} failed in a worker process "
                                       f"({type(exc).__name__}: {exc}); processes=1 trains here.") from exc
                for message in messages:
                    warnings.warn(message, stacklevel=2)
                model, history = pickle.loads(pickled)
                i = futures[future]
                results[i] = model.to(pick_device(jobs[i][1].get("device"))).eval(), history
                print(f"  trained {missing[i]}", flush=True)
        except BaseException:  # a failure or Ctrl-C: cancel what has not started, report at once
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    return [result or train_or_load(kind, **kwargs) for result, (kind, kwargs) in zip(results, jobs)]
