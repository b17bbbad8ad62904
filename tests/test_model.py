"""The article's autoencoder: shapes, the code activation, and bad arguments."""

from __future__ import annotations

import pytest
import torch

from aelib import AutoEncoder


@pytest.mark.parametrize("latent_dim", [2, 8, 64])
def test_shapes_for_several_latent_sizes(latent_dim, mnist_test_subset):
    images = mnist_test_subset[0][:16]
    model = AutoEncoder(latent_dim=latent_dim)

    code = model.encode(images)
    assert code.shape == (16, latent_dim)
    # the [N, 1, 28, 28] layout gives the same codes
    assert torch.equal(model.encode(images.reshape(16, 1, 28, 28)), code)

    decoded = model.decode(code)
    assert decoded.shape == (16, 784)
    assert decoded.min() > 0 and decoded.max() < 1  # sigmoid output

    forward_code, reconstruction = model(images)
    assert torch.equal(forward_code, code)
    assert torch.equal(reconstruction, decoded)


def test_layers_match_the_article():
    model = AutoEncoder(latent_dim=8)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    sizes = [(m.in_features, m.out_features) for m in linears]
    assert sizes == [(784, 256), (256, 8), (8, 256), (256, 784)]
    assert isinstance(model.encoder[-1], torch.nn.ReLU)
    assert isinstance(model.decoder[-1], torch.nn.Sigmoid)


def test_hparams_rebuild_the_same_architecture():
    model = AutoEncoder(latent_dim=5, hidden_dim=32, code_activation=None)
    assert model.hparams() == {"latent_dim": 5, "hidden_dim": 32, "code_activation": None}
    twin = AutoEncoder(**model.hparams())
    assert {k: v.shape for k, v in twin.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


def test_relu_code_is_never_negative_and_linear_code_can_be(mnist_test_subset):
    images = mnist_test_subset[0]
    torch.manual_seed(0)
    relu_code = AutoEncoder(latent_dim=8, code_activation="relu").encode(images)
    torch.manual_seed(0)
    linear_code = AutoEncoder(latent_dim=8, code_activation=None).encode(images)
    assert relu_code.min() >= 0
    assert linear_code.min() < 0
    # same weights: the ReLU code is exactly the clipped linear code
    assert torch.equal(relu_code, linear_code.clamp(min=0))


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8", True, 785, None])
def test_bad_latent_dim_raises_value_error(bad):
    with pytest.raises(ValueError, match="latent_dim must be a whole number from 1 to 784"):
        AutoEncoder(latent_dim=bad)


@pytest.mark.parametrize("good", [1, 784])
def test_latent_dim_limits_are_allowed(good):
    assert AutoEncoder(latent_dim=good, hidden_dim=4).latent_dim == good


@pytest.mark.parametrize("bad", [0, -3, 1.5, "256"])
def test_bad_hidden_dim_raises_value_error(bad):
    with pytest.raises(ValueError, match="hidden_dim"):
        AutoEncoder(hidden_dim=bad)


@pytest.mark.parametrize("bad", ["sigmoid", "ReLU", "none", 0])
def test_bad_code_activation_raises_value_error(bad):
    with pytest.raises(ValueError, match="code_activation must be 'relu'"):
        AutoEncoder(code_activation=bad)


@pytest.mark.parametrize("shape", [(4, 7), (4, 9), (8,), (2, 4, 8)])
def test_decode_rejects_wrongly_shaped_codes(shape):
    model = AutoEncoder(latent_dim=8)
    with pytest.raises(ValueError, match=r"\[N, 8\]"):
        model.decode(torch.zeros(shape))


@pytest.mark.parametrize("shape", [(4, 783), (784,), (4, 28, 27)])
def test_encode_rejects_wrongly_shaped_images(shape):
    with pytest.raises(ValueError, match=r"\[N, 784\]"):
        AutoEncoder().encode(torch.zeros(shape))
