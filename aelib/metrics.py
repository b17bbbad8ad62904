"""Measuring generated digits with a classifier as the yardstick.

Eyeballing a grid of samples says little. These metrics put a number on it, each
computed the same way for real test images (the floor), reconstructions and samples:

* **confidence**: the classifier's top-class probability; a sample that looks like a
  digit gets a confident answer. Reported as the mean and as the share above 0.9.
* **class coverage**: do the samples spread over all ten digits or collapse onto a few?
  The entropy of the predicted-class histogram divided by log(10) (1 = uniform, 0 = one
  class), and the number of classes that get at least 2% of the samples.
* **Fréchet distance** between the classifier's penultimate features of the samples and
  of real images: both sets summarised by a Gaussian (mean, covariance), then
  ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``. The idea of the FID, but with our
  small MNIST classifier instead of Inception, so its values are only comparable within
  this project, and only between sets of the same size.
* **copy check**: a generator that returns its training images is useless. A sample
  counts as a near-copy when its nearest training image (L2 distance in pixel space) is
  closer than the 1st percentile of the same distance for held-out real test images.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg
import torch
from torch import nn

from .classifier import extract_features, predict_proba


def _check_probs(probs: torch.Tensor) -> torch.Tensor:
    if not isinstance(probs, torch.Tensor) or probs.ndim != 2 or len(probs) == 0:
        shape = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs)
        raise ValueError(
            f"probs must be a non-empty tensor [N, classes] of class probabilities, got "
            f"{shape}; make it with classifier.predict_proba(model, images)"
        )
    return probs.detach().float().cpu()


def mean_confidence(probs: torch.Tensor) -> float:
    """Mean over the samples of the top-class probability (1.0 = always certain)."""
    return _check_probs(probs).max(dim=1).values.mean().item()


def confident_share(probs: torch.Tensor, threshold: float = 0.9) -> float:
    """Share of samples whose top-class probability is above ``threshold``."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a probability from 0 to 1, got {threshold}")
    return (_check_probs(probs).max(dim=1).values > threshold).float().mean().item()


def class_shares(probs: torch.Tensor) -> torch.Tensor:
    """Share of samples predicted as each class (argmax): a tensor ``[classes]`` summing to 1."""
    probs = _check_probs(probs)
    counts = torch.bincount(probs.argmax(dim=1), minlength=probs.shape[1]).float()
    return counts / counts.sum()


def class_coverage(probs: torch.Tensor, min_share: float = 0.02) -> tuple[float, int]:
    """How evenly the samples cover the classes.

    Returns ``(normalised_entropy, n_classes)``: the entropy of the predicted-class shares
    divided by ``log(classes)`` (1.0 when every class gets the same share, 0.0 when one
    class gets everything), and the number of classes with a share of at least ``min_share``.
    """
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"min_share is a share from 0 to 1 (0.02 = 2%), got {min_share}")
    shares = class_shares(probs)
    nonzero = shares[shares > 0]
    entropy = -(nonzero * nonzero.log()).sum().item()
    return entropy / math.log(len(shares)), int((shares >= min_share).sum())


def _gaussian_stats(features: torch.Tensor | np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) \
        else np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(
            f"{name} must be a 2-d array [N, d] with N >= 2 (one feature row per image), "
            f"got shape {x.shape}"
        )
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``[N, d]`` and ``[M, d]``.

    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b))``, in float64. ``sqrtm`` may
    return tiny imaginary parts from rounding; they are dropped (a large imaginary part
    raises). A singular product gets a small ridge added, as in the reference FID code.
    """
    mu_a, cov_a = _gaussian_stats(features_a, "features_a")
    mu_b, cov_b = _gaussian_stats(features_b, "features_b")
    if mu_a.shape != mu_b.shape:
        raise ValueError(
            f"the two feature sets have different widths ({mu_a.shape[0]} vs {mu_b.shape[0]}); "
            f"compute both with the same classifier"
        )
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    # BLAS threads as many as torch's (aelib.configure_threads); "matrix is singular"
    # warnings silenced: a constant feature (a dead ReLU unit) makes them harmless.
    with threadpool_limits(limits=torch.get_num_threads()), warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():
            ridge = np.eye(len(cov_a)) * 1e-6
            covmean = scipy.linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3 * max(1.0, np.abs(covmean).max())):
            raise ValueError("the matrix square root has a large imaginary part; "
                             "use more samples than feature dimensions")
        covmean = covmean.real
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def nearest_distances(
    queries: torch.Tensor, reference: torch.Tensor, chunk_size: int = 256
) -> torch.Tensor:
    """For each query image, the L2 distance (pixel space) to its nearest ``reference`` image.

    Works in chunks of ``chunk_size`` queries (``torch.cdist``), so 60,000 reference
    images never need more than ``chunk_size x 60,000`` distances in memory. Returns a CPU
    tensor ``[N]``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    q = queries.detach().float().cpu().reshape(len(queries), -1)
    r = reference.detach().float().cpu().reshape(len(reference), -1)
    if q.shape[1] != r.shape[1] or len(r) == 0:
        raise ValueError(
            f"queries and reference must be non-empty image sets of the same width, got "
            f"{tuple(q.shape)} and {tuple(r.shape)}"
        )
    out = []
    for i in range(0, len(q), chunk_size):
        chunk = q[i : i + chunk_size]
        # the fast matrix-product form finds the nearest image; the distance to it is then
        # recomputed directly, as the fast form loses precision for near-identical images
        nearest = torch.cdist(chunk, r, compute_mode="use_mm_for_euclid_dist").argmin(dim=1)
        out.append((chunk - r[nearest]).norm(dim=1))
    return torch.cat(out) if out else torch.empty(0)


def copy_threshold(
    heldout_images: torch.Tensor, train_images: torch.Tensor, quantile: float = 0.01
) -> float:
    """The ``quantile`` (default: 1st percentile) of held-out real images' distance to
    their nearest training image: closer than this counts as a near-copy."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be between 0 and 1 (0.01 = 1st percentile), got {quantile}")
    return torch.quantile(nearest_distances(heldout_images, train_images), quantile).item()


def copy_share(images: torch.Tensor, train_images: torch.Tensor, threshold: float) -> float:
    """Share of ``images`` whose nearest training image is closer than ``threshold``."""
    return (nearest_distances(images, train_images) < threshold).float().mean().item()


def sample_quality(
    classifier: nn.Module,
    images: torch.Tensor,
    real_features: torch.Tensor | None = None,
    train_images: torch.Tensor | None = None,
    copy_dist: float | None = None,
    confidence_threshold: float = 0.9,
    min_share: float = 0.02,
) -> dict[str, float]:
    """All the yardstick's numbers for one set of images, as one table row (a dict).

    Keys: ``n``, ``mean_confidence``, ``confident_share`` (top-class probability above
    ``confidence_threshold``), ``class_entropy`` (normalised), ``classes_2pct`` (classes
    with at least ``min_share`` of the samples), and, when the inputs are given,
    ``frechet`` (against ``real_features``, from :func:`aelib.classifier.extract_features`
    on real test images) and ``copy_share`` (near-copies of ``train_images`` closer than
    ``copy_dist``, from :func:`copy_threshold`). Missing inputs give NaN.
    """
    if len(images) < 2:
        raise ValueError(f"pass at least 2 images (better: 1,000), got {len(images)}")
    if (train_images is None) != (copy_dist is None):
        raise ValueError("the copy check needs both train_images and copy_dist "
                         "(from metrics.copy_threshold); pass both or neither")
    probs = predict_proba(classifier, images)
    entropy, n_classes = class_coverage(probs, min_share)
    row = {
        "n": len(images),
        "mean_confidence": mean_confidence(probs),
        "confident_share": confident_share(probs, confidence_threshold),
        "class_entropy": entropy,
        "classes_2pct": n_classes,
        "frechet": math.nan,
        "copy_share": math.nan,
    }
    if real_features is not None:
        row["frechet"] = frechet_distance(extract_features(classifier, images), real_features)
    if train_images is not None:
        row["copy_share"] = copy_share(images, train_images, copy_dist)
    return row

