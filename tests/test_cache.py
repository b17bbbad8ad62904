"""aelib.cache: checkpoints (atomic, loaded with weights_only, refused when they do not fit), and
train_or_load / train_or_load_many: the own cache, a hub's read-only shared cache, cache-only mode,
an unreadable or corrupt file, a cache that cannot be written, worker processes that fail or die."""

from __future__ import annotations

import builtins
import errno
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from conftest import raises_naming, seeded

from aelib import VAE, AutoEncoder, DigitClassifier, LinearAutoEncoder, cache
from aelib.cache import (CACHE_ONLY_ENV_VAR, CHECKPOINT_ENV_VAR, SHARED_CHECKPOINT_ENV_VAR, CacheMissError,
                         CheckpointError, CorruptCheckpointError, load_checkpoint, save_checkpoint, train_or_load,
                         train_or_load_many)
from aelib.files import project_root
from aelib.models import MODELS, model_args

HISTORY = {"epoch": [1], "train_loss": [0.5], "test_loss": [0.4], "seconds": [1.0]}
SMALL = {"ae": {"latent_dim": 4, "hidden_dim": 32}, "linear": {"latent_dim": 3},
         "vae": {"latent_dim": 2, "hidden_dim": 32}, "classifier": {"channels": 4, "feature_dim": 16}}
TINY = {"latent_dim": 2, "hidden_dim": 8, "epochs": 1, "batch_size": 512, "verbose": False}


# ------------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("cls, args", [
    (AutoEncoder, SMALL["ae"]), (LinearAutoEncoder, SMALL["linear"]), (VAE, SMALL["vae"]),
    (DigitClassifier, SMALL["classifier"]),
])
def test_round_trip_restores_weights_settings_and_history(tmp_path, same_weights, cls, args):
    model = seeded(cls, 1, **args)
    hparams = {**model_args(model), "epochs": 1}
    path = save_checkpoint(tmp_path / "sub" / "ckpt.pt", model, hparams, HISTORY)
    other = seeded(cls, 2, **args)
    payload = load_checkpoint(path, other)
    assert same_weights(other, model) and payload["history"] == HISTORY and payload["hparams"] == hparams
    assert MODELS[payload["kind"]] is cls
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]  # no temp file left


class RunsCodeWhenUnpickled:
    def __reduce__(self):
        return builtins.print, ("UNPICKLED CODE RAN",)


def test_loading_never_runs_code_hidden_in_a_file(tmp_path, capsys):
    model = seeded(**SMALL["ae"])
    path = tmp_path / "evil.pt"
    torch.save({"format": cache.CHECKPOINT_FORMAT, "kind": "ae", "hparams": model_args(model),
                "history": {"x": RunsCodeWhenUnpickled()}, "state_dict": model.state_dict()}, path)
    with raises_naming(CorruptCheckpointError, path):
        load_checkpoint(path, seeded(**SMALL["ae"]))
    assert "UNPICKLED CODE RAN" not in capsys.readouterr().out


def test_other_settings_are_refused_naming_both_not_called_corrupt(tmp_path):
    path = save_checkpoint(tmp_path / "k8.pt", seeded(latent_dim=8, hidden_dim=32), {"latent_dim": 8}, HISTORY)
    with raises_naming(CheckpointError, path, "'latent_dim': 8", "'latent_dim': 4", "retrain=True") as info:
        load_checkpoint(path, AutoEncoder(latent_dim=4, hidden_dim=32))
    assert not isinstance(info.value, CorruptCheckpointError)


@pytest.mark.parametrize("saved, model", [(VAE(latent_dim=8), AutoEncoder(latent_dim=8)),
                                          (AutoEncoder(latent_dim=8), AutoEncoder(latent_dim=8, hidden_dim=16))])
def test_another_kind_of_model_or_weights_that_do_not_fit_are_refused_not_called_corrupt(tmp_path, saved, model):
    """Refused, so the cache never trains over the file (it would, were it called corrupt)."""
    path = save_checkpoint(tmp_path / "other.pt", saved, {"latent_dim": 8}, HISTORY)
    with raises_naming(CheckpointError, path) as info:
        load_checkpoint(path, model, {"latent_dim": 8})
    assert not isinstance(info.value, CorruptCheckpointError)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", {"weights": torch.zeros(2)}])
def test_corrupt_or_foreign_files_are_called_corrupt_naming_the_path(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content) if isinstance(content, bytes) else torch.save(content, path)
    with raises_naming(CorruptCheckpointError, path, "retrain=True"):
        load_checkpoint(path)


def permission_denied(*args, **kwargs):
    raise PermissionError(13, "denied")


@pytest.mark.parametrize("reason", ["FileNotFoundError", "PermissionError"])
def test_a_file_that_cannot_be_read_is_named_with_the_reason_not_called_corrupt(tmp_path, monkeypatch, reason):
    path = tmp_path / "a.pt"
    if reason == "PermissionError":
        save_checkpoint(path, seeded(**SMALL["ae"]), model_args(seeded(**SMALL["ae"])), HISTORY)
        monkeypatch.setattr(cache.torch, "load", permission_denied)
    with raises_naming(CheckpointError, path, reason) as info:
        load_checkpoint(path)
    assert not isinstance(info.value, CorruptCheckpointError)


def test_a_relative_cache_variable_is_the_same_folder_from_the_repository_and_from_notebooks(monkeypatch, tmp_path):
    monkeypatch.setenv(CHECKPOINT_ENV_VAR, os.path.relpath(tmp_path / "my-cache", project_root()))
    monkeypatch.setenv(CACHE_ONLY_ENV_VAR, "1")  # the miss names the folder it looked in
    for here in (project_root(), project_root() / "notebooks"):
        monkeypatch.chdir(here)
        with pytest.raises(CacheMissError) as info:
            train_or_load("ae", epochs=1, verbose=False, **SMALL["ae"])
        assert info.value.args[1].parent.resolve() == (tmp_path / "my-cache").resolve()


# ---------------------------------------------------------------------- train_or_load


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_each_kind_trains_once_then_loads_from_the_cache(tmp_path, small_mnist, capsys, kind, same_weights):
    model, history = train_or_load(kind, epochs=1, cache_dir=tmp_path, **SMALL[kind])
    assert type(model) is MODELS[kind] and len(small_mnist) == 1 and not model.training
    assert "Epoch 1/1" in capsys.readouterr().out and len(history["test_loss"]) == 1
    assert small_mnist[0]["test_labels"] is not None  # a classifier's test loss needs them
    [path] = tmp_path.glob("*.pt")
    again, cached_history = train_or_load(kind, epochs=1, cache_dir=tmp_path, **SMALL[kind])
    assert len(small_mnist) == 1 and path.name in capsys.readouterr().out
    assert cached_history == history and same_weights(again, model) and not again.training


def test_the_seed_fixes_weights_and_retrain_trains_the_same_model_again(tmp_path, small_mnist, same_weights):
    first, h1 = train_or_load("ae", epochs=1, seed=5, cache_dir=tmp_path / "a", verbose=False, **SMALL["ae"])
    torch.manual_seed(123)  # the caller's seed does not matter
    second, h2 = train_or_load("ae", epochs=1, seed=5, cache_dir=tmp_path / "a", retrain=True, verbose=False,
                               **SMALL["ae"])
    assert len(small_mnist) == 2 and h1["train_loss"] == h2["train_loss"] and same_weights(first, second)
    third, h3 = train_or_load("ae", epochs=1, seed=6, cache_dir=tmp_path / "b", verbose=False, **SMALL["ae"])
    assert not same_weights(first, third) and "seed=6" in next((tmp_path / "b").glob("*.pt")).name


def test_train_or_load_leaves_the_callers_random_generators_alone(tmp_path, small_mnist):
    for _ in ("train", "load"):
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        train_or_load("ae", epochs=1, seed=5, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
        assert torch.equal(torch.rand(3), expected)


def test_a_corrupt_cache_file_is_reported_retrained_and_replaced(tmp_path, small_mnist, same_weights):
    train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    [path] = tmp_path.glob("*.pt")
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning) as warned:
        model, _ = train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    assert str(path) in str(warned[0].message) and len(small_mnist) == 2
    restored = AutoEncoder(**SMALL["ae"])
    load_checkpoint(path, restored)
    assert same_weights(restored, model)


def test_an_unreadable_cache_file_is_reported_and_never_overwritten(tmp_path, small_mnist, monkeypatch):
    train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    [path] = tmp_path.glob("*.pt")
    before = path.read_bytes()
    monkeypatch.setattr(cache.torch, "load", permission_denied)
    with raises_naming(CheckpointError, path) as info:
        train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    assert not isinstance(info.value, CorruptCheckpointError)
    assert path.read_bytes() == before and len(small_mnist) == 1


def test_a_renamed_file_of_other_settings_is_refused_not_trained_on(tmp_path, small_mnist):
    train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    [file] = tmp_path.glob("*.pt")
    file.rename(tmp_path / file.name.replace("epochs=1", "epochs=2"))
    with raises_naming(CheckpointError, "'epochs': 1", "'epochs': 2"):
        train_or_load("ae", epochs=2, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    assert len(small_mnist) == 1


def test_an_unknown_kind_names_the_choices(tmp_path):
    with raises_naming(ValueError, "'cnn'", *map(repr, MODELS)):
        train_or_load("cnn", cache_dir=tmp_path)


def test_a_cache_file_of_the_notebooks_loads_under_its_name(tmp_path, small_mnist, same_weights):
    """A file written before this version (its "kind" the class name) still loads under its name."""
    name = "ae_latent_dim=8_hidden_dim=256_code_activation=relu_epochs=10_batch_size=128_lr=0.001_seed=0.pt"
    saved = seeded(seed=3)
    torch.save({"format": 2, "kind": "AutoEncoder", "history": HISTORY, "state_dict": saved.state_dict(),
                "hparams": {"latent_dim": 8, "hidden_dim": 256, "code_activation": "relu", "epochs": 10,
                            "batch_size": 128, "lr": 0.001, "seed": 0}}, tmp_path / name)
    model, history = train_or_load("ae", cache_dir=tmp_path, verbose=False)
    assert small_mnist == [] and history == HISTORY and same_weights(model, saved)


def full_disk(obj, f):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failure", ["a file in the way", "a full disk"])
def test_a_cache_that_cannot_be_written_keeps_the_model_naming_the_folder_the_reason_and_the_variable(
        tmp_path, small_mnist, monkeypatch, failure):
    folder = tmp_path / "cache"
    if failure == "a file in the way":  # (as root, a read-only folder is still written)
        folder.write_text("a file in the way")
        reason = "FileExistsError"
    else:
        monkeypatch.setattr(cache.torch, "save", full_disk)
        reason = "No space left"
    with pytest.warns(UserWarning) as warned:
        _, history = train_or_load("ae", epochs=1, cache_dir=folder, verbose=False, **SMALL["ae"])
    message = str(warned[0].message)
    assert str(folder) in message and reason in message and CHECKPOINT_ENV_VAR in message
    assert len(history["train_loss"]) == 1 and not list(tmp_path.rglob("*.pt"))
    assert folder.is_dir() or folder.read_text() == "a file in the way"


# ---------------------------------------------------------- a hub's shared cache, cache-only


@pytest.fixture
def shared_cache(tmp_path, monkeypatch, small_mnist):
    """A shared folder holding one trained model (seed 0), set as the hub's shared cache; every
    write into it fails, as in a read-only folder."""
    shared = tmp_path / "shared"
    train_or_load("ae", epochs=1, cache_dir=shared, verbose=False, **SMALL["ae"])
    small_mnist.clear()
    monkeypatch.setenv(SHARED_CHECKPOINT_ENV_VAR, str(shared))
    real_save, real_mkdir = cache.save_checkpoint, type(shared).mkdir

    def save_refusing_shared(path, *args):
        assert shared not in path.parents, f"wrote into the shared cache: {path}"
        return real_save(path, *args)

    def mkdir_refusing_shared(self, *args, **kwargs):
        assert self != shared and shared not in self.parents, f"wrote into the shared cache: {self}"
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(cache, "save_checkpoint", save_refusing_shared)
    monkeypatch.setattr(type(shared), "mkdir", mkdir_refusing_shared)
    return shared


def test_a_model_in_the_shared_cache_is_loaded_from_it(shared_cache, tmp_path, small_mnist):
    own = tmp_path / "own"
    train_or_load("ae", epochs=1, cache_dir=own, verbose=False, **SMALL["ae"])
    assert small_mnist == [] and not own.exists()


def test_a_model_missing_from_the_shared_cache_is_trained_into_the_own_one(shared_cache, tmp_path, small_mnist):
    before = sorted(p.name for p in shared_cache.iterdir())
    own = tmp_path / "own"
    train_or_load("ae", epochs=1, seed=7, cache_dir=own, verbose=False, **SMALL["ae"])
    assert len(small_mnist) == 1 and len(list(own.glob("*seed=7.pt"))) == 1
    assert sorted(p.name for p in shared_cache.iterdir()) == before
    train_or_load("ae", epochs=1, seed=7, cache_dir=own, verbose=False, **SMALL["ae"])
    assert len(small_mnist) == 1  # now found in the own cache


def test_cache_only_mode_makes_a_miss_an_error_naming_the_file_and_the_fix(monkeypatch, tmp_path, small_mnist):
    monkeypatch.setenv(CACHE_ONLY_ENV_VAR, "1")
    with raises_naming(CacheMissError, "seed=3.pt", tmp_path, "make pretrain", CACHE_ONLY_ENV_VAR):
        train_or_load("ae", epochs=1, seed=3, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    assert small_mnist == []
    monkeypatch.setenv(CACHE_ONLY_ENV_VAR, "0")
    train_or_load("ae", epochs=1, seed=3, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    monkeypatch.setenv(CACHE_ONLY_ENV_VAR, "1")  # a cached model still loads
    train_or_load("ae", epochs=1, seed=3, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    assert len(small_mnist) == 1


def test_a_bad_cache_only_value_names_the_variable_and_the_value(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ONLY_ENV_VAR, "yes please")
    with raises_naming(ValueError, CACHE_ONLY_ENV_VAR, "'yes please'"):
        train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])


# ---------------------------------------------------------------- several processes at once

RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import torch
    from aelib import cache

    folder, name = Path(sys.argv[1]), sys.argv[2]
    real_train = cache.train

    def slow_train(*args, **kwargs):  # long enough for the other process to ask meanwhile
        time.sleep(2)
        return real_train(*args, **kwargs)

    cache.train = slow_train
    cache.load_mnist = lambda train=True, root=None: (torch.rand(256, 784), torch.zeros(256, dtype=torch.long))
    (folder / f"ready-{name}").touch()
    while not (folder / "go").exists():
        time.sleep(0.05)
    model, history = cache.train_or_load("ae", cache_dir=folder, latent_dim=2, hidden_dim=8, epochs=1)
    print("final loss", history["train_loss"][-1])
""")


def test_two_processes_asking_for_one_model_both_get_it_trained_once(tmp_path):
    env = {**os.environ, "AELIB_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), name], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name in "ab"]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{n}").exists() for n in "ab") and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    said = "".join(out for out, _ in outputs)
    assert said.count("Epoch 1/1") == 1 and "Loaded cached model" in said, said
    assert len({line for line in said.splitlines() if line.startswith("final loss")}) == 1


def test_train_or_load_many_trains_the_missing_models_in_workers(tmp_path, same_weights):
    """Real MNIST in two spawned workers (tiny models, one epoch); a cached model is loaded, not trained."""
    cached = train_or_load("ae", cache_dir=tmp_path, seed=3, **TINY)
    jobs = [("ae", dict(cache_dir=tmp_path, seed=s, **TINY)) for s in (1, 2, 3)]
    out = train_or_load_many(jobs, processes=2)
    assert len(list(tmp_path.glob("*.pt"))) == 3 and same_weights(out[2][0], cached[0])
    again = train_or_load_many(jobs, processes=2)  # now all cached: the same models
    assert all(same_weights(a[0], b[0]) and a[1] == b[1] for a, b in zip(out, again))
    assert out[0][1]["train_loss"] != out[1][1]["train_loss"]


class BusyWhenUnpickled:
    """A job argument that keeps the worker receiving it busy for two minutes, as a long training would."""

    def __reduce__(self):
        return time.sleep, (120,)


def test_a_failing_worker_is_reported_at_once_naming_its_model(tmp_path):
    """Adam refuses a negative rate, in one worker, while the other is still busy: the error comes at once."""
    busy = ("ae", dict(cache_dir=tmp_path, seed=1, **{**TINY, "verbose": BusyWhenUnpickled()}))
    jobs = [busy, ("ae", dict(cache_dir=tmp_path, lr=-1.0, **TINY))]
    before, start = set(multiprocessing.active_children()), time.monotonic()
    try:
        with raises_naming(RuntimeError, "lr=-1.0", "processes=1") as info:
            train_or_load_many(jobs, processes=2)
        assert time.monotonic() - start < 90, "the error waited for the busy worker"
        assert "seed=1" not in str(info.value)
    finally:
        for worker in set(multiprocessing.active_children()) - before:  # the busy worker
            worker.terminate()


class DiesWhenUnpickled:
    """A job argument that kills the worker process that receives it, as an out-of-memory kill would."""

    def __reduce__(self):
        return os._exit, (3,)


def test_a_worker_that_dies_is_reported_naming_its_model(tmp_path):
    jobs = [("ae", dict(cache_dir=tmp_path, seed=1, **TINY)),
            ("ae", dict(cache_dir=tmp_path, **{**TINY, "seed": 9, "verbose": DiesWhenUnpickled()}))]
    with raises_naming(RuntimeError, "seed=9.pt", "processes=1"):
        train_or_load_many(jobs, processes=2)


def test_train_or_load_many_in_cache_only_mode_raises_before_starting_workers(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ONLY_ENV_VAR, "1")
    monkeypatch.setattr(cache, "ProcessPoolExecutor", None)  # starting workers would fail differently
    with raises_naming(CacheMissError, "seed=1.pt"):
        train_or_load_many([("ae", dict(cache_dir=tmp_path, seed=s, **TINY)) for s in (1, 2)], processes=2)


def test_train_or_load_many_extracts_mnist_once_before_starting_workers(tmp_path, monkeypatch):
    """Workers extracting one fresh data root at once raced (issue 18): the parent loads MNIST first."""
    events = []
    monkeypatch.setattr(cache, "load_mnist", lambda train=True, root=None: events.append(f"mnist {train}"))

    def no_pool(*args, **kwargs):
        events.append("pool")
        raise RuntimeError("stop here")

    monkeypatch.setattr(cache, "ProcessPoolExecutor", no_pool)
    with raises_naming(RuntimeError, "stop here"):
        train_or_load_many([("ae", dict(cache_dir=tmp_path, seed=s, **TINY)) for s in (1, 2)], processes=2)
    assert events == ["mnist True", "mnist False", "pool"]


def test_train_or_load_many_runs_several_workers_only_where_cpus_allow(monkeypatch, tmp_path, small_mnist):
    """One usable CPU (a hub's quota on a big host): the models are trained one at a time, here."""
    monkeypatch.setattr(cache, "cpu_count", lambda: 1)
    monkeypatch.setattr(cache.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(cache, "ProcessPoolExecutor", None)
    out = train_or_load_many([("ae", dict(epochs=1, cache_dir=tmp_path, seed=s, **SMALL["ae"])) for s in (4, 4, 5)])
    assert len(small_mnist) == 2 and [type(m) for m, _ in out] == [AutoEncoder] * 3
