"""aelib.sampling.naive_sample: the article's recipe, dead dimensions 0, others normal."""

import pytest
import torch

import aelib
from aelib import latent, sampling


def test_shape_dead_dims_and_article_defaults():
    codes = sampling.naive_sample(20_000, dead=[4, 5], latent_dim=8, seed=0)
    assert codes.shape == (20_000, 8) and codes.dtype == torch.float32
    assert (codes[:, [4, 5]] == 0).all()
    live = codes[:, [0, 1, 2, 3, 6, 7]]
    # N(9, 4) means mean 9, variance 4 (std 2)
    assert live.mean().item() == pytest.approx(9.0, abs=0.03)
    assert live.std().item() == pytest.approx(2.0, abs=0.03)
    assert live.var(dim=0).sub(4.0).abs().max().item() < 0.2
    # independent dimensions: the correlation between two live ones is near zero
    corr = torch.corrcoef(live.T)
    assert (corr - torch.eye(6)).abs().max().item() < 0.05


def test_seed_is_reproducible_and_private():
    a = sampling.naive_sample(5, [], 3, seed=1)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    b = sampling.naive_sample(5, [], 3, seed=1)
    after = torch.rand(1)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(before, after)  # global RNG not consumed
    assert not torch.equal(a, sampling.naive_sample(5, [], 3, seed=2))


def test_per_dimension_mean_and_std():
    mean = torch.tensor([0.0, 10.0, 100.0])
    std = torch.tensor([1.0, 0.0, 5.0])
    codes = sampling.naive_sample(10_000, [0], 3, mean=mean, std=std, seed=0)
    assert (codes[:, 0] == 0).all()
    assert (codes[:, 1] == 10.0).all()  # std 0: exactly the mean
    assert codes[:, 2].mean().item() == pytest.approx(100.0, abs=0.3)
    assert codes[:, 2].std().item() == pytest.approx(5.0, abs=0.2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "n "),
        ({"n": 2.5}, "n "),
        ({"dead": [8]}, "out of range"),
        ({"dead": [-1]}, "out of range"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"std": -2.0}, "std=2"),
        ({"mean": [1.0, 2.0]}, "one per code dimension"),
        ({"std": float("nan")}, "finite"),
    ],
)
def test_bad_input_raises_helpful_value_error(kwargs, message):
    args = {"n": 4, "dead": [1], "latent_dim": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        sampling.naive_sample(**args)


def test_naive_samples_decode_to_images():
    aelib.set_seed(0)
    model = aelib.AutoEncoder(latent_dim=5)
    codes = sampling.naive_sample(16, dead=[2], latent_dim=model.latent_dim)
    images = latent.decode_codes(model, codes)
    assert images.shape == (16, 784)
    assert (images > 0).all() and (images < 1).all()
