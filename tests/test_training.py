"""aelib.training: the loop (every model kind, the DataLoader promise, the history, side
computations off the training stream), evaluate, batched_apply, devices, seeds and threads.
Real MNIST subsets."""

from __future__ import annotations

import importlib
import importlib.util
import random
import re
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, raises_naming, seeded
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import aelib
from aelib import VAE, AutoEncoder, DigitClassifier, LinearAutoEncoder, training
from aelib.training import (THREADS_ENV_VAR, batched_apply, configure_threads, default_num_threads, evaluate,
                            pick_device, set_seed, train)

EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+): loss=(\d\.\d{4})$")


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- training every model


@pytest.mark.parametrize("cls, args, lr", [
    (AutoEncoder, {"latent_dim": 8}, 1e-3),
    (AutoEncoder, {"latent_dim": 8, "code_activation": None}, 1e-3),
    (LinearAutoEncoder, {"latent_dim": 8}, 3e-3),
    (VAE, {"latent_dim": 8}, 1e-3),
    (DigitClassifier, {}, 3e-3),
])
def test_every_model_kind_learns_through_its_own_loss(cls, args, lr, mnist_train_subset,
                                                      mnist_test_subset):
    images, labels = mnist_train_subset
    test_images, test_labels = mnist_test_subset
    if cls is not DigitClassifier:
        labels = test_labels = None
    else:  # the CNN is the slowest model: fewer images, fewer epochs
        images, labels = images[:1024], labels[:1024]
    torch.manual_seed(0)
    model = cls(**args)
    before = evaluate(model, test_images, test_labels)
    history = train(model, images, labels, epochs=2 if labels is not None else 3, lr=lr,
                    test_images=test_images, test_labels=test_labels, verbose=False)
    losses = history["train_loss"]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    # held-out loss at most 60% of the untrained model's (about 30-45% here)
    assert history["test_loss"][-1] < 0.6 * before
    assert not model.training  # handed back in eval mode


def test_a_model_with_a_new_loss_needs_no_change_in_the_loop(mnist_train_subset):
    """The loop calls model.loss(x, y) and nothing else that knows the model's kind."""

    class MeanPixel(nn.Module):  # predicts each image's mean brightness
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(784, 1)

        def loss(self, x, y=None):
            return F.mse_loss(self.net(x).squeeze(1), x.mean(dim=1))

    torch.manual_seed(0)
    model = MeanPixel()
    history = train(model, mnist_train_subset[0], epochs=3, verbose=False)
    assert history["train_loss"][-1] < 0.3 * history["train_loss"][0]


# ------------------------------------------------------------- the DataLoader promise


def dataloader_epoch_losses(model, images, epochs):
    """The loop a reader writes: bench/bench_train.py's plain_loop on these images."""
    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "bench" / "bench_train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.plain_loop(model, epochs, torch.device("cpu"), dataset=TensorDataset(images, torch.zeros(len(images))))[0]


def test_train_gives_the_dataloader_loops_losses_bit_for_bit(mnist_train_subset, same_weights):
    images = mnist_train_subset[0][:1000]  # 8 batches, the last one of 104 images
    torch.manual_seed(3)
    reference = AutoEncoder(latent_dim=4)
    expected = dataloader_epoch_losses(reference, images, epochs=2)

    torch.manual_seed(3)
    model = AutoEncoder(latent_dim=4)
    history = train(model, images, epochs=2, device="cpu", verbose=False)
    assert history["train_loss"] == expected  # exactly equal, not approximately
    assert same_weights(model, reference)

    # the control: another seed gives other batches and another curve
    torch.manual_seed(3)
    other = AutoEncoder(latent_dim=4)
    torch.manual_seed(4)
    assert train(other, images, epochs=1, device="cpu", verbose=False)["train_loss"][0] != expected[0]


def test_scoring_test_images_draws_nothing_from_the_training_stream(mnist_train_subset, mnist_test_subset,
                                                                   same_weights):
    """A VAE's loss draws random noise; scoring the test images after each epoch must not
    shift the next epoch's batch order, so the run is the same with or without them."""
    images, test_images = mnist_train_subset[0][:512], mnist_test_subset[0][:64]
    runs = []
    for test in (None, test_images):
        torch.manual_seed(0)
        model = VAE(latent_dim=2, hidden_dim=16)
        runs.append((model, train(model, images, epochs=3, test_images=test, verbose=False)))
    (plain, h1), (scored, h2) = runs
    assert h1["train_loss"] == h2["train_loss"] and same_weights(plain, scored)
    assert len(h2["test_loss"]) == 3


# --------------------------------------------------------------------- the history


def test_train_loss_is_the_size_weighted_mean_over_the_epochs_batches(mnist_train_subset):
    # one epoch of one batch holding every image: the reported loss is the untrained
    # model's loss on the whole set, computed before the only optimizer step
    images = mnist_train_subset[0][:300]
    model = seeded()
    expected = evaluate(model, images)
    assert train(model, images, epochs=1, batch_size=300, verbose=False)["train_loss"][0] == \
        pytest.approx(expected, rel=1e-6)

    # lr=0 leaves the model as it is, so the epoch's loss must be the mean over all
    # images; batches of 200 and 100 (half of the images blank): a plain mean of the two
    # batch losses would weigh the last batch double
    images = torch.cat([mnist_train_subset[0][:150], torch.zeros(150, 784)])
    model = seeded()
    torch.manual_seed(0)
    order = next(iter(DataLoader(range(300), batch_size=300, shuffle=True)))  # the order train() draws
    with torch.no_grad():
        first, second = (model.loss(images[order[i:i + 200]]).item() for i in (0, 200))
    torch.manual_seed(0)
    got = train(model, images, epochs=1, batch_size=200, lr=0.0, verbose=False)["train_loss"][0]
    assert got == pytest.approx(evaluate(model, images), rel=1e-6)
    assert got == pytest.approx((200 * first + 100 * second) / 300, rel=1e-6)
    assert abs((first + second) / 2 - got) > 1e-4  # the two means differ enough to tell


def test_history_seconds_time_each_epochs_training_but_not_its_evaluation(
        monkeypatch, mnist_train_subset, mnist_test_subset):
    """A fake clock that only moves when a batch is scored: each epoch's seconds must be
    the ticks of its own training batches, without the test-set evaluation after it."""
    clock = {"now": 100.0}
    monkeypatch.setattr(training, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))

    class Ticking(AutoEncoder):
        def loss(self, x, y=None):
            clock["now"] += 1.0 if self.training else 1000.0
            return super().loss(x, y)

    torch.manual_seed(0)
    model = Ticking(latent_dim=4, hidden_dim=16)
    history = train(model, mnist_train_subset[0][:500], epochs=3, batch_size=128,
                    test_images=mnist_test_subset[0][:100], verbose=False)
    assert history["seconds"] == [4.0, 4.0, 4.0]  # 4 batches of 500 images per epoch
    assert history["epoch"] == [1, 2, 3] and len(history["test_loss"]) == 3


def test_history_without_test_images_has_no_test_losses(mnist_train_subset):
    history = train(seeded(), mnist_train_subset[0][:256], epochs=2, verbose=False)
    assert set(history) == {"epoch", "train_loss", "test_loss", "seconds"}
    assert history["epoch"] == [1, 2] and history["test_loss"] == []
    assert len(history["train_loss"]) == len(history["seconds"]) == 2


def test_test_loss_is_the_models_loss_after_each_epoch(mnist_train_subset, mnist_test_subset):
    model = seeded()
    test_images = mnist_test_subset[0]
    history = train(model, mnist_train_subset[0], epochs=2, test_images=test_images, verbose=False)
    assert history["test_loss"][-1] == pytest.approx(evaluate(model, test_images), rel=1e-6)
    assert history["test_loss"][1] < history["test_loss"][0]


def test_prints_one_article_style_line_per_epoch(mnist_train_subset, capsys):
    history = train(seeded(), mnist_train_subset[0][:512], epochs=3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, (line, loss) in enumerate(zip(lines, history["train_loss"]), start=1):
        match = EPOCH_LINE.match(line)
        assert match, line
        assert match.groups() == (str(epoch), "3", f"{loss:.4f}")


def test_quiet_training_prints_nothing(mnist_train_subset, capsys):
    train(seeded(), mnist_train_subset[0][:256], epochs=1, verbose=False)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize("name", ["epochs", "batch_size"])
def test_the_counts_go_through_the_whole_number_check(name, mnist_train_subset):
    with raises_naming(ValueError, name, "1.5"):
        train(seeded(), mnist_train_subset[0][:64], verbose=False, **{name: 1.5})


def test_non_flat_or_empty_images_are_refused_naming_the_shape_and_the_fix(mnist_train_subset):
    images = mnist_train_subset[0][:64]
    with raises_naming(ValueError, (64, 1, 28, 28), "reshape"):
        train(seeded(), images.reshape(64, 1, 28, 28), epochs=1, verbose=False)
    with raises_naming(ValueError, (0, 784)):
        train(seeded(), images[:0], epochs=1, verbose=False)


@pytest.mark.parametrize("n_labels, n_test_images, n_test_labels, named", [
    (63, None, None, ("labels", 63, 64)), (64, 10, 9, ("test_labels", 9, 10)), (64, None, 9, ("test_labels", 9, 0)),
])
def test_labels_must_match_their_images_and_the_error_gives_both_counts(mnist_train_subset, n_labels, n_test_images,
                                                                       n_test_labels, named):
    images, labels = mnist_train_subset
    test_images = None if n_test_images is None else images[:n_test_images]
    test_labels = None if n_test_labels is None else labels[:n_test_labels]
    with raises_naming(ValueError, *named):
        train(seeded(), images[:64], labels[:n_labels], epochs=1, test_images=test_images, test_labels=test_labels,
              verbose=False)


# -------------------------------------------------------------- evaluate, batched_apply


def test_evaluate_weighs_every_image_equally_across_batches(mnist_test):
    # 2,500 images are scored in batches of 2,048 and 452; the last 452 are blank, so a
    # plain mean of the two batch losses would be far from the mean over the images
    images = torch.cat([mnist_test[0][:2048], torch.zeros(452, 784)])
    model = seeded()
    with torch.no_grad():
        expected = F.mse_loss(model(images)[1], images).item()
        unweighted = (F.mse_loss(model(images[:2048])[1], images[:2048]).item()
                      + F.mse_loss(model(images[2048:])[1], images[2048:]).item()) / 2
    assert evaluate(model, images) == pytest.approx(expected, rel=1e-5)
    assert abs(unweighted - expected) > 1e-3  # far more than the tolerance above


def test_evaluate_scores_a_classifier_by_cross_entropy_on_its_labels(small_classifier, mnist_test_subset):
    images, labels = mnist_test_subset
    with torch.no_grad():
        expected = F.cross_entropy(small_classifier(images), labels).item()
    assert evaluate(small_classifier, images, labels) == pytest.approx(expected, rel=1e-5)


def test_batched_apply_runs_in_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    clf = DigitClassifier(dropout=0.5).train()  # dropout makes train-mode outputs random
    x = torch.rand(37, 784)
    out = batched_apply(lambda m, b: m(b), clf, x, batch_size=8)
    assert clf.training  # the caller's mode comes back
    with torch.no_grad():
        expected = clf.eval()(x)
    assert out.shape == (37, 10) and out.device.type == "cpu" and not out.requires_grad
    torch.testing.assert_close(out, expected)


def test_batched_apply_passes_matching_batches_of_several_tensors():
    a, b = torch.arange(10.0)[:, None], torch.arange(100.0, 110.0)[:, None]
    sizes = []

    def fn(m, x, y):
        sizes.append(len(x))
        return x + y

    out = batched_apply(fn, nn.Linear(1, 1), a, b, batch_size=4)
    assert sizes == [4, 4, 2]
    assert torch.equal(out, a + b)


def test_batched_apply_refuses_a_bad_batch_size_and_nothing_to_work_on():
    model = nn.Linear(784, 2)
    with raises_naming(ValueError, "batch_size", "-2"):
        batched_apply(lambda m, x: m(x), model, torch.rand(3, 784), batch_size=-2)
    with pytest.raises(ValueError):
        batched_apply(lambda m, x: m(x), model, torch.rand(0, 784))


# ----------------------------------------------------------------------------- devices


@pytest.fixture
def fake_accelerators(monkeypatch):
    """Set which accelerators torch claims to have: ``fake_accelerators(cuda, mps)``."""
    def set_(cuda: bool, mps: bool):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    return set_


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_pick_device_prefers_cuda_then_mps_then_cpu(fake_accelerators, cuda, mps, expected):
    fake_accelerators(cuda, mps)
    assert pick_device() == torch.device(expected)


def test_pick_device_honours_an_explicit_device(fake_accelerators):
    fake_accelerators(cuda=True, mps=True)
    assert pick_device("cpu") == torch.device("cpu")  # explicit beats automatic
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    assert pick_device("cuda:1") == torch.device("cuda", 1)
    assert pick_device("mps") == torch.device("mps")


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps"])
def test_pick_device_refuses_a_device_torch_cannot_use(fake_accelerators, device):
    fake_accelerators(cuda=False, mps=False)
    with raises_naming(ValueError, repr(device), "'cpu'"):
        pick_device(device)


@pytest.mark.parametrize("bad", ["gpu", 3.5, "cuda:x"])
def test_pick_device_rejects_unknown_devices(bad):
    with raises_naming(ValueError, repr(bad)):
        pick_device(bad)


def test_training_on_an_explicit_device_never_uses_the_automatic_choice(
        monkeypatch, mnist_train_subset):
    """As if the automatic choice were a GPU this machine lacks: train(device="cpu") and
    what it calls (evaluation, batched_apply) must work from the explicit device alone."""
    real_pick_device = training.pick_device

    def pick_device_without_automatic(device=None):
        if device is None:
            raise AssertionError("the automatic device choice was used")
        return real_pick_device(device)

    monkeypatch.setattr(training, "pick_device", pick_device_without_automatic)
    model = seeded(latent_dim=4, hidden_dim=16)
    images = mnist_train_subset[0][:256]
    history = train(model, images, epochs=1, device="cpu", test_images=images[:64], verbose=False)
    assert next(model.parameters()).device == torch.device("cpu") and len(history["test_loss"]) == 1
    assert batched_apply(lambda m, x: m.encode(x), model, images).shape == (256, 4)


# ------------------------------------------------------------------- seeds and threads


def test_set_seed_seeds_python_numpy_and_torch():
    set_seed(7)
    first = (random.random(), np.random.rand(), torch.rand(3))
    set_seed(7)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])
    set_seed(8)
    third = (random.random(), np.random.rand(), torch.rand(3))
    assert third[0] != first[0] and third[1] != first[1] and not torch.equal(third[2], first[2])


def test_default_threads_follow_the_cpus_this_process_may_use_from_1_to_4(monkeypatch):
    """On a hub, a kernel with a one-CPU quota on a 64-core host uses one thread, not four."""
    monkeypatch.delenv(THREADS_ENV_VAR, raising=False)
    threads = []
    for cpus in (1, 2, 4, 8, 64):
        monkeypatch.setattr(training, "cpu_count", lambda: cpus)
        threads.append(default_num_threads())
    assert threads[0] == 1 and max(threads) == 4 and threads == sorted(threads)  # never more for fewer CPUs
    assert threads[2] < 4  # not every CPU of a small machine


def test_usable_cpus_come_from_joblib_not_os_cpu_count(monkeypatch):
    monkeypatch.delenv(THREADS_ENV_VAR, raising=False)
    monkeypatch.setattr(training.os, "cpu_count", lambda: 64)  # the host's cores
    monkeypatch.setattr(training, "cpu_count", lambda: 1)  # the kernel's quota
    assert default_num_threads() == 1


@pytest.mark.parametrize("value", ["1", "3", "16"])
def test_the_threads_variable_wins_over_the_default_and_its_cap(monkeypatch, value):
    monkeypatch.setattr(training, "cpu_count", lambda: 2)
    monkeypatch.setenv(THREADS_ENV_VAR, value)
    assert default_num_threads() == int(value)


@pytest.mark.parametrize("garbage", ["abc", "²", "0", "-1", "1.5", "2 threads"])
def test_a_bad_threads_variable_is_an_error_naming_it_and_the_value(monkeypatch, garbage):
    monkeypatch.setenv(THREADS_ENV_VAR, garbage)
    with raises_naming(ValueError, THREADS_ENV_VAR, repr(garbage)):
        default_num_threads()


def test_configure_threads_sets_torchs_threads(monkeypatch, keep_threads):
    torch.set_num_threads(1)
    assert configure_threads(2) == 2 and torch.get_num_threads() == 2
    monkeypatch.setenv(THREADS_ENV_VAR, "3")
    assert configure_threads() == 3 and torch.get_num_threads() == 3
    with raises_naming(ValueError, "num_threads", "-3"):
        configure_threads(-3)


def test_importing_aelib_sets_the_default_threads(monkeypatch, keep_threads):
    monkeypatch.setenv(THREADS_ENV_VAR, "3")
    torch.set_num_threads(1)
    importlib.reload(aelib)  # runs the package's __init__ again; the modules stay as they are
    assert torch.get_num_threads() == 3
