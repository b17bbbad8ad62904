"""What aelib keeps on disk: MNIST under the data root ``$AELIB_DATA_DIR`` (default ``data/``;
downloaded into ``ROOT/MNIST/raw`` if missing), and trained models in the cache
``$AELIB_CHECKPOINT_DIR`` (default ``checkpoints/``), one file per model named after its settings."""

import inspect
import multiprocessing
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .models import IMAGE_PIXELS, IMAGE_SIDE, MODELS, model_args
from .training import History, configure_threads, default_num_threads, pick_device, side_stream, train, whole_number

try:
    import fcntl
except ImportError:  # Windows: no lock; two processes may both train, each write stays atomic
    fcntl = None

DATA_ENV_VAR, CHECKPOINT_ENV_VAR = "AELIB_DATA_DIR", "AELIB_CHECKPOINT_DIR"
CHECKPOINT_FORMAT = 2
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class MNISTUnavailableError(RuntimeError):
    """MNIST could be neither found locally nor downloaded, or a file is corrupt."""


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt or does not match the model asked for."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file cannot be read at all (the cache retrains and replaces it)."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """``write(temp_path)``, then rename it to ``path``: no reader sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=path.suffix + ".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these files are shared like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def project_root() -> Path:
    """The repository folder (where ``pyproject.toml`` lives), or the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The argument, else ``$AELIB_DATA_DIR``, else ``<repo>/data``."""
    return Path(root or os.environ.get(DATA_ENV_VAR) or project_root() / "data").expanduser().resolve()


def _damaged_files(raw: Path) -> list[str]:
    """Damaged files in ``raw``: a wrong MD5, or an extract of the wrong size (unreadable: left out)."""
    from torchvision.datasets import MNIST
    from torchvision.datasets.utils import check_md5

    counts = zip(MNIST_FILES, (60_000, 60_000, 10_000, 10_000))  # header + one byte per pixel or label
    sizes = {n[:-3]: (16 + IMAGE_PIXELS * c if "images" in n else 8 + c) for n, c in counts}
    return ([f"{raw / n} (MD5 checksum does not match)" for n, md5 in MNIST.resources
             if (raw / n).is_file() and os.access(raw / n, os.R_OK) and not check_md5(raw / n, md5)]
            + [f"{raw / n} ({(raw / n).stat().st_size} bytes, expected {s})" for n, s in sizes.items()
               if (raw / n).is_file() and (raw / n).stat().st_size != s])


def load_mnist(train: bool = True, root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training (60,000) or test (10,000) split in the official order: float32 images ``[N, 784]``
    in [0, 1] (as ``ToTensor`` makes them), int64 labels ``[N]``; ``TensorDataset(*load_mnist())``."""
    from torchvision.datasets import MNIST  # imported here: torchvision is slow to import

    path = data_root(root)
    expected = (60_000 if train else 10_000, IMAGE_SIDE, IMAGE_SIDE)
    try:
        dataset = MNIST(str(path), train=train, download=True)
        if tuple(dataset.data.shape) != expected:
            raise ValueError(f"images have shape {tuple(dataset.data.shape)}, expected {expected}")
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        reason = f"{type(exc).__name__}: {exc}".strip()
        if damaged := _damaged_files(path / "MNIST" / "raw"):
            reason = "corrupt or partial file(s): " + "; ".join(damaged) + f". {reason}"
        files = "\n".join(f"    {path / 'MNIST' / 'raw' / name}" for name in MNIST_FILES)
        raise MNISTUnavailableError(
            f"Could not load MNIST from the data root {path} ({reason}).\n"
            f"Either allow the download (network access), or put the four official files here:\n{files}\n"
            f"To use another folder, set the environment variable {DATA_ENV_VAR}=/path/to/root (the folder "
            f"that contains MNIST/raw). A corrupt or partial file: delete it and the extracted file of the "
            f"same name without .gz, then try again.") from exc
    images = dataset.data.reshape(len(dataset.data), IMAGE_PIXELS).float().div_(255.0)
    return images, dataset.targets.long()


def checkpoint_dir(path: str | os.PathLike | None = None) -> Path:
    """The argument, else ``$AELIB_CHECKPOINT_DIR``, else ``<repo>/checkpoints``."""
    return Path(path or os.environ.get(CHECKPOINT_ENV_VAR) or project_root() / "checkpoints").expanduser()


def model_kind(model: nn.Module) -> str:
    """The key of ``model``'s class in :data:`aelib.models.MODELS` (``"ae"``, ...), else its class name."""
    return next((kind for kind, cls in MODELS.items() if type(model) is cls), type(model).__name__)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, hparams: dict, history: History) -> Path:
    """Write weights, settings (``hparams``) and history atomically (temp file, then rename)."""
    payload = {"format": CHECKPOINT_FORMAT, "kind": model_kind(model), "hparams": dict(hparams),
               "history": {key: list(values) for key, values in history.items()},
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None, hparams: dict | None = None) -> dict:
    """Read a checkpoint (``weights_only=True``); load it into ``model`` if given and trained with ``hparams``
    (default: ``model_args(model)``). Raises :class:`CheckpointError` (unreadable: ``CorruptCheckpointError``)."""
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
        reason = str(exc) if isinstance(exc, ValueError) else {
            pickle.UnpicklingError: "torch.load(weights_only=True) refuses its content",
            EOFError: "the file is empty or cut short"}.get(type(exc), f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise CorruptCheckpointError(f"The checkpoint {path} is corrupt or not an aelib checkpoint ({reason}). "
                                     f"Delete it (or pass retrain=True) and it will be trained again.") from exc
    if model is not None:
        if payload["kind"] not in (model_kind(model), type(model).__name__):  # older: the class name
            raise CheckpointError(f"The checkpoint {path} holds a {payload['kind']!r} model, "
                                  f"not a {model_kind(model)!r} one.")
        wanted = hparams or model_args(model)
        if (saved := {k: payload["hparams"].get(k) for k in wanted}) != wanted:
            raise CheckpointError(f"The checkpoint {path} was trained with {saved}, but the model has "
                                  f"{wanted}. Build the model with the checkpoint's settings, or retrain "
                                  f"(delete the file, or pass retrain=True).")
        try:
            model.load_state_dict(payload["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(f"The weights in {path} do not fit the model: {exc}") from exc
    return payload


def _entry(kind: str, epochs: int, seed: int, batch_size: int, lr: float, cache_dir, args: dict
           ) -> tuple[nn.Module, dict, Path]:
    """Seed torch, build the model; return it, its settings and its cache file."""
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {sorted(MODELS)}")
    torch.manual_seed(seed := whole_number("seed", seed, 0))
    model = MODELS[kind](**args)
    hparams = {**model_args(model), "epochs": whole_number("epochs", epochs),
               "batch_size": whole_number("batch_size", batch_size), "lr": float(lr), "seed": seed}
    name = kind + "_" + "_".join(f"{k}={v}" for k, v in hparams.items()).replace(" ", "") + ".pt"
    return model, hparams, checkpoint_dir(cache_dir) / name


def _unwritable(folder: Path) -> str | None:
    """Why no file can be written in ``folder`` (None if one can)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@contextmanager
def _locked(path: Path, verbose: bool) -> Iterator[str | None]:
    """Hold a lock beside ``path`` while a model is loaded or trained: another process asking
    for the same model waits, then loads it. Yields why the folder cannot be written, or None."""
    if unwritable := _unwritable(path.parent):
        yield unwritable
        return
    with open(path.parent / f".{path.name}.lock", "a+") as handle:
        try:
            if fcntl:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if verbose:
                print(f"Waiting: another process is training {path.name}", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks
            pass
        yield None


def train_or_load(kind: str = "ae", epochs: int = 10, seed: int = 0, batch_size: int = 128, lr: float = 1e-3,
                  device: str | torch.device | None = None, cache_dir: str | os.PathLike | None = None,
                  retrain: bool = False, verbose: bool = True, **model_args) -> tuple[nn.Module, History]:
    """Train a model on MNIST once, then load it from the cache: ``(model, history)``, the model
    in eval mode on ``device``. ``kind``: a key of :data:`aelib.models.MODELS`, whose constructor
    gets ``model_args`` (``latent_dim=8``); ``seed`` fixes the initial weights and batch order
    (the caller's generators are left alone). A process asking while another trains the same
    model waits, then loads; a corrupt file is retrained; an unwritable cache warns."""
    device = pick_device(device)
    with side_stream(device):
        model, hparams, path = _entry(kind, epochs, seed, batch_size, lr, cache_dir, model_args)
        with _locked(path, verbose) as unwritable:
            if path.exists() and not retrain:
                try:  # a file of other settings (e.g. renamed) raises: never trained on silently
                    payload = load_checkpoint(path, model, hparams)
                except CorruptCheckpointError as exc:
                    warnings.warn(f"{exc} Retraining now and overwriting it.", stacklevel=2)
                else:
                    if verbose:
                        print(f"Loaded cached model from {path.parent.name}/{path.name}")
                    return model.to(device).eval(), payload["history"]
            (images, labels), (test_images, test_labels) = load_mnist(train=True), load_mnist(train=False)
            history = train(model, images, labels, epochs=epochs, batch_size=batch_size, lr=lr, device=device,
                            test_images=test_images, test_labels=test_labels, verbose=verbose)
            if not (reason := unwritable):
                try:
                    save_checkpoint(path, model, hparams, history)
                except (OSError, RuntimeError) as exc:  # a full disk, ...
                    reason = f"{type(exc).__name__}: {exc}"
            if reason:
                warnings.warn(f"The trained model was not saved: cannot write to the cache folder {path.parent} "
                              f"({reason}). It is yours for this session only; set {CHECKPOINT_ENV_VAR} (or pass "
                              f"cache_dir=...) to a folder you can write, and it is kept.", stacklevel=2)
    return model.eval(), history


def _train_job(job: tuple[str, dict]) -> None:
    """A worker of :func:`train_or_load_many` (module level, so spawn can find it)."""
    train_or_load(job[0], **{**job[1], "verbose": False})


def train_or_load_many(jobs, processes: int | None = None) -> list[tuple[nn.Module, History]]:
    """``[train_or_load(kind, **kwargs) for kind, kwargs in jobs]``; the models missing from the cache are
    first trained side by side in ``processes`` one-thread workers (default: the cores over the default
    threads, at most 4, so a 2-core laptop trains two at a time; 1 with CUDA)."""
    jobs = [(kind, dict(kwargs)) for kind, kwargs in jobs]
    processes = whole_number("processes", processes if processes is not None else 1 if torch.cuda.is_available()
                             else min(4, max(1, (os.cpu_count() or 1) // default_num_threads())))
    todo = {}  # cache file -> the first job that asks for it
    for kind, kwargs in jobs:
        (bound := inspect.signature(train_or_load).bind(kind, **kwargs)).apply_defaults()
        a = bound.arguments
        with side_stream():
            path = _entry(kind, a["epochs"], a["seed"], a["batch_size"], a["lr"], a["cache_dir"], a["model_args"])[2]
        if a["retrain"] or not path.exists():
            todo.setdefault(path, (kind, kwargs))
    if processes > 1 and len(todo) > 1 and not any(_unwritable(path.parent) for path in todo):
        todo = list(todo.values())
        print(f"Training {len(todo)} models, {min(processes, len(todo))} at a time ...", flush=True)
        with ProcessPoolExecutor(min(processes, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=configure_threads, initargs=(1,)) as pool:
            for (kind, kwargs), _ in zip(todo, pool.map(_train_job, todo)):
                print(f"  trained {kind} {kwargs}", flush=True)
                kwargs["retrain"] = False  # trained just now: load it below
    return [train_or_load(kind, **kwargs) for kind, kwargs in jobs]
