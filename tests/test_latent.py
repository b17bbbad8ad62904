"""aelib.latent: codes, reconstructions, dead dimensions, PCA, and the code-size sweep,
on real MNIST subsets and the small trained autoencoder of conftest.py."""

from __future__ import annotations

import pytest
import torch
from conftest import raises_naming

import aelib
from aelib import cache, latent


@pytest.fixture(scope="module")
def images(mnist_test) -> torch.Tensor:
    return mnist_test[0][:1500]


@pytest.fixture(scope="module")
def labels(mnist_test) -> torch.Tensor:
    return mnist_test[1][:1500]


# ----------------------------------------------------------------- codes and images


def test_embed_decode_and_reconstruct_are_the_models_maps(trained_ae, images):
    trained_ae.train()  # each function must score in eval mode and switch back
    try:
        codes = latent.embed_images(trained_ae, images)
        decoded = latent.decode_codes(trained_ae, codes.double())  # any float type is accepted
        recon = latent.reconstruct(trained_ae, images)
        assert trained_ae.training
    finally:
        trained_ae.eval()
    assert codes.shape == (1500, 6) and codes.device.type == "cpu" and not codes.requires_grad
    assert (codes >= 0).all()  # the article's ReLU code
    with torch.no_grad():
        torch.testing.assert_close(codes, trained_ae.encode(images))
        torch.testing.assert_close(decoded, trained_ae.decode(codes))
    torch.testing.assert_close(recon, decoded)
    assert recon.shape == (1500, 784)


def test_a_vae_is_embedded_and_reconstructed_through_its_means():
    torch.manual_seed(0)
    vae = aelib.VAE(latent_dim=3, hidden_dim=16).train()
    x = torch.rand(20, 784)
    with torch.no_grad():
        means = vae.encode_stats(x)[0]
        torch.testing.assert_close(latent.embed_images(vae, x), means)
        torch.testing.assert_close(latent.reconstruct(vae, x), vae.decode(means))
    assert vae.training


def test_reconstruction_errors_are_each_images_own_loss(trained_ae, images):
    errors = latent.reconstruction_errors(trained_ae, images)
    assert errors.shape == (1500,)
    for i in (0, 7, 1499):  # the model's loss on that image alone
        assert errors[i].item() == pytest.approx(aelib.evaluate(trained_ae, images[i:i + 1]), rel=1e-5)
    assert errors.mean().item() == pytest.approx(aelib.evaluate(trained_ae, images), rel=1e-5)
    # images in the [N, 1, 28, 28] layout give the same errors
    torch.testing.assert_close(latent.reconstruction_errors(trained_ae, images.reshape(-1, 1, 28, 28)),
                               errors)


def test_per_digit_error_gives_each_digits_count_mean_and_spread(trained_ae, images, labels):
    errors = latent.reconstruction_errors(trained_ae, images)
    table = latent.per_digit_error(trained_ae, images, labels)
    assert table.index.name == "digit" and list(table.index) == list(range(10))
    assert list(table.columns) == ["count", "mean_error", "std_error"]
    assert table["count"].tolist() == torch.bincount(labels).tolist()
    for digit in (1, 8):
        chosen = errors[labels == digit]
        assert table.loc[digit, "mean_error"] == pytest.approx(chosen.mean().item(), rel=1e-5)
        assert table.loc[digit, "std_error"] == pytest.approx(chosen.std().item(), rel=1e-4)
    with raises_naming(ValueError, 1500, 37):
        latent.per_digit_error(trained_ae, images, labels[:37])


# ---------------------------------------------------------------------- dead dimensions


def test_relu_rule_on_synthetic_codes():
    codes = torch.rand(1000, 4, generator=torch.Generator().manual_seed(0)) * 5
    codes[:, 1] = 0.0                                        # never active: dead
    codes[:, 2] = torch.where(torch.arange(1000) < 5, 1.0, 0.0)   # active in 0.5%: dead
    codes[:, 3] = torch.where(torch.arange(1000) < 20, 2.0, 0.0)  # active in 2%: alive
    assert latent.dead_dims(codes) == [1, 2]
    assert latent.live_dims(codes) == [0, 3]
    assert latent.dead_dims(codes, min_active_share=0.03) == [1, 2, 3]
    assert latent.live_dims(codes, min_active_share=0.03) == [0]
    assert latent.dead_dims(codes, min_active_share=0.0) == []
    # a constant but positive dimension is alive by the ReLU rule (it is > 0 everywhere)
    codes[:, 0] = 3.0
    assert latent.dead_dims(codes) == [1, 2]


def test_variance_rule_for_codes_that_can_be_negative():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(1000, 3, generator=g)
    codes[:, 0] = 0.7 + 1e-6 * torch.randn(1000, generator=g)  # (nearly) constant: dead
    assert latent.dead_dims(codes) == [0]  # auto: negative values -> the variance rule
    assert latent.dead_dims(codes, rule="variance") == [0]
    assert latent.dead_dims(codes, rule="relu") == []  # each is > 0 in far more than 1%
    assert latent.dead_dims(codes, rule="variance", rel_std=1e-7) == []
    # the auto rule on non-negative codes is the ReLU rule, not the variance rule
    positive = codes.abs()
    positive[:, 1] = torch.where(torch.arange(1000) < 3, 50.0, 0.0)  # large std, rarely active
    assert latent.dead_dims(positive) == [1]
    assert latent.dead_dims(positive, rule="variance") == [0]


def test_dead_dims_finds_a_dimension_killed_by_the_relu(trained_ae, images):
    killed = aelib.AutoEncoder(latent_dim=6)
    killed.load_state_dict(trained_ae.state_dict())
    with torch.no_grad():
        killed.encoder[2].bias[3] = -1e4  # pre-activation always negative: the code is 0
    codes = latent.embed_images(killed, images)
    assert 3 in latent.dead_dims(codes) and 3 not in latent.live_dims(codes)


@pytest.mark.parametrize("kwargs, named", [
    ({"rule": "magic"}, ("rule", "'magic'", "'auto'", "'relu'", "'variance'")),
    ({"min_active_share": 5}, ("min_active_share", "5")),
])
def test_dead_dims_refuses_a_bad_option_naming_it_and_the_choices(kwargs, named):
    with raises_naming(ValueError, *named):
        latent.dead_dims(torch.rand(10, 3), **kwargs)


@pytest.mark.parametrize("bad", [torch.rand(5), torch.rand(1, 4), [[1.0, 2.0], [3.0, 4.0]]])
def test_dead_dims_needs_a_tensor_of_codes_and_says_how_to_get_one(bad):
    with raises_naming(ValueError, "codes", "embed_images(model, images)"):
        latent.dead_dims(bad)


def test_latent_stats_one_row_per_dimension():
    codes = torch.tensor([[0.0, 1.0, 0.0],
                          [0.0, 3.0, 0.0],
                          [0.0, 5.0, 2.0],
                          [0.0, 7.0, 6.0]])
    stats = latent.latent_stats(codes)
    assert stats.index.name == "dim" and list(stats.index) == [0, 1, 2]
    assert list(stats.columns) == ["mean", "std", "share_positive", "min", "max", "dead"]
    assert stats["mean"].tolist() == [0.0, 4.0, 2.0]
    assert stats["std"].tolist() == pytest.approx([0.0, (20 / 3) ** 0.5, 8 ** 0.5])  # the sample std (n - 1)
    assert stats["share_positive"].tolist() == [0.0, 1.0, 0.5]
    assert stats["min"].tolist() == [0.0, 1.0, 0.0] and stats["max"].tolist() == [0.0, 7.0, 6.0]
    assert stats["dead"].tolist() == [True, False, False]
    # options reach the dead-dimension rule: active in half the codes is dead when 75% are asked for
    assert latent.latent_stats(codes, min_active_share=0.75)["dead"].tolist() == [True, False, True]


def test_most_active_dims_orders_by_spread():
    codes = torch.randn(500, 4, generator=torch.Generator().manual_seed(1))
    codes = codes * torch.tensor([1.0, 5.0, 0.1, 3.0]) + torch.tensor([100.0, 0.0, 50.0, 0.0])
    assert latent.most_active_dims(codes, 2) == [1, 3]  # by spread, not by size
    assert latent.most_active_dims(codes, 4) == [1, 3, 0, 2]
    with raises_naming(ValueError, "n", "4", "5"):  # no more dimensions than the codes have
        latent.most_active_dims(codes, 5)


# ------------------------------------------------------------------------------- PCA


def test_pca_reconstruct_is_sklearns_projection(mnist_train_subset, images):
    train_images = mnist_train_subset[0]
    pca = latent.fit_pca(train_images, 12)
    assert pca.n_components_ == 12
    expected = pca.inverse_transform(pca.transform(images.numpy()))
    torch.testing.assert_close(latent.pca_reconstruct(pca, images, 12),
                               torch.as_tensor(expected, dtype=torch.float32), atol=1e-5, rtol=0)
    # the first 5 of the 12 components: the projection of a PCA fitted with 5
    five = latent.fit_pca(train_images, 5)
    expected = five.inverse_transform(five.transform(images.numpy()))
    torch.testing.assert_close(latent.pca_reconstruct(pca, images, 5),
                               torch.as_tensor(expected, dtype=torch.float32), atol=1e-3, rtol=0)
    with raises_naming(ValueError, "k", "12", "13"):  # no more components than were fitted
        latent.pca_reconstruct(pca, images, 13)
    with raises_naming(ValueError, "n_components", "784", "785"):  # no more than the pixels
        latent.fit_pca(train_images, 785)


def test_a_linear_autoencoder_cannot_beat_pca_by_much(mnist_train_subset):
    """PCA's k components give the smallest squared error of any k-number linear code on
    the images it was fitted to; a trained linear autoencoder can only approach it."""
    train_images = mnist_train_subset[0]
    k = 8
    pca_error = (latent.pca_reconstruct(latent.fit_pca(train_images, k), train_images, k)
                 - train_images).pow(2).mean().item()
    torch.manual_seed(0)
    model = aelib.LinearAutoEncoder(latent_dim=k)
    aelib.train(model, train_images, epochs=20, lr=1e-2, verbose=False)
    linear_error = aelib.evaluate(model, train_images)
    assert pca_error * 0.99 < linear_error < 1.3 * pca_error  # close, never clearly better
    # and PCA with 8 components beats PCA with 4: the projection uses the components asked for
    four = latent.fit_pca(train_images, 4)
    assert (latent.pca_reconstruct(four, train_images, 4) - train_images).pow(2).mean() > pca_error


# ------------------------------------------------------------------- the code-size sweep


def test_sweep_latent_sizes_trains_each_size_once(small_mnist, monkeypatch, tmp_path, mnist_test):
    monkeypatch.setenv(cache.CHECKPOINT_ENV_VAR, str(tmp_path))
    table = latent.sweep_latent_sizes([3, 2, 3], epochs=1)
    trained = [call["model"].latent_dim for call in small_mnist]
    assert trained == [2, 3]  # sorted, each size once
    assert table.index.name == "latent_dim" and list(table.index) == [2, 3]
    assert list(table.columns) == ["train_loss", "test_loss", "dead"]
    test_images = mnist_test[0][:256]
    for k in (2, 3):
        model, history = aelib.train_or_load("ae", epochs=1, latent_dim=k, verbose=False)
        assert table.loc[k, "train_loss"] == history["train_loss"][-1]
        assert table.loc[k, "test_loss"] == history["test_loss"][-1]
        assert table.loc[k, "dead"] == len(latent.dead_dims(latent.embed_images(model, test_images)))
    assert len(small_mnist) == 2  # the models above came from the cache
    again = latent.sweep_latent_sizes([2, 3], epochs=1)
    assert again.equals(table) and len(small_mnist) == 2


@pytest.mark.parametrize("sizes, named", [([], ("sizes",)), ([4, -1], ("code size", "-1"))])
def test_sweep_latent_sizes_refuses_no_sizes_or_a_bad_one(sizes, named):
    with raises_naming(ValueError, *named):
        latent.sweep_latent_sizes(sizes)
