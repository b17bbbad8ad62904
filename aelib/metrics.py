"""Scoring real test images, reconstructions and samples with one classifier (:class:`Yardstick`):
confidence, classes, Fréchet distance of its features, precision/recall, near-copies; and the
wording of a comparison (:func:`compare`, :func:`span`, :func:`dims_text`) for code-written prose."""

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits
from torch import nn

from .checks import whole_number
from .training import batched_apply

COLUMNS = {  # a Yardstick row's key: (column name in as_table, its format)
    "mean_confidence": ("mean conf.", "{:.3f}"), "confident_share": ("confident share", "{:.1%}"),
    "class_entropy": ("class entropy", "{:.3f}"), "classes_covered": ("classes covered", None),
    "frechet": ("Fréchet", "{:.1f}"), "precision": ("precision", "{:.1%}"), "recall": ("recall", "{:.1%}"),
    "copy_share": ("near-copies", "{:.1%}")}


def predict_proba(clf: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``[N, 10]`` on the CPU."""
    return batched_apply(lambda m, x: F.softmax(m(x), dim=1), clf, images, batch_size=1000)


def confident_share(probs: torch.Tensor, threshold: float = 0.9) -> float:
    """Share of rows of class probabilities ``probs`` ``[N, 10]`` whose top probability is above ``threshold``."""
    return (probs.max(dim=1).values > threshold).float().mean().item()


def extract_features(clf: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The classifier's penultimate features ``[N, 128]`` on the CPU."""
    return batched_apply(lambda m, x: m.features(x), clf, images, batch_size=1000)


def accuracy(clf: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``images`` whose most probable class is their label."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"pass one label per image and at least one image, got {len(images)} images and {len(labels)} labels")
    return (predict_proba(clf, images).argmax(dim=1) == labels.cpu()).float().mean().item()


def class_coverage(probs: torch.Tensor, min_share: float = 0.02) -> tuple[float, int]:
    """``(entropy of the predicted-class shares / log(classes), classes with >= min_share)``:
    1.0 and 10 when every digit is predicted equally often, 0.0 and 1 for one digit."""
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"min_share is a share from 0 to 1 (0.02 = 2%), got {min_share}")
    shares = torch.bincount(probs.argmax(dim=1), minlength=probs.shape[1]).float() / len(probs)
    nonzero = shares[shares > 0]
    entropy = (nonzero * (1 / nonzero).log()).sum().item()  # a sum of terms >= 0: never -0.0
    return entropy / math.log(len(shares)), int((shares >= min_share).sum())


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b))`` between Gaussians fitted to two
    feature sets ``[N, d]`` and ``[M, d]``, in float64."""
    a, b = (np.asarray(f.detach().cpu().double() if isinstance(f, torch.Tensor) else f, np.float64)
            for f in (features_a, features_b))
    if a.ndim != 2 or b.ndim != 2 or min(len(a), len(b)) < 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two feature sets [N, d] with N >= 2 and the same d, got "
                         f"{a.shape} and {b.shape}; compute both with the same classifier")
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # tr sqrtm(S_a S_b) = the sum of sqrt(eigenvalues of S_a S_b), real and >= 0; fine for dead units
    with threadpool_limits(limits=torch.get_num_threads()):
        eigenvalues = np.linalg.eigvals(cov_a @ cov_b)
    diff = a.mean(0) - b.mean(0)
    trace_sqrt = np.sqrt(eigenvalues.real.clip(min=0)).sum()
    return float(max(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt, 0.0))


def nearest_distances(queries: torch.Tensor, pool: torch.Tensor, exclude_self: bool = False,
                      chunk_size: int = 256) -> torch.Tensor:
    """Each query's L2 distance to its nearest ``pool`` row, on the CPU (``exclude_self``: not to itself)."""
    q = queries.detach().float().cpu().reshape(len(queries), -1)
    r = pool.detach().float().cpu().reshape(len(pool), -1)
    if q.shape[1] != r.shape[1] or len(r) < 1 + exclude_self:
        raise ValueError(f"queries and pool must be non-empty sets of the same width, got "
                         f"{tuple(q.shape)} and {tuple(r.shape)}")
    out = []
    for i in range(0, len(q), whole_number("chunk_size", chunk_size)):
        d = torch.cdist(q[i:i + chunk_size], r, compute_mode="use_mm_for_euclid_dist")
        if exclude_self:
            d[torch.arange(len(d)), torch.arange(i, i + len(d))] = float("inf")
        nearest = d.argmin(dim=1)  # the distance itself is recomputed exactly (cdist's mm form rounds)
        out.append((q[i:i + chunk_size] - r[nearest]).norm(dim=1))
    return torch.cat(out)


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor,
                     neighbours: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019). Each set's manifold: the balls
    around its points reaching their ``neighbours``-th nearest neighbour in the set. Precision:
    share of fake points inside the real manifold; recall: of real points inside the fake one."""
    real, fake = real_features.detach().float().cpu(), fake_features.detach().float().cpu()
    whole_number("neighbours", neighbours, 1, min(len(real), len(fake)) - 1)
    # neighbours + 1: a point's 0 distance to itself comes first
    radius_real, radius_fake = (torch.cdist(x, x).kthvalue(neighbours + 1, dim=1).values for x in (real, fake))
    cross = torch.cdist(fake, real)  # [fake, real]
    return ((cross <= radius_real[None, :]).any(dim=1).float().mean().item(),
            (cross <= radius_fake[:, None]).any(dim=0).float().mean().item())


def support_share(codes: torch.Tensor, train_codes: torch.Tensor, quantile: float = 0.9) -> float:
    """Share of ``codes`` whose nearest training code is closer than the ``quantile`` of the
    training codes' own nearest-neighbour distances (about ``quantile`` of real codes are inside)."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be between 0 and 1 (0.9 = 90th percentile), got {quantile}")
    radius = torch.quantile(nearest_distances(train_codes, train_codes, exclude_self=True), quantile)
    return (nearest_distances(codes, train_codes) < radius).float().mean().item()


def standard_error(share: float, n: int) -> float:
    """Sampling error of a share measured on ``n`` independent images: sqrt(p (1 - p) / n)."""
    return math.sqrt(max(share * (1 - share), 0.0) / whole_number("n", n))


def compare(a: float, b: float, margin: float,
            words: tuple[str, str, str] = ("lower than", "about the same as", "higher than")) -> str:
    """Word how ``a`` stands to ``b``: ``words[2]`` if a > b + margin, ``words[0]`` if
    a < b - margin, else ``words[1]`` (e.g. margin = two standard errors of the difference)."""
    if margin < 0 or len(words) != 3:
        raise ValueError(f"margin must be >= 0 and words three strings, got {margin} and {words!r}")
    return words[2] if a > b + margin else words[0] if a < b - margin else words[1]


def span(values, fmt: str = "{:.2f}") -> str:
    """The range of ``values`` as prose, "0.97 到 0.99", or one number when both ends print
    alike (never "0.99 到 0.99"): write "为 {span}", not "在 {span} 之间"."""
    low, high = (fmt.format(v) for v in (min(values), max(values)))
    return low if low == high else f"{low} 到 {high}"


def dims_text(dims) -> str:
    """Code dimensions as Chinese prose, "第 0、1、3 维" (never a Python list); none is an error."""
    if not len(dims):
        raise ValueError("no dimensions to name: word that case yourself (e.g. 没有死维度)")
    return f"第 {'、'.join(str(int(d)) for d in dims)} 维"


def split_test_images(test_images: torch.Tensor, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint random sets of ``n`` test images: ``(reference, real_images)``: the yardstick's reference set, and real images scored as a perfect generator would be."""
    whole_number("n", n, 2, len(test_images) // 2, hint=" (two disjoint test subsets)")
    order = torch.randperm(len(test_images), generator=torch.Generator().manual_seed(seed))
    return test_images[order[:n]], test_images[order[n:2 * n]]


class Yardstick:
    """One classifier, reference set and near-copy threshold for every row: ``ys(images)`` gives a dict;
    ``confident_share`` counts top probabilities > ``threshold``, ``classes_covered`` shares >= ``min_share``."""

    def __init__(self, clf: nn.Module, reference_images: torch.Tensor, train_images: torch.Tensor | None = None,
                 threshold: float = 0.9, min_share: float = 0.02) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a probability from 0 to 1, got {threshold}")
        self.clf, self.train_images, self.threshold, self.min_share = clf, train_images, threshold, min_share
        self.real_features = extract_features(clf, reference_images)
        self.copy_dist = None if train_images is None else torch.quantile(
            nearest_distances(reference_images, train_images), 0.01).item()

    def __call__(self, images: torch.Tensor) -> dict[str, float]:
        if len(images) < 4:
            raise ValueError(f"score at least 4 images (better: 1,000), got {len(images)}")
        probs = predict_proba(self.clf, images)
        top = probs.max(dim=1).values
        entropy, covered = class_coverage(probs, self.min_share)
        features = extract_features(self.clf, images)
        precision, recall = precision_recall(self.real_features, features)
        row = {"n": len(images), "mean_confidence": top.mean().item(),
               "confident_share": confident_share(probs, self.threshold), "class_entropy": entropy,
               "classes_covered": covered, "frechet": frechet_distance(features, self.real_features),
               "precision": precision, "recall": recall, "copy_share": math.nan}
        if self.train_images is not None:
            row["copy_share"] = (nearest_distances(images, self.train_images) < self.copy_dist).float().mean().item()
        return row


def as_table(rows: dict[str, dict]) -> "pd.io.formats.style.Styler":
    """``{row name: Yardstick row}`` -> a formatted table (percentages, rounded distances)."""
    table = pd.DataFrame.from_dict(rows, orient="index").drop(columns="n", errors="ignore")
    table = table.dropna(axis=1, how="all").rename(columns={key: name for key, (name, _) in COLUMNS.items()})
    return table.style.format(dict(COLUMNS.values()))
