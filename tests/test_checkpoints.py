"""Checkpoints (atomic, loaded with weights_only, clear errors) and the train_or_load cache
for every model kind (tiny cache folders, MNIST patched to small subsets)."""

from __future__ import annotations

import builtins
import re

import pytest
import torch
from torch import nn

from aelib import (VAE, AutoEncoder, CheckpointError, CorruptCheckpointError, DigitClassifier,
                   LinearAutoEncoder, load_checkpoint, save_checkpoint, train_or_load, training)
from aelib.training import CHECKPOINT_ENV_VAR, checkpoint_dir

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
    hparams = {**model.hparams(), "epochs": 1}
    path = save_checkpoint(tmp_path / "ckpt.pt", model, hparams, HISTORY)
    other = fresh(cls, 2, **args)
    assert not same_weights(other, model)
    payload = load_checkpoint(path, other)
    assert same_weights(other, model)
    assert payload["history"] == HISTORY and payload["hparams"] == hparams
    assert payload["kind"] == cls.__name__


def test_a_checkpoint_is_plain_tensors_and_lists_and_world_readable(tmp_path):
    model = fresh(latent_dim=3, hidden_dim=16)
    path = save_checkpoint(tmp_path / "sub" / "a.pt", model, model.hparams(), HISTORY)
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
    torch.save({"format": training.CHECKPOINT_FORMAT, "kind": "AutoEncoder",
                "hparams": model.hparams(), "history": {"x": RunsCodeWhenUnpickled()},
                "state_dict": model.state_dict()}, path)
    with pytest.raises(CorruptCheckpointError, match=r"torch\.load\(weights_only=True\) refuses"):
        load_checkpoint(path, fresh(latent_dim=3, hidden_dim=16))
    assert "UNPICKLED CODE RAN" not in capsys.readouterr().out


def test_a_failed_write_keeps_the_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    model = fresh(latent_dim=3, hidden_dim=16)
    path = save_checkpoint(tmp_path / "a.pt", model, model.hparams(), HISTORY)
    before = path.read_bytes()

    def broken_save(obj, f):
        with open(f, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(training.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, fresh(seed=5, latent_dim=3, hidden_dim=16), model.hparams(), HISTORY)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_other_settings_are_refused_naming_both(tmp_path):
    model = fresh(latent_dim=8, hidden_dim=32)
    path = save_checkpoint(tmp_path / "k8.pt", model, model.hparams(), HISTORY)
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
    with pytest.raises(CheckpointError, match=f"The checkpoint {re.escape(str(path))} holds a VAE, "
                                              f"not a AutoEncoder"):
        load_checkpoint(path, AutoEncoder(latent_dim=8))


def test_weights_that_do_not_fit_are_refused(tmp_path):
    model = fresh(latent_dim=4, hidden_dim=16)
    path = save_checkpoint(tmp_path / "a.pt", nn.Linear(2, 2), model.hparams(), HISTORY)
    payload = torch.load(path, weights_only=True)
    payload["kind"] = "AutoEncoder"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="The weights in .* do not fit the model"):
        load_checkpoint(path, model)


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty or cut short"),
    (b"not a checkpoint at all", "torch.load(weights_only=True) refuses its content"),
    ({"weights": torch.zeros(2)}, "its format field is missing or unknown"),
    ({"format": training.CHECKPOINT_FORMAT, "kind": "AutoEncoder"},
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
    assert checkpoint_dir() == training.project_root() / "checkpoints"


# ---------------------------------------------------------------------- train_or_load

SMALL = {"ae": {"latent_dim": 4, "hidden_dim": 32}, "linear": {"latent_dim": 3},
         "vae": {"latent_dim": 2, "hidden_dim": 32}, "classifier": {"channels": 4, "feature_dim": 16}}


@pytest.fixture
def small_mnist(monkeypatch, mnist_train, mnist_test):
    """train_or_load on 512 training and 256 test images; returns the list of the
    train() calls it makes."""
    calls = []
    real_train = training.train

    def subset(train=True, root=None):
        images, labels = mnist_train if train else mnist_test
        n = 512 if train else 256
        return images[:n], labels[:n]

    def counting_train(*args, **kwargs):
        calls.append(kwargs)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training, "load_mnist", subset)
    monkeypatch.setattr(training, "train", counting_train)
    return calls


@pytest.mark.parametrize("kind, cls", [("ae", AutoEncoder), ("linear", LinearAutoEncoder),
                                       ("vae", VAE), ("classifier", DigitClassifier)])
def test_each_kind_trains_once_then_loads_from_the_cache(tmp_path, small_mnist, capsys, kind, cls,
                                                         mnist_test_subset):
    model, history = train_or_load(kind, epochs=1, cache_dir=tmp_path, **SMALL[kind])
    assert type(model) is cls and model.hparams() == {**model.hparams(), **SMALL[kind]}
    assert len(small_mnist) == 1 and not model.training
    assert re.fullmatch(r"Epoch 1/1: loss=\d+\.\d{4}\n", capsys.readouterr().out)
    assert len(history["test_loss"]) == 1  # scored on the test split after the epoch
    # train() gets the test split's labels (a classifier's loss needs them)
    assert torch.equal(small_mnist[0]["test_labels"], mnist_test_subset[1][:256])
    [path] = tmp_path.iterdir()
    settings = {**model.hparams(), "epochs": 1, "batch_size": 128, "lr": 0.001, "seed": 0}
    assert path.name == kind + "_" + "_".join(f"{k}={v}" for k, v in settings.items()) + ".pt"

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
    assert "seed=6" in next((tmp_path / "c").iterdir()).name


def test_retrain_trains_again_and_replaces_the_file(tmp_path, small_mnist):
    first, _ = train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    torch.manual_seed(123)  # retrain reseeds itself: the same model comes out
    second, _ = train_or_load("ae", epochs=1, cache_dir=tmp_path, retrain=True, verbose=False,
                              **SMALL["ae"])
    assert len(small_mnist) == 2 and same_weights(first, second)


def test_a_corrupt_cache_file_is_reported_retrained_and_replaced(tmp_path, small_mnist):
    train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    [path] = tmp_path.iterdir()
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=r"corrupt or not an aelib checkpoint.* Retraining now and "
                                         r"overwriting it\."):
        model, _ = train_or_load("ae", epochs=1, cache_dir=tmp_path, verbose=False, **SMALL["ae"])
    assert len(small_mnist) == 2
    restored = AutoEncoder(**SMALL["ae"])
    load_checkpoint(path, restored)
    assert same_weights(restored, model)


def test_a_file_with_other_settings_under_the_name_is_refused_not_retrained(tmp_path, small_mnist):
    # a folder name containing "corrupt" must not turn a mismatch into a silent retrain
    cache = tmp_path / "corrupt-looking-folder"
    train_or_load("ae", epochs=1, cache_dir=cache, verbose=False, **SMALL["ae"])
    [one_epoch] = cache.iterdir()
    one_epoch.rename(cache / one_epoch.name.replace("epochs=1", "epochs=2"))
    with pytest.raises(CheckpointError, match="'epochs': 1.*the model has.*'epochs': 2"):
        train_or_load("ae", epochs=2, cache_dir=cache, verbose=False, **SMALL["ae"])
    assert len(small_mnist) == 1


def test_unknown_kind_lists_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"unknown model kind 'cnn'; choose one of "
                                         r"\['ae', 'classifier', 'linear', 'vae'\]"):
        train_or_load("cnn", cache_dir=tmp_path)
