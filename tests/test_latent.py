"""aelib.latent on a small real MNIST subset and a briefly trained autoencoder."""

import pytest
import torch

import aelib
from aelib import latent


@pytest.fixture(scope="module")
def mnist_subset():
    images, labels = aelib.load_mnist(train=False)
    return images[:1500], labels[:1500]


@pytest.fixture(scope="module")
def model(mnist_subset):
    """An autoencoder trained for 2 epochs on 1,500 test images (a few seconds)."""
    images, _ = mnist_subset
    aelib.set_seed(0)
    m = aelib.AutoEncoder(latent_dim=6)
    aelib.train(m, images, epochs=2, batch_size=64, seed=0, device="cpu", verbose=False)
    return m


def test_embed_images_matches_encode_and_batches(model, mnist_subset):
    images, _ = mnist_subset
    model.train()  # embed_images must switch to eval and back
    codes = latent.embed_images(model, images, batch_size=97)
    assert model.training
    assert codes.shape == (len(images), 6)
    assert codes.device.type == "cpu" and not codes.requires_grad
    with torch.no_grad():
        expected = model.eval().encode(images)
    torch.testing.assert_close(codes, expected)
    torch.testing.assert_close(latent.embed_images(model, images[:10]), expected[:10])
    assert (codes >= 0).all()  # the article's ReLU code


def test_reconstruction_errors_average_to_the_training_loss(model, mnist_subset):
    images, labels = mnist_subset
    recon = latent.reconstruct(model, images, batch_size=500)
    assert recon.shape == images.shape
    assert 0 < recon.min() and recon.max() < 1
    errors = latent.reconstruction_errors(model, images, batch_size=333)
    assert errors.shape == (len(images),)
    assert errors.mean().item() == pytest.approx(aelib.evaluate(model, images), rel=1e-4)
    torch.testing.assert_close(errors, (recon - images).pow(2).mean(dim=1))

    table = latent.per_digit_error(model, images, labels)
    assert list(table.index) == sorted(labels.unique().tolist())
    assert table["count"].sum() == len(images)
    weighted = (table["count"] * table["mean_error"]).sum() / len(images)
    assert weighted == pytest.approx(errors.mean().item(), rel=1e-4)
    ones = errors[labels == 1].mean().item()
    assert table.loc[1, "mean_error"] == pytest.approx(ones, rel=1e-5)


def test_worst_reconstructions_are_the_largest_errors(model, mnist_subset):
    images, _ = mnist_subset
    errors = latent.reconstruction_errors(model, images)
    idx, worst = latent.worst_reconstructions(model, images, n=5)
    assert len(idx) == 5
    assert torch.all(worst[:-1] >= worst[1:])
    torch.testing.assert_close(worst, errors[idx])
    assert worst[-1] >= errors.sort(descending=True).values[4]
    with pytest.raises(ValueError, match="whole number"):
        latent.worst_reconstructions(model, images, n=0)


def test_dead_dims_finds_a_dimension_killed_by_the_relu(model, mnist_subset):
    images, _ = mnist_subset
    killed = aelib.AutoEncoder(latent_dim=6)
    killed.load_state_dict(model.state_dict())
    with torch.no_grad():
        killed.encoder[2].bias[3] = -1e4  # pre-activation always negative -> ReLU gives 0
    codes = latent.embed_images(killed, images)
    assert (codes[:, 3] == 0).all()
    assert 3 in latent.dead_dims(codes)
    assert 3 not in latent.live_dims(codes)
    stats = latent.latent_stats(codes)
    assert list(stats.index) == list(range(6))
    assert bool(stats.loc[3, "dead"]) and stats.loc[3, "share_positive"] == 0
    assert stats["dead"].sum() == len(latent.dead_dims(codes))
    torch.testing.assert_close(torch.tensor(stats["mean"].values), codes.mean(dim=0))


def test_dead_dims_rules_on_synthetic_codes():
    g = torch.Generator().manual_seed(0)
    codes = torch.rand(1000, 4, generator=g) * 5
    codes[:, 1] = 0.0
    codes[:5, 2] = 0.0
    codes[5:, 2] = 0.0
    codes[:5, 2] = 1.0  # active in 0.5% of the codes: dead by the 1% rule
    codes[:, 3] = torch.where(torch.arange(1000) < 20, 2.0, 0.0)  # active in 2%: alive
    assert latent.dead_dims(codes) == [1, 2]
    assert latent.dead_dims(codes, min_active_share=0.03) == [1, 2, 3]
    assert latent.dead_dims(codes, min_active_share=0.0) == []

    linear = torch.randn(1000, 3, generator=g)  # negative values -> variance rule
    linear[:, 0] = 0.7 + 1e-6 * torch.randn(1000, generator=g)
    assert latent.dead_dims(linear) == [0]
    assert latent.dead_dims(linear, rule="variance") == [0]
    assert latent.dead_dims(linear, rule="relu") == []  # all three are > 0 often enough

    with pytest.raises(ValueError, match="rule"):
        latent.dead_dims(codes, rule="magic")
    with pytest.raises(ValueError, match="share"):
        latent.dead_dims(codes, min_active_share=5)
    with pytest.raises(ValueError, match=r"\[N, k\]"):
        latent.dead_dims(codes[0])


def test_most_active_dims_orders_by_std():
    codes = torch.randn(500, 4, generator=torch.Generator().manual_seed(1))
    codes *= torch.tensor([1.0, 5.0, 0.1, 3.0])
    assert latent.most_active_dims(codes, 2) == [1, 3]
    with pytest.raises(ValueError):
        latent.most_active_dims(codes, 5)


def test_decode_codes_gives_images(model):
    codes = torch.rand(7, 6) * 10
    images = latent.decode_codes(model, codes, batch_size=3)
    assert images.shape == (7, 784)
    with torch.no_grad():
        torch.testing.assert_close(images, model.decode(codes))
    with pytest.raises(ValueError, match="dimensions"):
        latent.decode_codes(model, torch.rand(3, 5))


def test_bad_images_say_what_to_do(model):
    with pytest.raises(ValueError, match="load_mnist"):
        latent.embed_images(model, torch.empty(0, 784))
    with pytest.raises(ValueError, match="same length"):
        latent.per_digit_error(model, torch.rand(4, 784), torch.arange(3))


def test_sweep_latent_sizes_trains_once_then_loads(tmp_path):
    table = latent.sweep_latent_sizes([3, 2, 3], epochs=1, seed=0, device="cpu",
                                      cache_dir=tmp_path)
    assert list(table.index) == [2, 3]
    assert set(table.columns) == {"train_loss", "test_loss", "dead"}
    assert len(list(tmp_path.glob("ae_*.pt"))) == 2
    assert ((table["test_loss"] > 0.01) & (table["test_loss"] < 0.2)).all()
    again = latent.sweep_latent_sizes([2, 3], epochs=1, seed=0, cache_dir=tmp_path)
    assert again.equals(table)
