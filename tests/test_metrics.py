"""The yardstick metrics, each checked against a case whose answer is known."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from aelib import metrics


def _probs(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_confidence_and_confident_share():
    probs = _probs([[0.95, 0.05, 0.0], [0.5, 0.3, 0.2], [0.1, 0.0, 0.9], [0.0, 0.91, 0.09]])
    assert metrics.mean_confidence(probs) == pytest.approx((0.95 + 0.5 + 0.9 + 0.91) / 4)
    # strictly above the threshold: 0.95 and 0.91 count, 0.9 does not
    assert metrics.confident_share(probs, 0.9) == pytest.approx(0.5)
    assert metrics.confident_share(probs, 0.4) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="probability"):
        metrics.confident_share(probs, 1.5)
    with pytest.raises(ValueError, match="predict_proba"):
        metrics.mean_confidence(torch.rand(5))


def test_class_coverage_uniform_single_and_partial():
    eye = torch.eye(10)
    uniform = eye.repeat(20, 1)                      # 20 samples of each class
    entropy, n = metrics.class_coverage(uniform)
    assert entropy == pytest.approx(1.0) and n == 10
    single = eye[[3] * 50]                           # everything is a 3
    entropy, n = metrics.class_coverage(single)
    assert entropy == pytest.approx(0.0) and n == 1
    # two classes half and half: entropy log 2 / log 10; one stray sample (1 of 101 < 2%)
    two = torch.cat([eye[[1] * 50], eye[[7] * 50], eye[[4]]])
    entropy, n = metrics.class_coverage(two, min_share=0.02)
    shares = np.array([50, 50, 1]) / 101
    assert entropy == pytest.approx(-(shares * np.log(shares)).sum() / math.log(10), rel=1e-5)
    assert n == 2
    assert metrics.class_shares(two)[[1, 7, 4]].tolist() == pytest.approx(list(shares))


def test_frechet_identical_sets_is_zero_and_shift_gives_squared_norm():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 16, generator=gen) @ torch.randn(16, 16, generator=gen)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = torch.linspace(-1, 2, 16)
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(shift.pow(2).sum().item(), rel=1e-6)


def test_frechet_of_two_known_gaussians():
    # N(0, I) vs N(0, 4 I) in d dims: tr(I + 4I - 2*2I) = d
    gen = torch.Generator().manual_seed(1)
    d = 5
    a = torch.randn(200_000, d, generator=gen)
    b = 2.0 * torch.randn(200_000, d, generator=gen)
    assert metrics.frechet_distance(a, b) == pytest.approx(d, rel=0.02)
    with pytest.raises(ValueError, match="widths"):
        metrics.frechet_distance(a[:10], b[:10, :3])


def test_frechet_handles_rank_deficient_features():
    # a feature that is always zero (a dead ReLU unit) makes both covariances singular
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(300, 8, generator=gen)
    a[:, 0] = 0.0
    b = a + 0.5
    b[:, 0] = 0.0
    value = metrics.frechet_distance(a, b)
    assert math.isfinite(value) and value == pytest.approx(7 * 0.25, rel=1e-3)


def test_nearest_distances_match_brute_force_across_chunks():
    gen = torch.Generator().manual_seed(3)
    queries, reference = torch.rand(23, 784, generator=gen), torch.rand(57, 784, generator=gen)
    brute = ((queries[:, None, :] - reference[None, :, :]) ** 2).sum(-1).sqrt().min(dim=1).values
    got = metrics.nearest_distances(queries, reference, chunk_size=5)
    assert torch.allclose(got, brute, atol=1e-3)
    # an exact copy has distance (about) 0
    assert metrics.nearest_distances(reference[[4]], reference)[0] < 1e-6


def test_copy_check_on_real_mnist(mnist_train_subset, mnist_test_subset):
    train_images, _ = mnist_train_subset
    test_images, _ = mnist_test_subset
    threshold = metrics.copy_threshold(test_images, train_images, quantile=0.01)
    assert threshold > 1.0  # real held-out digits are never pixel copies
    # training images themselves are copies; held-out images mostly are not (~1%)
    assert metrics.copy_share(train_images[:100], train_images, threshold) == 1.0
    assert metrics.copy_share(test_images, train_images, threshold) <= 0.02
    noisy = (train_images[:100] + 0.5 * torch.rand(100, 784)).clamp(0, 1)
    assert metrics.copy_share(noisy, train_images, threshold) < 0.5


class _OneHotOfFirstPixel(nn.Module):
    """A fake classifier: confident in class int(first pixel), features = the pixels 0..3."""

    def __init__(self):
        super().__init__()
        self.feature_dim = 4
        self.dummy = nn.Parameter(torch.zeros(1))

    def features(self, x):
        return x[:, :4] + self.dummy

    def forward(self, x):
        return nn.functional.one_hot(x[:, 0].long(), 10).float() * 20.0 + self.dummy


def test_sample_quality_row(mnist_train_subset):
    model = _OneHotOfFirstPixel()
    gen = torch.Generator().manual_seed(4)
    images = torch.rand(100, 784, generator=gen)
    images[:, 0] = torch.arange(100) % 5              # five classes, 20% each
    real = torch.rand(500, 4, generator=gen)
    row = metrics.sample_quality(model, images, real_features=real)
    assert row["n"] == 100
    assert row["mean_confidence"] > 0.99 and row["confident_share"] == 1.0
    assert row["class_entropy"] == pytest.approx(math.log(5) / math.log(10), rel=1e-5)
    assert row["classes_2pct"] == 5
    assert row["frechet"] == pytest.approx(metrics.frechet_distance(images[:, :4], real))
    assert math.isnan(row["copy_share"])
    train_images, _ = mnist_train_subset
    row = metrics.sample_quality(model, train_images[:50], train_images=train_images, copy_dist=1.0)
    assert row["copy_share"] == 1.0 and math.isnan(row["frechet"])
    with pytest.raises(ValueError, match="both"):
        metrics.sample_quality(model, images, train_images=train_images)
