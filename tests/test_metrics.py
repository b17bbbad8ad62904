"""aelib.metrics: each score on a case whose answer is known (synthetic point sets, fake
classifiers), and the Yardstick with a small real classifier on real MNIST."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import raises_naming
from torch import nn

from aelib import metrics


class FirstPixelClassifier(nn.Module):
    """A fake classifier: confident in class int(first pixel); features = pixels 0..3."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def features(self, x):
        return x[:, :4] + self.dummy

    def forward(self, x):
        return nn.functional.one_hot(x[:, 0].long(), 10).float() * 20.0 + self.dummy


def blobs(centres: torch.Tensor, per_blob: int, seed: int, spread: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([c + spread * torch.randn(per_blob, len(c), generator=g) for c in centres])


CENTRES = 10.0 * torch.eye(4)  # four well-separated modes in 4-d


# ------------------------------------------------------------------- classifier scores


def test_predict_proba_and_extract_features(small_classifier):
    x = torch.rand(37, 784)
    probs = metrics.predict_proba(small_classifier, x)
    assert probs.shape == (37, 10) and (probs >= 0).all()
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(37))
    with torch.no_grad():
        torch.testing.assert_close(probs, torch.softmax(small_classifier(x), dim=1))
        torch.testing.assert_close(metrics.extract_features(small_classifier, x),
                                   small_classifier.features(x))


def test_accuracy_is_the_share_predicted_right_and_needs_one_label_per_image():
    images = torch.zeros(4, 784)
    images[:, 0] = torch.tensor([3.0, 1.0, 7.0, 7.0])  # predictions 3, 1, 7, 7
    assert metrics.accuracy(FirstPixelClassifier(), images, torch.tensor([3, 1, 2, 7])) == 0.75
    for labels in (torch.tensor([3, 1, 2]), torch.tensor([], dtype=torch.long)):
        with raises_naming(ValueError, f"{len(labels) + 1} images", f"{len(labels)} labels"):
            metrics.accuracy(FirstPixelClassifier(), images[:len(labels) + 1], labels)


def test_accuracy_of_the_small_classifier_on_real_digits(small_classifier, mnist_test_subset):
    images, labels = mnist_test_subset
    assert metrics.accuracy(small_classifier, images, labels) > 0.75  # chance is 0.1
    assert metrics.accuracy(small_classifier, images, (labels + 1) % 10) < 0.1


def test_class_coverage_is_the_spread_of_the_predicted_classes_and_how_many_are_seen():
    eye = torch.eye(10)
    assert metrics.class_coverage(eye.repeat(20, 1)) == (pytest.approx(1.0), 10)
    assert metrics.class_coverage(eye[[3] * 50]) == (pytest.approx(0.0), 1)
    assert math.copysign(1.0, metrics.class_coverage(eye[[3] * 50])[0]) == 1.0  # 0.0, not -0.0 (prints "-0.000")
    # two classes half and half: one bit of the log2(10) bits of ten equal classes
    assert metrics.class_coverage(eye[[1, 7] * 50]) == (pytest.approx(math.log10(2)), 2)
    # and one stray prediction (1 of 101, under 2%): a little more spread, but not a class covered
    two = torch.cat([eye[[1] * 50], eye[[7] * 50], eye[[4]]])
    entropy, covered = metrics.class_coverage(two)
    assert math.log10(2) < entropy < math.log10(3) and covered == 2
    assert metrics.class_coverage(two, min_share=0.005)[1] == 3
    with raises_naming(ValueError, "min_share", "2"):
        metrics.class_coverage(two, min_share=2)


# ----------------------------------------------------------------------------- Fréchet


def test_frechet_of_two_samples_of_one_gaussian_is_near_zero():
    g = torch.Generator().manual_seed(0)
    mixing = torch.randn(4, 4, generator=g)
    a = torch.randn(20_000, 4, generator=g) @ mixing
    b = torch.randn(20_000, 4, generator=g) @ mixing
    scale = torch.cov(a.T).trace().item()
    assert metrics.frechet_distance(a, b) < 0.01 * scale
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_of_a_shifted_sample_is_the_squared_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 16, generator=g) @ torch.randn(16, 16, generator=g)
    shift = torch.linspace(-1, 2, 16)
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(shift.pow(2).sum().item(), rel=1e-6)
    b = torch.randn(2000, 16, generator=g) @ torch.randn(16, 16, generator=g)  # numpy works too
    assert metrics.frechet_distance(a.numpy(), b.numpy()) == pytest.approx(
        metrics.frechet_distance(a, b), rel=1e-9)


def test_frechet_of_two_known_gaussians():
    # N(0, I) against N(0, 4 I) in d dimensions: tr(I + 4 I - 2 * 2 I) = d
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(100_000, 5, generator=g), 2.0 * torch.randn(100_000, 5, generator=g)
    assert metrics.frechet_distance(a, b) == pytest.approx(5.0, rel=0.02)


def test_frechet_with_a_dead_feature_stays_finite():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(300, 8, generator=g)
    a[:, 0] = 0.0  # a feature that is always 0 (a dead ReLU unit): singular covariances
    b = a + 0.5
    b[:, 0] = 0.0
    assert metrics.frechet_distance(a, b) == pytest.approx(7 * 0.25, rel=1e-3)


@pytest.mark.parametrize("a, b", [(torch.rand(10, 4), torch.rand(10, 3)),
                                  (torch.rand(1, 4), torch.rand(10, 4)), (torch.rand(10), torch.rand(10))])
def test_frechet_refuses_feature_sets_that_do_not_fit_naming_both_shapes(a, b):
    with raises_naming(ValueError, tuple(a.shape), tuple(b.shape)):
        metrics.frechet_distance(a, b)


# ----------------------------------------------------------------- distances, P&R, support


def test_nearest_distances_match_brute_force_across_chunks():
    g = torch.Generator().manual_seed(3)
    queries, pool = torch.rand(23, 784, generator=g), torch.rand(57, 784, generator=g)
    brute = (queries[:, None] - pool[None]).pow(2).sum(-1).sqrt().min(dim=1).values
    torch.testing.assert_close(metrics.nearest_distances(queries, pool, chunk_size=5), brute)
    assert metrics.nearest_distances(pool[[4]], pool)[0] == 0.0  # an exact copy
    # excluding itself, a point's nearest neighbour is another point
    brute_self = (pool[:, None] - pool[None]).pow(2).sum(-1).sqrt()
    brute_self.fill_diagonal_(float("inf"))
    torch.testing.assert_close(metrics.nearest_distances(pool, pool, exclude_self=True,
                                                         chunk_size=10), brute_self.min(dim=1).values)
    with raises_naming(ValueError, (23, 784), (57, 10)):
        metrics.nearest_distances(queries, pool[:, :10])


def test_precision_recall_of_identical_sets_is_one_and_one():
    real = blobs(CENTRES, 100, seed=0)
    assert metrics.precision_recall(real, real.clone()) == (1.0, 1.0)


def test_precision_recall_of_disjoint_far_sets_is_zero_and_zero():
    real = blobs(CENTRES, 100, seed=0)
    assert metrics.precision_recall(real, real + 100.0) == (0.0, 0.0)


def test_half_the_modes_gives_high_precision_and_half_the_recall():
    real = blobs(CENTRES, 250, seed=0)
    fake = blobs(CENTRES[:2], 500, seed=1)  # the same distribution, two of the four modes
    precision, recall = metrics.precision_recall(real, fake)
    assert precision > 0.9
    assert recall == pytest.approx(0.5, abs=0.05)
    # swapping the roles swaps the scores: fake covering all modes of a two-mode "real" set
    swapped = metrics.precision_recall(fake, real)
    assert swapped[0] == pytest.approx(0.5, abs=0.05) and swapped[1] > 0.9


def test_precision_recall_neighbours_must_fit_the_sets():
    with raises_naming(ValueError, "neighbours", "4", "5"):  # at most one fewer than the smaller set
        metrics.precision_recall(torch.rand(5, 2), torch.rand(8, 2), neighbours=5)


def test_support_share_is_the_share_within_reach_of_the_training_codes():
    g = torch.Generator().manual_seed(0)
    train_codes = torch.randn(3000, 2, generator=g)
    held_out = torch.randn(3000, 2, generator=g)  # the same distribution
    assert metrics.support_share(train_codes[:500], train_codes) == 1.0  # themselves: inside
    assert metrics.support_share(held_out, train_codes) == pytest.approx(0.9, abs=0.03)
    assert metrics.support_share(held_out, train_codes, quantile=0.5) == pytest.approx(0.5, abs=0.04)
    assert metrics.support_share(held_out + 20.0, train_codes) == 0.0
    with raises_naming(ValueError, "quantile", "90", "0.9"):  # the share to pass instead
        metrics.support_share(held_out, train_codes, quantile=90)


# ------------------------------------------------------------ wording and sampling error


def test_standard_error_is_the_spread_of_a_measured_share():
    assert metrics.standard_error(0.5, 100) == pytest.approx(0.05)
    assert metrics.standard_error(0.0, 100) == 0.0
    # the spread of the share of successes over many repeated measurements of 400
    g = torch.Generator().manual_seed(0)
    shares = (torch.rand(4000, 400, generator=g) < 0.2).float().mean(dim=1)
    assert shares.std().item() == pytest.approx(metrics.standard_error(0.2, 400), rel=0.05)
    with raises_naming(ValueError, "n", "-4"):
        metrics.standard_error(0.5, -4)


@pytest.mark.parametrize("a, b, expected", [(0.80, 0.70, "higher than"), (0.70, 0.80, "lower than"),
                                            (0.74, 0.70, "about the same as"),
                                            (0.66, 0.70, "about the same as"),
                                            (0.75, 0.70, "about the same as")])
def test_compare_words_with_a_margin(a, b, expected):
    assert metrics.compare(a, b, margin=0.05) == expected


def test_compare_takes_other_words_and_refuses_a_bad_margin_or_word_list():
    words = ("低于", "与…相当", "高于")
    assert [metrics.compare(x, 1.0, 0.1, words) for x in (0.5, 1.0, 1.5)] == list(words)
    with raises_naming(ValueError, "margin", "-0.1"):
        metrics.compare(1.0, 2.0, -0.1)
    with raises_naming(ValueError, "words", "('a', 'b')"):
        metrics.compare(1.0, 2.0, 0.1, words=("a", "b"))


@pytest.mark.parametrize("values, fmt, expected", [
    ([0.971, 0.99, 0.985], "{:.2f}", "0.97 到 0.99"),   # the ends, whatever the order
    ([0.991, 0.989], "{:.2f}", "0.99"),                # both print alike: one number, never "0.99 到 0.99"
    ([1.0, 1.04], "{:.1f}", "1.0"),
    (torch.tensor([1.234, 3.5]), "{:.1f}", "1.2 到 3.5"),  # tensors and Series iterate alike
])
def test_span_words_a_range_without_a_repeated_number(values, fmt, expected):
    assert metrics.span(values, fmt) == expected


def test_dims_text_names_dimensions_as_prose():
    assert metrics.dims_text([0, 1, 3]) == "第 0、1、3 维"
    assert metrics.dims_text(torch.tensor([5])) == "第 5 维"
    assert "[" not in metrics.dims_text([2, 7]) and "," not in metrics.dims_text([2, 7])
    with raises_naming(ValueError, "没有死维度"):  # the wording to use instead
        metrics.dims_text([])


def test_split_test_images_gives_two_disjoint_random_sets():
    images = torch.arange(1000.0)[:, None].repeat(1, 784)  # image i is all i: traceable
    reference, real = metrics.split_test_images(images, 300, seed=0)
    assert reference.shape == real.shape == (300, 784)
    ids_ref, ids_real = set(reference[:, 0].tolist()), set(real[:, 0].tolist())
    assert len(ids_ref) == len(ids_real) == 300 and not ids_ref & ids_real
    assert ids_ref != set(range(300))  # random, not the first 300
    again = metrics.split_test_images(images, 300, seed=0)
    assert torch.equal(again[0], reference) and torch.equal(again[1], real)
    assert not torch.equal(metrics.split_test_images(images, 300, seed=1)[0], reference)
    with raises_naming(ValueError, "n", "500", "501", "disjoint"):  # two disjoint halves at most
        metrics.split_test_images(images, 501)


def test_confident_share_counts_rows_whose_top_probability_is_above_the_threshold():
    probs = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.5, 0.5], [0.02, 0.98]])
    assert metrics.confident_share(probs) == 0.5           # 0.9 itself is not above 0.9
    assert metrics.confident_share(probs, threshold=0.5) == 0.75


# --------------------------------------------------------------------------- Yardstick

ROW_KEYS = ["n", "mean_confidence", "confident_share", "class_entropy", "classes_covered",
            "frechet", "precision", "recall", "copy_share"]


def test_yardstick_row_on_a_fake_classifier():
    g = torch.Generator().manual_seed(4)
    reference = torch.rand(200, 784, generator=g)
    ys = metrics.Yardstick(FirstPixelClassifier(), reference)
    images = torch.rand(100, 784, generator=g)
    images[:, 0] = torch.arange(100) % 5  # five classes, 20% each, all confident
    row = ys(images)
    assert list(row) == ROW_KEYS
    assert row["n"] == 100 and row["confident_share"] == 1.0 and row["mean_confidence"] > 0.99
    assert row["class_entropy"] == pytest.approx(math.log(5) / math.log(10), rel=1e-5)
    assert row["classes_covered"] == 5
    assert row["frechet"] == pytest.approx(metrics.frechet_distance(images[:, :4], reference[:, :4]))
    assert (row["precision"], row["recall"]) == metrics.precision_recall(reference[:, :4], images[:, :4])
    assert math.isnan(row["copy_share"])  # no training images given
    # the options of the Yardstick reach the row
    strict = metrics.Yardstick(FirstPixelClassifier(), reference, threshold=1.0, min_share=0.25)(images)
    assert strict["confident_share"] == 0.0 and strict["classes_covered"] == 0


def test_yardstick_refuses_a_bad_threshold_and_too_few_images():
    with raises_naming(ValueError, "threshold", "90"):
        metrics.Yardstick(FirstPixelClassifier(), torch.rand(10, 784), threshold=90)
    ys = metrics.Yardstick(FirstPixelClassifier(), torch.rand(10, 784))
    with raises_naming(ValueError, "4 images", "3"):
        ys(torch.rand(3, 784))


@pytest.fixture(scope="module")
def real_rows(small_classifier, mnist_train, mnist_test):
    train_images = mnist_train[0][:5000]
    reference, real = metrics.split_test_images(mnist_test[0], 500, seed=0)
    ys = metrics.Yardstick(small_classifier, reference, train_images=train_images)
    noise = torch.rand(500, 784, generator=torch.Generator().manual_seed(0))
    return {"real test images": ys(real), "noise": ys(noise),
            "training images": ys(train_images[:500])}


def test_real_images_score_near_their_own_reference_and_noise_far_from_it(real_rows):
    real, noise = real_rows["real test images"], real_rows["noise"]
    assert real["mean_confidence"] > noise["mean_confidence"] + 0.05
    assert real["confident_share"] > noise["confident_share"] + 0.3
    assert real["classes_covered"] == 10 and real["class_entropy"] > 0.95
    assert noise["class_entropy"] < 0.5  # noise is called one or two digits
    assert real["frechet"] < 0.1 * noise["frechet"]
    assert real["precision"] > 0.8 and real["recall"] > 0.8
    # (noise's precision is no check: one outlying real image's large ball can hold it)
    assert noise["recall"] < 0.1
    # near-copies: held-out images rarely (the threshold is their 1st percentile),
    # training images always (each is its own nearest training image)
    assert real["copy_share"] < 0.05 and noise["copy_share"] == 0.0
    assert real_rows["training images"]["copy_share"] == 1.0


def test_as_table_formats_the_rows(real_rows):
    styled = metrics.as_table(real_rows)
    table = styled.data
    assert list(table.index) == list(real_rows)
    assert list(table.columns) == ["mean conf.", "confident share", "class entropy", "classes covered",
                                   "Fréchet", "precision", "recall", "near-copies"]
    html = styled.to_html()
    assert f"{real_rows['noise']['precision']:.1%}" in html
    assert f"{real_rows['real test images']['frechet']:.1f}" in html
    # without training images there are no near-copies: the column is dropped
    rows = {name: {**row, "copy_share": math.nan} for name, row in real_rows.items()}
    assert "near-copies" not in metrics.as_table(rows).data.columns
