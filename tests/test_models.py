"""aelib.models: shapes, the layers, each model's .loss against a hand computation, the
VAE's sampling, model_args, and that bad arguments are refused naming them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import raises_naming
from torch import nn

from aelib import VAE, AutoEncoder, DigitClassifier, LinearAutoEncoder
from aelib.models import model_args

AUTOENCODERS = [AutoEncoder, LinearAutoEncoder, VAE]


def zero_(layer: nn.Linear, bias: float = 0.0) -> nn.Linear:
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(bias)
    return layer


# ------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("cls", AUTOENCODERS)
@pytest.mark.parametrize("latent_dim", [2, 8, 64])
def test_autoencoders_map_images_to_k_numbers_and_back(cls, latent_dim, mnist_test_subset):
    torch.manual_seed(0)
    model = cls(latent_dim=latent_dim).eval()
    images = mnist_test_subset[0][:16]
    code = model.encode(images)
    assert code.shape == (16, latent_dim)
    assert torch.equal(model.encode(images.reshape(16, 1, 28, 28)), code)  # both layouts
    decoded = model.decode(code)
    assert decoded.shape == (16, 784)
    forward_code, reconstruction = model(images)
    assert torch.equal(forward_code, code) and torch.equal(reconstruction, decoded)


def test_article_layers_and_the_code_activation(mnist_test_subset):
    model = AutoEncoder(latent_dim=8)
    sizes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert sizes == [(784, 256), (256, 8), (8, 256), (256, 784)]
    assert isinstance(model.encoder[-1], nn.ReLU) and isinstance(model.decoder[-1], nn.Sigmoid)
    # same weights: the ReLU code is exactly the linear code clipped at 0
    images = mnist_test_subset[0]
    torch.manual_seed(0)
    relu_code = AutoEncoder(latent_dim=8).encode(images)
    torch.manual_seed(0)
    linear_code = AutoEncoder(latent_dim=8, code_activation=None).encode(images)
    assert linear_code.min() < 0
    assert torch.equal(relu_code, linear_code.clamp(min=0))


def test_linear_autoencoder_has_no_activation_anywhere():
    model = LinearAutoEncoder(latent_dim=3)
    assert [type(m) for m in model.modules()][1:] == [nn.Linear, nn.Linear]
    x = torch.randn(5, 784)
    with torch.no_grad():
        expected = model.decoder(model.encoder(x))
        # affine: scaling the input around the origin moves the output along a line
        assert torch.allclose(model(x)[1], expected)
        assert torch.allclose(model(2 * x)[1] - model(x)[1], model(x)[1] - model(0 * x)[1], atol=1e-4)


def test_vae_layers_and_encode_stats():
    torch.manual_seed(0)
    model = VAE(latent_dim=5, hidden_dim=32)
    assert model.encoder[-1].out_features == 10  # a mean and a log-variance per dimension
    x = torch.rand(4, 784)
    mean, log_var = model.encode_stats(x)
    raw = model.encoder(x)
    assert torch.equal(mean, raw[:, :5]) and torch.equal(log_var, raw[:, 5:])
    assert torch.equal(model.encode(x), mean)


def test_classifier_shapes_and_features():
    torch.manual_seed(0)
    clf = DigitClassifier().eval()
    flat = torch.rand(5, 784)
    assert clf(flat).shape == (5, 10)
    assert torch.equal(clf(flat), clf(flat.reshape(5, 1, 28, 28)))
    features = clf.features(flat)
    assert features.shape == (5, 128) and (features >= 0).all()  # after a ReLU
    assert torch.allclose(clf.head[1](features), clf(flat), atol=1e-6)  # logits: linear in them


@pytest.mark.parametrize("cls, args", [
    (AutoEncoder, {"latent_dim": 5, "hidden_dim": 32, "code_activation": None}),
    (LinearAutoEncoder, {"latent_dim": 3}),
    (VAE, {"latent_dim": 4, "hidden_dim": 16}),
    (DigitClassifier, {"channels": 4, "feature_dim": 12, "dropout": 0.5}),
])
def test_model_args_rebuild_the_same_network(cls, args):
    model = cls(**args)
    assert model_args(model) == args
    twin = cls(**model_args(model))
    assert {k: v.shape for k, v in twin.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}


def test_the_three_autoencoders_are_separate_classes():
    """Each is whole on its own: no model claims to be an AutoEncoder it is not."""
    linear, vae = LinearAutoEncoder(latent_dim=3), VAE(latent_dim=3, hidden_dim=16)
    assert not isinstance(linear, AutoEncoder) and not isinstance(vae, AutoEncoder)
    assert not hasattr(linear, "hidden_dim") and vae.hidden_dim == 16


# ------------------------------------------------------------------------------- losses


def test_autoencoder_loss_is_the_mean_squared_error_per_pixel():
    model = AutoEncoder(latent_dim=3, hidden_dim=8)
    zero_(model.decoder[2])  # the decoder's output is sigmoid(0) = 0.5 for every pixel
    x = torch.full((3, 784), 0.1)
    x[1] = 0.9
    x[2, :392] = 0.5
    # (0.4^2 * 784 + 0.4^2 * 784 + 0 * 392 + 0.4^2 * 392) / (3 * 784)
    assert model.loss(x).item() == pytest.approx(0.16 * 2.5 / 3, rel=1e-6)
    assert model.loss(x, torch.arange(3)).item() == model.loss(x).item()  # labels ignored


def test_linear_autoencoder_loss_is_the_mean_squared_error_per_pixel():
    model = LinearAutoEncoder(latent_dim=2)
    zero_(model.decoder, bias=0.3)  # no sigmoid: the output is the bias itself
    x = torch.full((2, 784), 0.1)
    assert model.loss(x).item() == pytest.approx(0.2 ** 2, rel=1e-5)


def test_vae_loss_is_the_negative_elbo_per_image_in_nats():
    torch.manual_seed(0)
    model = VAE(latent_dim=4, hidden_dim=16)
    zero_(model.decoder[2])  # every pixel decoded as 0.5, whatever z is drawn
    last = zero_(model.encoder[2])  # mean 0 and log-variance 0: q(z|x) = N(0, I), KL = 0
    x = (torch.rand(3, 784) > 0.5).float()
    assert model.kl_per_dim(x).shape == (3, 4)
    assert torch.equal(model.kl_per_dim(x), torch.zeros(3, 4))
    # Bernoulli reconstruction: -log 0.5 for each of the 784 pixels of an image
    assert model.loss(x).item() == pytest.approx(784 * math.log(2), rel=1e-5)

    with torch.no_grad():
        last.bias[4:] = math.log(4.0)  # mean 0, variance 4: KL = 0.5 * (4 - 1 - log 4) per dim
    kl = 0.5 * (4.0 - 1.0 - math.log(4.0))
    assert torch.allclose(model.kl_per_dim(x), torch.full((3, 4), kl))
    assert model.loss(x).item() == pytest.approx(784 * math.log(2) + 4 * kl, rel=1e-5)
    with torch.no_grad():
        last.bias[:4] = 1.0  # mean 1, variance 1: KL = 0.5 * 1^2 per dimension
        last.bias[4:] = 0.0
    assert torch.allclose(model.kl_per_dim(x), torch.full((3, 4), 0.5))
    assert model.loss(x).item() == pytest.approx(784 * math.log(2) + 4 * 0.5, rel=1e-5)


def test_classifier_loss_is_cross_entropy_and_needs_labels():
    """The one test of the "needs labels" error (train and evaluate call this loss)."""
    clf = DigitClassifier()
    zero_(clf.head[1])  # all logits 0: every class has probability 1/10
    x = torch.rand(6, 784)
    assert clf.loss(x, torch.arange(6)).item() == pytest.approx(math.log(10), rel=1e-6)
    with torch.no_grad():
        clf.head[1].bias[3] = 2.0  # class 3 gets logit 2, the other nine 0
    clf.eval()  # no dropout: the head sees exactly these logits
    labels = torch.tensor([3, 3, 0, 0, 0, 0])
    log_z = math.log(math.exp(2.0) + 9)
    expected = (2 * (log_z - 2.0) + 4 * log_z) / 6
    assert clf.loss(x, labels).item() == pytest.approx(expected, rel=1e-6)
    with raises_naming(ValueError, "labels="):
        clf.loss(x)


# ---------------------------------------------------------------------------- VAE modes


def test_vae_forward_is_deterministic_in_eval_mode_and_random_in_train_mode():
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden_dim=16)
    x = torch.rand(8, 784)
    model.eval()
    z1, r1 = model(x)
    z2, r2 = model(x)
    assert torch.equal(z1, model.encode(x)) and torch.equal(z1, z2) and torch.equal(r1, r2)
    model.train()
    z3, _ = model(x)
    z4, _ = model(x)
    assert not torch.equal(z3, z4) and not torch.equal(z3, z1)
    # the noise is scaled by exp(log_var / 2): a tiny variance pins z to the mean
    with torch.no_grad():
        model.encoder[2].bias[3:] = -40.0
        model.encoder[2].weight[3:] = 0.0
    z5, _ = model(x)
    assert torch.allclose(z5, model.encode(x), atol=1e-6)


def test_vae_loss_draws_z_even_in_eval_mode():
    """The ELBO is an expectation over q(z|x): its estimate is random in both modes."""
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden_dim=16).eval()
    x = (torch.rand(8, 784) > 0.5).float()
    assert model.loss(x).item() != model.loss(x).item()


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("make, name", [
    (lambda v: AutoEncoder(latent_dim=v), "latent_dim"), (lambda v: LinearAutoEncoder(latent_dim=v), "latent_dim"),
    (lambda v: VAE(latent_dim=v), "latent_dim"), (lambda v: VAE(hidden_dim=v), "hidden_dim"),
    (lambda v: AutoEncoder(hidden_dim=v), "hidden_dim"), (lambda v: DigitClassifier(channels=v), "channels"),
    (lambda v: DigitClassifier(feature_dim=v), "feature_dim"),
])
def test_each_size_goes_through_the_whole_number_check(make, name):
    """The rule of whole numbers is tested in test_checks.py; here: each size is checked, and named."""
    with raises_naming(ValueError, name, "-7"):
        make(-7)


def test_a_code_size_is_kept_as_an_int_and_may_be_as_large_as_the_image():
    model = VAE(latent_dim=np.int64(3))
    assert model.latent_dim == 3 and type(model.latent_dim) is int  # the cache's file name shows "3"
    assert AutoEncoder(latent_dim=784, hidden_dim=4).latent_dim == 784
    with raises_naming(ValueError, "latent_dim", "785", "784"):
        AutoEncoder(latent_dim=785)


@pytest.mark.parametrize("bad", ["sigmoid", "ReLU", "none", 0])
def test_a_code_activation_other_than_relu_or_none_is_refused_naming_it(bad):
    with raises_naming(ValueError, "code_activation", repr(bad), "'relu'", "None"):
        AutoEncoder(code_activation=bad)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2])
def test_a_dropout_outside_0_to_1_is_refused_naming_it(bad):
    with raises_naming(ValueError, "dropout", repr(bad)):
        DigitClassifier(dropout=bad)


@pytest.mark.parametrize("cls, shape", [(AutoEncoder, (4, 7)), (LinearAutoEncoder, (8,)), (VAE, (2, 4, 8))])
def test_decode_refuses_codes_of_another_shape_naming_both(cls, shape):
    with raises_naming(ValueError, "[N, 8]", shape):
        cls(latent_dim=8).decode(torch.zeros(shape))


@pytest.mark.parametrize("cls, shape", [(AutoEncoder, (4, 783)), (LinearAutoEncoder, (784,)), (VAE, (4, 28, 27)),
                                        (DigitClassifier, (4, 783))])
def test_every_model_refuses_images_of_another_shape_naming_it(cls, shape):
    """The rule is flat_images' (test_checks.py); here: each model's forward goes through it."""
    with raises_naming(ValueError, "784", shape):
        cls()(torch.zeros(shape))
