"""Checkpoints (atomic, loaded with weights_only, clear errors) and the model cache:
train_or_load for every model kind (tiny cache folders, MNIST patched to small subsets), a
cache that cannot be written, two processes asking for one model, train_or_load_many."""

from __future__ import annotations

import builtins
import errno
import inspect
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch import nn

from aelib import (MODELS, VAE, AutoEncoder, CheckpointError, CorruptCheckpointError, DigitClassifier,
                   LinearAutoEncoder, data, load_checkpoint, save_checkpoint, train_or_load,
                   train_or_load_many)
from aelib.data import CHECKPOINT_ENV_VAR, checkpoint_dir
from aelib.models import model_args

HISTORY = {"epoch": [1], "train_loss": [0.5], "test_loss": [0.4], "seconds": [1.0]}


def fresh(cls=AutoEncoder, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return cls(**kwargs)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k].to(sa[k].device)) for k in sa)


# ------------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("cls, args", [
    (AutoEncoder, {"latent_dim": 4, "hidden_dim": 32}), (LinearAutoEncoder, {"latent_dim": 3}),
    (VAE, {"latent_dim": 2, "hidden_dim": 16}), (DigitClassifier, {"channels": 4}),
])
def test_round_trip_restores_weights_settings_and_history(tmp_path, cls, args):
    model = fresh(cls, 1, **args)
    hparams = {**model_args(model), "epochs": 1}
    path = save_checkpoint(tmp_path / "ckpt.pt", model, hparams, HISTORY)
    other = fresh(cls, 2, **args)
    assert not same_weights(other, model)
    payload = load_checkpoint(path, other)
    assert same_weights(other, model)
    assert payload["history"] == HISTORY and payload["hparams"] == hparams
    assert MODELS[payload["kind"]] is cls


def test_a_checkpoint_is_plain_tensors_and_lists_and_world_readable(tmp_path):
    model = fresh(latent_dim=3, hidden_dim=16)
    path = save_checkpoint(tmp_path / "sub" / "a.pt", model, model_args(model), HISTORY)
    payload = torch.load(path, weights_only=True)  # loads without unpickling any code
    assert set(payload["state_dict"]) == set(model.state_dict())
    assert [p.name for p in path.parent.iterdir()] == ["a.pt"]  # no temp file left
    assert path.stat().st_mode & 0o044 == 0o044


class RunsCodeWhenUnpickled:
    def __reduce__(self):
        return builtins.print, ("UNPICKLED CODE RAN",)


def test_loading_never_runs_code_hidden_in_a_file(tmp_path, capsys):
    model = fresh(latent_dim=3, hidden_dim=16)
    path = tmp_path / "evil.pt"
    # a file with every field of a checkpoint, plus an object that runs code when unpickled
    torch.save({"format": data.CHECKPOINT_FORMAT, "kind": "AutoEncoder",
                "hparams": model_args(model), "history": {"x": RunsCodeWhenUnpickled()},
                "state_dict": model.state_dict()}, path)
    with pytest.raises(CorruptCheckpointError, match=r"torch\.load\(weights_only=True\) refuses"):
        load_checkpoint(path, fresh(latent_dim=3, hidden_dim=16))
    assert "UNPICKLED CODE RAN" not in capsys.readouterr().out


def test_other_settings_are_refused_naming_both(tmp_path):
    model = fresh(latent_dim=8, hidden_dim=32)
    path = save_checkpoint(tmp_path / "k8.pt", model, model_args(model), HISTORY)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, AutoEncoder(latent_dim=4, hidden_dim=32))
    message = str(info.value)
    assert "trained with {'latent_dim': 8, 'hidden_dim': 32, 'code_activation': 'relu'}" in message
    assert "the model has {'latent_dim': 4, 'hidden_dim': 32, 'code_activation': 'relu'}" in message
    assert not isinstance(info.value, CorruptCheckpointError)  # not retrained silently
    with pytest.raises(CheckpointError, match="'code_activation': 'relu'.*'code_activation': None"):
        load_checkpoint(path, AutoEncoder(latent_dim=8, hidden_dim=32, code_activation=None))


def test_another_kind_of_model_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "vae.pt", VAE(latent_dim=8), {"latent_dim": 8}, HISTORY)
    with pytest.raises(CheckpointError, match=f"The checkpoint {re.escape(str(path))} holds a 'vae' "
                                              f"model, not a 'ae' one"):
        load_checkpoint(path, AutoEncoder(latent_dim=8))


def test_weights_that_do_not_fit_are_refused(tmp_path):
    model = fresh(latent_dim=4, hidden_dim=16)
    path = save_checkpoint(tmp_path / "a.pt", nn.Linear(2, 2), model_args(model), HISTORY)
    payload = torch.load(path, weights_only=True)
    payload["kind"] = "AutoEncoder"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="The weights in .* do not fit the model"):
        load_checkpoint(path, model)


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty or cut short"),
    (b"not a checkpoint at all", "torch.load(weights_only=True) refuses its content"),
    ({"weights": torch.zeros(2)}, "its format field is missing or unknown"),
    ({"format": data.CHECKPOINT_FORMAT, "kind": "AutoEncoder"},
     "the fields ['hparams', 'history', 'state_dict'] are missing or malformed"),
])
def test_corrupt_or_foreign_files_say_what_is_wrong_and_what_to_do(tmp_path, content, reason):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CorruptCheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == (
        f"The checkpoint {path} is corrupt or not an aelib checkpoint ({reason}). "
        f"Delete it (or pass retrain=True) and it will be trained again.")


def test_a_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="There is no checkpoint file at"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_checkpoint_dir_argument_then_variable_then_repository(monkeypatch, tmp_path):
    monkeypatch.setenv(CHECKPOINT_ENV_VAR, str(tmp_path))
    assert checkpoint_dir() == tmp_path
    assert checkpoint_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(CHECKPOINT_ENV_VAR)
    assert checkpoint_dir() == data.project_root() / "checkpoints"


# ---------------------------------------------------------------------- train_or_load

SMALL = {"ae": {"latent_dim": 4, "hidden_dim": 32}, "linear": {"latent_dim": 3},
         "vae": {"latent_dim": 2, "hidden_dim": 32}, "classifier": {"channels": 4, "feature_dim": 16}}


@pytest.fixture
def small_mnist(monkeypatch, mnist_train, mnist_test):
    """train_or_load on 512 training and 256 test images; returns the list of the
    train() calls it makes."""
    calls = []
    real_train = data.train

    def subset(train=True, root=None):
        images, labels = mnist_train if train else mnist_test
        n = 512 if train else 256
        return images[:n], labels[:n]

    def counting_train(*args, **kwargs):
        calls.append(kwargs)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(data, "load_mnist", subset)
    monkeypatch.setattr(data, "train", counting_train)
    return calls


@pytest.mark.parametrize("kind, cls", [("ae", AutoEncoder), ("linear", LinearAutoEncoder),
                                       ("vae", VAE), ("classifier", DigitClassifier)])
def test_each_kind_trains_once_then_loads_from_the_cache(tmp_path, small_mnist, capsys, kind, cls,
                                                         mnist_test_subset):
    model, history = train_or_load(kind, epochs=1, cache_dir=tmp_path, **SMALL[kind])
    assert type(model) is cls and model_args(model) == {**model_args(model), **SMALL[kind]}
    assert len(small_mnist) == 1 and not model.training
    assert re.fullmatch(r"Epoch 1/1: loss=\d+\.\d{4}\n", capsys.readouterr().out)
    assert len(history["test_loss"]) == 1  # scored on the test split after the epoch
    # train() gets the test split's labels (a classifier's loss needs them)
    assert torch.equal(small_mnist[0]["test_labels"], mnist_test_subset[1][:256])
    [path] = tmp_path.glob("*.pt")

    again, cached_history = train_or_load(kind, epochs=1, cache_dir=tmp_path, **SMALL[kind])
    assert len(small_mnist) == 1  # no second training run
    assert capsys.readouterr().out == f"Loaded cached model from {tmp_path.name}/{path.name}\n"
    assert cached_history == history and same_weights(again, model) and not again.training


def test_the_seed_fixes_weights_and_history(tmp_path, small_mnist):
    first, h1 = train_or_load("ae", epochs=1, seed=5, cache_dir=tmp_path / "a", verbose=False,
                              **SMALL["ae"])
    second, h2 = train_or_load("ae", epochs=1, seed=5, cache_dir=tmp_path / "b", verbose=False,
                               **SMALL["ae"])
    assert h1["train_loss"] == h2["train_loss"] and same_weights(first, second)
    third, h3 = train_or_load("ae", epochs=1, seed=6, cache_dir=tmp_path / "c", verbose=False,
                              **SMALL["ae"])
    assert h3["train_loss"] != h1["train_loss"] and not same_weights(first, third)
    assert "seed=6" in next((tmp_path / "c").glob("*.pt")).name


def test_retrain_trains_again_and_replaces_the_file(tmp_path, small_mnist):
    first, _ = train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    torch.manual_seed(123)  # retrain reseeds itself: the same model comes out
    second, _ = train_or_load("ae", epochs=1, cache_dir=tmp_path, retrain=True, verbose=False,
                              **SMALL["ae"])
    assert len(small_mnist) == 2 and same_weights(first, second)


def test_a_corrupt_cache_file_is_reported_retrained_and_replaced(tmp_path, small_mnist):
    train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    [path] = tmp_path.glob("*.pt")
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=r"corrupt or not an aelib checkpoint.* Retraining now and "
                                         r"overwriting it\."):
        model, _ = train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    assert len(small_mnist) == 2
    restored = AutoEncoder(**SMALL["ae"])
    load_checkpoint(path, restored)
    assert same_weights(restored, model)


@pytest.mark.parametrize("old, new, message", [
    ("epochs=1", "epochs=2", "'epochs': 1.*the model has.*'epochs': 2"),  # a training setting
    ("hidden_dim=32", "hidden_dim=16", "'hidden_dim': 32.*the model has.*'hidden_dim': 16"),  # a constructor one
])
def test_a_file_with_other_settings_under_the_name_is_refused_not_retrained(tmp_path, small_mnist,
                                                                            old, new, message):
    # a folder name containing "corrupt" must not turn a mismatch into a silent retrain
    cache = tmp_path / "corrupt-looking-folder"
    train_or_load("ae", epochs=1, cache_dir=cache, verbose=False, **SMALL["ae"])
    [file] = cache.glob("*.pt")
    file.rename(cache / file.name.replace(old, new))
    asked = {"epochs": 1, **SMALL["ae"], **{k: int(v) for k, v in [new.split("=")]}}
    with pytest.raises(CheckpointError, match=message):
        train_or_load("ae", cache_dir=cache, verbose=False, **asked)
    assert len(small_mnist) == 1


def test_unknown_kind_lists_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"unknown model kind 'cnn'; choose one of "
                                         r"\['ae', 'classifier', 'linear', 'vae'\]"):
        train_or_load("cnn", cache_dir=tmp_path)


def test_a_cache_file_of_the_notebooks_loads_under_its_name(tmp_path, small_mnist, capsys):
    """The file name and the stored settings of a cache written before this version (whose
    "kind" field held the class name) still select and load the article's model."""
    name = "ae_latent_dim=8_hidden_dim=256_code_activation=relu_epochs=10_batch_size=128_lr=0.001_seed=0.pt"
    saved = fresh(seed=3)
    torch.save({"format": 2, "kind": "AutoEncoder", "history": HISTORY,
                "hparams": {"latent_dim": 8, "hidden_dim": 256, "code_activation": "relu", "epochs": 10,
                            "batch_size": 128, "lr": 0.001, "seed": 0},
                "state_dict": saved.state_dict()}, tmp_path / name)
    model, history = train_or_load("ae", cache_dir=tmp_path)
    assert small_mnist == [] and history == HISTORY and same_weights(model, saved)
    assert capsys.readouterr().out == f"Loaded cached model from {tmp_path.name}/{name}\n"


def test_train_or_load_leaves_the_callers_random_generators_alone(tmp_path, small_mnist):
    """Loading (or training) a model must not reseed the caller's generators: a notebook
    draws the same numbers after it whether the cache was warm or cold."""
    for _ in ("train", "load"):
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        train_or_load("ae", epochs=1, seed=5, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
        assert torch.equal(torch.rand(3), expected)
    assert len(small_mnist) == 1


class WithNoise(AutoEncoder):
    """An autoencoder with one more constructor option, as a future version might add."""

    def __init__(self, latent_dim: int = 4, hidden_dim: int = 32, code_activation: str | None = "relu",
                 noise: float = 0.0) -> None:
        super().__init__(latent_dim, hidden_dim, code_activation)
        self.noise = noise


def test_every_constructor_option_is_part_of_the_cache_key(tmp_path, small_mnist, monkeypatch):
    monkeypatch.setitem(MODELS, "noisy", WithNoise)
    quiet, noisy = (train_or_load("noisy", epochs=1, cache_dir=tmp_path, verbose=False, noise=n)[0]
                    for n in (0.0, 0.5))
    assert len(small_mnist) == 2 and noisy.noise == 0.5  # not the model trained with noise=0.0
    names = sorted(p.name for p in tmp_path.glob("*.pt"))
    assert len(names) == 2 and "noise=0.0" in names[0] and "noise=0.5" in names[1]


# ----------------------------------------------------------- a cache that cannot be written


def test_a_cache_folder_that_cannot_be_written_keeps_the_model_and_says_why(tmp_path, small_mnist):
    """A file where the folder should be (as root, a read-only folder would still be
    written): the model is trained and handed back, and a warning names the folder, the
    reason and the fix."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file in the way")
    with pytest.warns(UserWarning) as warned:
        model, history = train_or_load("ae", epochs=1, cache_dir=blocked, verbose=False, **SMALL["ae"])
    message = str(warned[0].message)
    assert f"cannot write to the cache folder {blocked}" in message and "FileExistsError" in message
    assert "not saved" in message and "AELIB_CHECKPOINT_DIR" in message and "for this session only" in message
    assert len(small_mnist) == 1 and len(history["train_loss"]) == 1 and not model.training
    assert blocked.read_text() == "a file in the way"


def test_a_full_disk_keeps_the_trained_model_and_says_it_was_not_saved(tmp_path, small_mnist, monkeypatch):
    def full_disk(obj, f):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(data.torch, "save", full_disk)
    with pytest.warns(UserWarning, match=rf"was not saved: cannot write to the cache folder "
                                         rf"{re.escape(str(tmp_path))} \(OSError: .*No space left"):
        model, history = train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    assert len(history["train_loss"]) == 1 and [p.suffix for p in tmp_path.iterdir()] == [".lock"]


# ---------------------------------------------------------------- several processes at once

TINY = {"latent_dim": 2, "hidden_dim": 8, "epochs": 1, "batch_size": 512}

RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import torch
    import aelib
    from aelib import data

    cache, name = Path(sys.argv[1]), sys.argv[2]
    real_train = data.train

    def slow_train(*args, **kwargs):  # long enough for the other process to ask meanwhile
        time.sleep(2)
        return real_train(*args, **kwargs)

    data.train = slow_train
    data.load_mnist = lambda train=True, root=None: (torch.rand(256 if train else 64, 784),
                                                     torch.zeros(256 if train else 64, dtype=torch.long))
    (cache / f"ready-{name}").touch()
    while not (cache / "go").exists():
        time.sleep(0.05)
    model, history = aelib.train_or_load("ae", cache_dir=cache, latent_dim=2, hidden_dim=8, epochs=1)
    print("final loss", history["train_loss"][-1])
""")


def test_two_processes_asking_for_one_model_both_finish_and_it_is_trained_once(tmp_path):
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
    assert said.count("Epoch 1/1") == 1 and said.count("Loaded cached model") == 1, said
    assert "another process is training" in said
    losses = {line for line in said.splitlines() if line.startswith("final loss")}
    assert len(losses) == 1  # both hold the one trained model
    [path] = tmp_path.glob("*.pt")
    load_checkpoint(path, AutoEncoder(latent_dim=2, hidden_dim=8))


def test_train_or_load_many_trains_the_missing_models_in_worker_processes(tmp_path):
    """Real MNIST in two spawned workers (tiny models, one epoch); the cached model is not
    trained again; everything comes back in the order asked, loaded from the cache."""
    script = textwrap.dedent(f"""
        import aelib
        jobs = [("ae", dict(cache_dir={str(tmp_path)!r}, seed=s, **{TINY!r})) for s in (1, 2, 1, 3)]
        aelib.train_or_load("ae", cache_dir={str(tmp_path)!r}, verbose=False, seed=3, **{TINY!r})
        out = aelib.train_or_load_many(jobs, processes=2)
        print("losses", [round(h["train_loss"][-1], 6) for _, h in out])
        print("types", {{type(m).__name__ for m, _ in out}})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TQDM_DISABLE": "1"})
    assert done.returncode == 0, done.stderr
    assert "Training 2 models, 2 at a time" in done.stdout  # seeds 1 and 2; 3 was cached
    assert done.stdout.count("Loaded cached model") == 4
    losses = eval(done.stdout.split("losses ")[1].splitlines()[0])
    assert losses[0] == losses[2] and len(set(losses)) == 3
    assert "types {'AutoEncoder'}" in done.stdout
    assert len(list(tmp_path.glob("*.pt"))) == 3


@pytest.mark.parametrize("cores, threads, workers", [(2, 1, 2), (8, 4, 2), (64, 4, 4), (1, 1, 1)])
def test_train_or_load_many_uses_the_cores_by_default(monkeypatch, tmp_path, cores, threads, workers):
    """A 2-core laptop trains two missing models at a time (one thread each), never more than 4."""
    import aelib.data

    seen = []

    class Pool:  # records the workers asked for instead of starting processes
        def __init__(self, n, **_):
            seen.append(n)
        def __enter__(self):
            return self
        def __exit__(self, *_):
            return False
        def map(self, fn, todo):
            raise StopTraining

    class StopTraining(Exception):
        pass

    monkeypatch.setattr(aelib.data.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(aelib.data, "default_num_threads", lambda: threads)
    monkeypatch.setattr(aelib.data.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(aelib.data, "ProcessPoolExecutor", Pool)
    jobs = [("ae", dict(epochs=1, cache_dir=tmp_path, seed=s, **SMALL["ae"])) for s in range(6)]
    if workers == 1:
        def fake(kind, **kw):  # keeps train_or_load's signature, which the jobs are bound to
            return kw["seed"]
        fake.__signature__ = inspect.signature(aelib.data.train_or_load)
        monkeypatch.setattr(aelib.data, "train_or_load", fake)
        assert train_or_load_many(jobs) == list(range(6)) and seen == []  # one at a time, in this process
    else:
        with pytest.raises(StopTraining):
            train_or_load_many(jobs)
        assert seen == [workers]


def test_train_or_load_many_in_one_process_is_train_or_load_in_order(tmp_path, small_mnist):
    jobs = [("ae", dict(epochs=1, cache_dir=tmp_path, verbose=False, seed=s, **SMALL["ae"])) for s in (4, 4, 5)]
    out = train_or_load_many(jobs, processes=1)
    assert len(small_mnist) == 2 and [type(m) for m, _ in out] == [AutoEncoder] * 3
    assert same_weights(out[0][0], out[1][0]) and not same_weights(out[0][0], out[2][0])
