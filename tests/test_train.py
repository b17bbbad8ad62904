"""The training loop, devices, seeds, threads and the checkpoint cache (real MNIST subsets)."""

from __future__ import annotations

import copy
import importlib
import random
import re
import stat

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import aelib
from aelib import AutoEncoder, CheckpointError
from aelib.train import (
    batched_apply,
    CHECKPOINT_ENV_VAR,
    THREADS_ENV_VAR,
    CorruptCheckpointError,
    checkpoint_dir,
    configure_threads,
    default_num_threads,
    evaluate,
    load_checkpoint,
    pick_device,
    save_checkpoint,
    set_seed,
    train,
    train_or_load,
)

aetrain = importlib.import_module("aelib.train")  # aelib.train is the function train()
EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+): loss=(0\.\d{4})$")


def fresh_model(seed: int = 0, **kwargs) -> AutoEncoder:
    torch.manual_seed(seed)
    return AutoEncoder(**kwargs)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------- training


def test_loss_falls_on_a_subset(mnist_train_subset, mnist_test_subset):
    images, _ = mnist_train_subset
    test_images, _ = mnist_test_subset
    model = fresh_model()
    before = evaluate(model, test_images)
    history = train(model, images, epochs=4, verbose=False)
    losses = history["train_loss"]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert evaluate(model, test_images) < 0.7 * before
    assert not model.training  # handed back in eval mode


def test_history_layout(mnist_train_subset, mnist_test_subset):
    images, _ = mnist_train_subset
    history = train(fresh_model(), images, epochs=2, verbose=False)
    assert history["epoch"] == [1, 2]
    assert len(history["train_loss"]) == 2 and history["test_loss"] == []
    assert len(history["seconds"]) == 2 and all(s > 0 for s in history["seconds"])


def test_train_loss_is_the_mean_over_the_epoch(mnist_train_subset):
    # one epoch, one batch holding every image: the reported loss is the loss of the
    # untrained model on the whole set, computed before the single optimizer step
    images = mnist_train_subset[0][:300]
    model = fresh_model()
    expected = evaluate(model, images)
    history = train(model, images, epochs=1, batch_size=300, verbose=False)
    assert history["train_loss"][0] == pytest.approx(expected, rel=1e-5)


def test_same_seed_gives_identical_history_and_weights(mnist_train_subset):
    images, _ = mnist_train_subset
    first, second = fresh_model(), fresh_model()
    h1 = train(first, images, epochs=2, seed=3, verbose=False)
    h2 = train(second, images, epochs=2, seed=3, verbose=False)
    assert h1["train_loss"] == h2["train_loss"]
    assert same_weights(first, second)


def test_different_seed_gives_a_different_batch_order(mnist_train_subset):
    images, _ = mnist_train_subset
    first = fresh_model()
    second = copy.deepcopy(first)  # the same initial weights: only the seed differs
    h1 = train(first, images, epochs=2, seed=0, verbose=False)
    h2 = train(second, images, epochs=2, seed=1, verbose=False)
    assert h1["train_loss"] != h2["train_loss"]
    assert not same_weights(first, second)


def test_prints_one_article_style_line_per_epoch(mnist_train_subset, capsys):
    images, _ = mnist_train_subset
    history = train(fresh_model(), images[:512], epochs=3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, (line, loss) in enumerate(zip(lines, history["train_loss"]), start=1):
        match = EPOCH_LINE.match(line)
        assert match, line
        assert match.groups() == (str(epoch), "3", f"{loss:.4f}")


def test_quiet_training_prints_nothing(mnist_train_subset, capsys):
    train(fresh_model(), mnist_train_subset[0][:256], epochs=1, verbose=False)
    assert capsys.readouterr().out == ""


def test_test_loss_is_recorded_per_epoch(mnist_train_subset, mnist_test_subset):
    images, _ = mnist_train_subset
    test_images, _ = mnist_test_subset
    model = fresh_model()
    history = train(model, images, epochs=3, test_images=test_images, verbose=False)
    assert len(history["test_loss"]) == 3
    assert history["test_loss"][-1] == pytest.approx(evaluate(model, test_images), rel=1e-6)
    assert history["test_loss"][-1] < history["test_loss"][0]


def test_evaluate_is_the_mean_loss_over_all_batches(mnist_test_subset):
    images = mnist_test_subset[0][:250]
    model = fresh_model()
    with torch.no_grad():
        expected = F.mse_loss(model(images)[1], images).item()
    # 250 images in batches of 100, 100, 50: the last batch must weigh half as much
    assert evaluate(model, images, batch_size=100) == pytest.approx(expected, rel=1e-5)


def test_classifier_mode_uses_cross_entropy(mnist_train_subset, mnist_test_subset):
    images, labels = mnist_train_subset
    test_images, test_labels = mnist_test_subset
    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        expected = F.cross_entropy(classifier(test_images), test_labels).item()
    assert evaluate(classifier, test_images, test_labels) == pytest.approx(expected, rel=1e-5)

    history = train(classifier, images, epochs=5, labels=labels, test_images=test_images,
                    test_labels=test_labels, verbose=False)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["test_loss"][-1] < 0.5 * expected
    device = next(classifier.parameters()).device  # train() used pick_device()
    with torch.no_grad():
        predicted = classifier(test_images.to(device)).argmax(1).cpu()
    accuracy = (predicted == test_labels).float().mean().item()
    assert accuracy > 0.7  # chance is 0.1


@pytest.mark.parametrize("kwargs", [
    {"epochs": 0}, {"epochs": -1}, {"epochs": 1.5}, {"epochs": True}, {"batch_size": 0},
])
def test_bad_counts_raise_value_error(kwargs, mnist_train_subset):
    with pytest.raises(ValueError, match="must be a whole number >= 1"):
        train(fresh_model(), mnist_train_subset[0][:64], verbose=False, **kwargs)


def test_non_flat_or_empty_images_raise_value_error(mnist_train_subset):
    images = mnist_train_subset[0][:64]
    with pytest.raises(ValueError, match=r"flat.*\[N, 784\]"):
        train(fresh_model(), images.reshape(64, 1, 28, 28), epochs=1, verbose=False)
    with pytest.raises(ValueError, match="non-empty"):
        train(fresh_model(), images[:0], epochs=1, verbose=False)
    with pytest.raises(ValueError, match="at least one image"):
        evaluate(fresh_model(), images[:0])


def test_labels_must_match_the_images(mnist_train_subset):
    images, labels = mnist_train_subset
    with pytest.raises(ValueError, match="labels must have one entry per image"):
        train(fresh_model(), images[:64], epochs=1, labels=labels[:63], verbose=False)
    with pytest.raises(ValueError, match="test_labels"):
        train(fresh_model(), images[:64], epochs=1, test_images=images[:10],
              test_labels=labels[:9], verbose=False)


# ------------------------------------------------------------------ device, seed, threads


def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda")


def test_pick_device_on_this_machine():
    if torch.cuda.is_available():
        assert pick_device().type == "cuda"
    elif torch.backends.mps.is_available():
        assert pick_device().type == "mps"
    else:
        assert pick_device() == torch.device("cpu")


def test_pick_device_honours_an_explicit_device(monkeypatch):
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("cpu") == torch.device("cpu")  # explicit beats automatic
    assert pick_device("cuda:1") == torch.device("cuda", 1)


def test_pick_device_rejects_unknown_or_missing_devices(monkeypatch):
    with pytest.raises(ValueError, match="device must be None"):
        pick_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")


def test_training_on_an_explicit_cpu_device(mnist_train_subset):
    model = fresh_model()
    train(model, mnist_train_subset[0][:256], epochs=1, device="cpu", verbose=False)
    assert next(model.parameters()).device == torch.device("cpu")


def test_set_seed_seeds_python_numpy_and_torch():
    set_seed(7)
    first = (random.random(), np.random.rand(), torch.rand(3))
    set_seed(7)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])
    set_seed(8)
    assert random.random() != first[0]


def test_default_num_threads_honours_the_variable(monkeypatch):
    monkeypatch.setenv(THREADS_ENV_VAR, "3")
    assert default_num_threads() == 3
    monkeypatch.delenv(THREADS_ENV_VAR)
    for cores, expected in [(1, 1), (2, 1), (8, 4), (None, 1)]:
        monkeypatch.setattr(aetrain.os, "cpu_count", lambda cores=cores: cores)
        assert default_num_threads() == expected


@pytest.mark.parametrize("garbage", ["two", "0", "-1", "1.5", " 2"])
def test_default_num_threads_rejects_garbage(monkeypatch, garbage):
    monkeypatch.setenv(THREADS_ENV_VAR, garbage)
    with pytest.raises(ValueError, match=THREADS_ENV_VAR):
        default_num_threads()


def test_configure_threads_sets_torch_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert configure_threads(2) == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv(THREADS_ENV_VAR, "1")
        assert configure_threads() == 1 and torch.get_num_threads() == 1
        for bad in (0, -2, 1.5, "2"):
            with pytest.raises(ValueError, match="num_threads"):
                configure_threads(bad)
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, mnist_test_subset):
    images = mnist_test_subset[0]
    model = fresh_model(seed=1, latent_dim=4, hidden_dim=32)
    history = {"epoch": [1], "train_loss": [0.5], "test_loss": [0.4], "seconds": [1.0]}
    path = save_checkpoint(tmp_path / "ckpt.pt", model, {**model.hparams(), "epochs": 1}, history)

    other = fresh_model(seed=2, latent_dim=4, hidden_dim=32)
    assert not torch.equal(other(images)[1], model(images)[1])
    payload = load_checkpoint(path, other)
    assert torch.equal(other(images)[0], model(images)[0])
    assert torch.equal(other(images)[1], model(images)[1])
    assert payload["history"] == history
    assert payload["hparams"] == {**model.hparams(), "epochs": 1}


def test_checkpoint_loads_with_weights_only_and_leaves_no_temp_files(tmp_path):
    model = fresh_model(latent_dim=3, hidden_dim=16)
    path = save_checkpoint(tmp_path / "sub" / "a.pt", model, model.hparams(), {"epoch": [1]})
    payload = torch.load(path, weights_only=True)
    assert payload["kind"] == "AutoEncoder" and payload["hparams"] == model.hparams()
    assert set(payload["state_dict"]) == set(model.state_dict())
    assert [p.name for p in path.parent.iterdir()] == ["a.pt"]
    assert path.stat().st_mode & stat.S_IROTH  # readable like any other file


def test_failed_write_keeps_the_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    model = fresh_model(latent_dim=3, hidden_dim=16)
    path = save_checkpoint(tmp_path / "a.pt", model, model.hparams(), {"epoch": [1]})
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(aetrain.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, fresh_model(seed=5, latent_dim=3, hidden_dim=16),
                        model.hparams(), {"epoch": [2]})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_loading_into_another_latent_size_names_both(tmp_path):
    model = fresh_model(latent_dim=8, hidden_dim=32)
    path = save_checkpoint(tmp_path / "k8.pt", model, model.hparams(), {})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, AutoEncoder(latent_dim=4, hidden_dim=32))
    message = str(info.value)
    assert "'latent_dim': 8" in message and "'latent_dim': 4" in message
    assert not isinstance(info.value, CorruptCheckpointError)


def test_loading_into_another_kind_of_model_fails(tmp_path):
    model = nn.Sequential(nn.Linear(784, 10))
    path = save_checkpoint(tmp_path / "clf.pt", model, {}, {})
    with pytest.raises(CheckpointError, match="holds a Sequential, not a AutoEncoder"):
        load_checkpoint(path, AutoEncoder())


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_or_foreign_files_raise_checkpoint_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content is None:  # a valid torch file that is not an aelib checkpoint
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match="corrupt or not an aelib checkpoint"):
        load_checkpoint(path)


def test_missing_checkpoint_file_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_checkpoint_dir_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(CHECKPOINT_ENV_VAR, str(tmp_path))
    assert checkpoint_dir() == tmp_path
    assert checkpoint_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(CHECKPOINT_ENV_VAR)
    assert checkpoint_dir().name == "checkpoints"


# ------------------------------------------------------------------------ train_or_load

SMALL = {"latent_dim": 4, "hidden_dim": 32, "epochs": 1}


@pytest.fixture
def small_mnist(monkeypatch, mnist_train_subset, mnist_test_subset):
    """train_or_load on the subsets (fast), counting how often it trains."""
    calls = []

    def subset(train=True, root=None):
        return mnist_train_subset if train else mnist_test_subset

    def counting_train(*args, **kwargs):
        calls.append(kwargs)
        return train(*args, **kwargs)

    monkeypatch.setattr(aetrain, "load_mnist", subset)
    monkeypatch.setattr(aetrain, "train", counting_train)
    return calls


def test_train_or_load_trains_once_then_hits_the_cache(tmp_path, small_mnist, capsys,
                                                       mnist_test_subset):
    images = mnist_test_subset[0]
    model, history = train_or_load(**SMALL, cache_dir=tmp_path)
    assert len(small_mnist) == 1
    assert EPOCH_LINE.match(capsys.readouterr().out.strip())
    assert len(history["test_loss"]) == 1 and not model.training
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("ae_latent_dim=4_hidden_dim=32")

    again, cached_history = train_or_load(**SMALL, cache_dir=tmp_path)
    assert len(small_mnist) == 1  # no second training run
    assert capsys.readouterr().out.startswith("Loaded cached")
    assert cached_history == history
    images = images.to(next(model.parameters()).device)
    assert torch.equal(again(images)[1], model(images)[1])


def test_train_or_load_retrain_flag_trains_again(tmp_path, small_mnist):
    train_or_load(**SMALL, cache_dir=tmp_path, verbose=False)
    train_or_load(**SMALL, cache_dir=tmp_path, retrain=True, verbose=False)
    assert len(small_mnist) == 2


def test_corrupt_cache_file_warns_retrains_and_is_replaced(tmp_path, small_mnist):
    train_or_load(**SMALL, cache_dir=tmp_path, verbose=False)
    [path] = tmp_path.iterdir()
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupt.*Retraining"):
        model, _ = train_or_load(**SMALL, cache_dir=tmp_path, verbose=False)
    assert len(small_mnist) == 2
    restored = AutoEncoder(latent_dim=4, hidden_dim=32)
    load_checkpoint(path, restored)
    assert same_weights(model, restored)


def test_renamed_checkpoint_with_other_settings_is_refused(tmp_path, small_mnist):
    # a folder name containing "corrupt" must not turn a mismatch into a silent retrain
    cache = tmp_path / "corrupt-looking-folder"
    train_or_load(**SMALL, cache_dir=cache, verbose=False)
    [one_epoch] = cache.iterdir()
    two_epochs = cache / one_epoch.name.replace("epochs=1", "epochs=2")
    one_epoch.rename(two_epochs)
    with pytest.raises(CheckpointError, match="'epochs': 1.*not.*'epochs': 2"):
        train_or_load(**{**SMALL, "epochs": 2}, cache_dir=cache, verbose=False)
    assert len(small_mnist) == 1  # refused, not retrained

    # a file of another latent size under the requested name is refused too
    other = cache / one_epoch.name.replace("latent_dim=4", "latent_dim=6")
    two_epochs.rename(other)
    with pytest.raises(CheckpointError, match="'latent_dim': 4"):
        train_or_load(**{**SMALL, "latent_dim": 6}, cache_dir=cache, verbose=False)


def test_same_seed_gives_the_same_initial_model_and_history(tmp_path, small_mnist):
    first, h1 = train_or_load(**SMALL, seed=5, cache_dir=tmp_path / "a", verbose=False)
    second, h2 = train_or_load(**SMALL, seed=5, cache_dir=tmp_path / "b", verbose=False)
    assert h1["train_loss"] == h2["train_loss"] and same_weights(first, second)
    third, h3 = train_or_load(**SMALL, seed=6, cache_dir=tmp_path / "c", verbose=False)
    assert h3["train_loss"] != h1["train_loss"]


def test_top_level_exports():
    for name in ("AutoEncoder", "load_mnist", "train", "train_or_load", "pick_device",
                 "evaluate", "save_checkpoint", "load_checkpoint", "CheckpointError"):
        assert hasattr(aelib, name), name


def test_batched_apply_matches_one_big_batch_and_restores_mode(mnist_test_subset):
    images, _ = mnist_test_subset
    torch.manual_seed(0)
    model = AutoEncoder(latent_dim=4).train()
    out = batched_apply(lambda m, x: m.encode(x), model, images, batch_size=100)
    with torch.no_grad():
        expected = model.encode(images)
    assert out.shape == (len(images), 4) and out.device.type == "cpu"
    torch.testing.assert_close(out, expected)
    assert model.training  # the caller's mode comes back
    with pytest.raises(ValueError, match="batch_size"):
        batched_apply(lambda m, x: m.encode(x), model, images, batch_size=0)


def test_shuffled_order_matches_a_shuffling_dataloader():
    from torch.utils.data import DataLoader, TensorDataset

    from aelib.train import shuffled_order

    torch.manual_seed(7)
    loader = DataLoader(TensorDataset(torch.arange(500)), batch_size=64, shuffle=True)
    expected = [torch.cat([b[0] for b in loader]) for _ in range(3)]
    torch.manual_seed(7)
    assert all(torch.equal(shuffled_order(500), e) for e in expected)
    order = shuffled_order(500, torch.Generator().manual_seed(1))
    assert sorted(order.tolist()) == list(range(500))


def test_default_training_reproduces_the_article_style_loop(mnist_train_subset):
    """seed=None: after the same torch.manual_seed, aelib.train sees the batches of a
    plain DataLoader(shuffle=True) loop and gives the same per-epoch losses."""
    from torch.utils.data import DataLoader, TensorDataset

    images = mnist_train_subset[0][:1000]
    torch.manual_seed(3)
    reference_model = AutoEncoder(latent_dim=4)
    ours, other = copy.deepcopy(reference_model), copy.deepcopy(reference_model)
    loader = DataLoader(TensorDataset(images), batch_size=128, shuffle=True)
    optimizer = torch.optim.Adam(reference_model.parameters(), lr=1e-3)
    torch.manual_seed(11)
    expected = []
    for _ in range(2):
        total = 0.0
        for (x,) in loader:
            loss = F.mse_loss(reference_model(x)[1], x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        expected.append(total / len(images))
    torch.manual_seed(11)
    history = aelib.train(ours, images, epochs=2, verbose=False)
    torch.manual_seed(12)  # another global seed: other batches, another curve
    assert aelib.train(other, images, epochs=1, verbose=False)["train_loss"][0] != expected[0]
    assert history["train_loss"] == pytest.approx(expected, rel=1e-6)
