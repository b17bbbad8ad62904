"""Sampling new codes for the decoder: where "generate a digit" happens.

The decoder turns any code ``z`` of shape ``[N, k]`` into an image. The question of
notebooks 06-07 is which ``z`` to feed it. This module starts with the article's naive
recipe (:func:`naive_sample`); fitted samplers follow further down.

Convention: a normal distribution is written N(mean, variance), as in the article, whose
"N(9, 4)" therefore means mean 9 and variance 4, i.e. standard deviation 2. The
functions here take the **standard deviation** (``std``), the argument torch uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

# --------------------------------------------------------------------------- naive sampler

ARTICLE_MEAN = 9.0  # the article's N(9, 4): mean 9 ...
ARTICLE_STD = 2.0   # ... and variance 4, so standard deviation 2


def _per_dim(name: str, value: float | Sequence[float] | torch.Tensor, latent_dim: int) -> torch.Tensor:
    """A scalar or one value per dimension -> a float tensor ``[latent_dim]``."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().float().flatten()
    else:  # a number, list, NumPy array or pandas Series (copied: it may be read-only)
        tensor = torch.tensor(np.array(value, dtype=np.float32)).flatten()
    if tensor.numel() == 1:
        tensor = tensor.expand(latent_dim)
    if tensor.numel() != latent_dim:
        raise ValueError(
            f"{name} must be one number or one per code dimension ({latent_dim}), got "
            f"{tensor.numel()} values"
        )
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return tensor.clone()


def naive_sample(
    n: int,
    dead: Iterable[int],
    latent_dim: int,
    mean: float | Sequence[float] | torch.Tensor = ARTICLE_MEAN,
    std: float | Sequence[float] | torch.Tensor = ARTICLE_STD,
    seed: int | None = 0,
) -> torch.Tensor:
    """Draw ``n`` codes by the article's recipe: dead dimensions 0, the others normal.

    Every live dimension is drawn independently from a normal with mean ``mean`` and
    standard deviation ``std`` (the article's N(9, 4) is mean 9, variance 4: ``std=2``).
    ``mean`` and ``std`` may also be sequences with one value per dimension, e.g. the
    means and standard deviations of real codes; the values given for dead dimensions are
    ignored. Values are not clipped: with the defaults a negative draw (which a ReLU code
    never has) is a 4.5-sigma event.

    ``seed`` fixes the draw with a private generator (the global torch RNG is untouched);
    ``seed=None`` uses the global RNG. Returns a CPU float tensor ``[n, latent_dim]``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (how many codes to draw) must be a whole number >= 1, got {n!r}")
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(
            f"latent_dim must be a whole number >= 1 (the model's code size, "
            f"model.latent_dim), got {latent_dim!r}"
        )
    dead = sorted({int(i) for i in dead})
    bad = [i for i in dead if not 0 <= i < latent_dim]
    if bad:
        raise ValueError(
            f"dead dimensions {bad} are out of range for latent_dim={latent_dim}; pass "
            f"indices from 0 to {latent_dim - 1} (e.g. from latent.dead_dims(codes))"
        )
    mean_t = _per_dim("mean", mean, latent_dim)
    std_t = _per_dim("std", std, latent_dim)
    if (std_t < 0).any():
        raise ValueError(
            f"std is a standard deviation and must be >= 0, got {std!r}; for the article's "
            f"N(9, 4) (variance 4) pass std=2"
        )
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    noise = torch.randn(n, latent_dim, generator=generator)
    codes = mean_t + std_t * noise
    codes[:, dead] = 0.0
    return codes


# --------------------------------------------------------------------------- fitted samplers
#
# Instead of reading a distribution off the histograms by eye, fit one to real codes
# (the encoder's output for training images) and sample from the fit. Every sampler
# treats dead dimensions the same way: they are not fitted, and every sample gets the
# codes' median there (0 for a dead ReLU dimension, the constant for a linear one).
# Only the live dimensions are modelled.

SAMPLER_KINDS = ("naive", "diagonal", "full", "gmm")


class CodeSampler:
    """Draws codes for a decoder; build one with :func:`fit_sampler`.

    ``sample(n)`` returns a CPU float tensor ``[n, latent_dim]``. Each sampler owns a
    private random stream seeded at construction: the same seed repeats the same
    sequence of samples, and the global torch RNG is untouched.

    Attributes: ``kind``, ``latent_dim``, ``dead`` and ``live`` (dimension indices),
    ``fill`` (the value of each dead dimension), ``seed``.
    """

    kind = "base"

    def __init__(self, latent_dim: int, dead: Sequence[int], fill: torch.Tensor, seed: int) -> None:
        self.latent_dim = latent_dim
        self.dead = sorted(int(i) for i in dead)
        self.live = [i for i in range(latent_dim) if i not in set(self.dead)]
        self.fill = fill.float().clone()
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)

    def _draw_live(self, n: int) -> torch.Tensor:
        """``n`` draws for the live dimensions, ``[n, len(live)]``."""
        raise NotImplementedError

    def sample(self, n: int) -> torch.Tensor:
        """Draw ``n`` codes: a CPU float tensor ``[n, latent_dim]``."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n (how many codes to draw) must be a whole number >= 1, got {n!r}")
        codes = self.fill.expand(n, self.latent_dim).clone()
        if self.live:
            codes[:, self.live] = self._draw_live(n).float()
        return codes

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(kind={self.kind!r}, latent_dim={self.latent_dim}, "
                f"dead={self.dead}, seed={self.seed})")


class NaiveSampler(CodeSampler):
    """The article's recipe (:func:`naive_sample`): live dimensions ~ N(mean, std^2), dead = 0."""

    kind = "naive"

    def __init__(self, latent_dim: int, dead: Sequence[int], seed: int = 0,
                 mean: float = ARTICLE_MEAN, std: float = ARTICLE_STD) -> None:
        super().__init__(latent_dim, dead, torch.zeros(latent_dim), seed)
        self.mean, self.std = mean, std

    def sample(self, n: int) -> torch.Tensor:
        draw_seed = int(torch.randint(0, 2**62, (1,), generator=self._generator))
        return naive_sample(n, self.dead, self.latent_dim, self.mean, self.std, seed=draw_seed)


class DiagonalGaussianSampler(CodeSampler):
    """Each live dimension its own normal, fitted (mean, std) to the codes; no correlations."""

    kind = "diagonal"

    def __init__(self, live_codes: torch.Tensor, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mean = live_codes.mean(dim=0)
        self.std = live_codes.std(dim=0)

    def _draw_live(self, n: int) -> torch.Tensor:
        noise = torch.randn(n, len(self.live), generator=self._generator, dtype=torch.float64)
        return self.mean + self.std * noise


class FullGaussianSampler(CodeSampler):
    """One multivariate normal with the codes' mean and full covariance matrix."""

    kind = "full"

    def __init__(self, live_codes: torch.Tensor, jitter: float = 1e-6, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mean = live_codes.mean(dim=0)
        self.cov = torch.cov(live_codes.T).reshape(len(self.live), len(self.live))
        ridge = jitter * self.cov.diagonal().mean().clamp(min=1e-12)
        self.cholesky = torch.linalg.cholesky(self.cov + ridge * torch.eye(len(self.live),
                                                                           dtype=self.cov.dtype))

    def _draw_live(self, n: int) -> torch.Tensor:
        noise = torch.randn(n, len(self.live), generator=self._generator, dtype=torch.float64)
        return self.mean + noise @ self.cholesky.T


class GaussianMixtureSampler(CodeSampler):
    """A mixture of full-covariance normals fitted with scikit-learn's ``GaussianMixture``
    (EM, seeded), sampled here with the sampler's own random stream."""

    kind = "gmm"

    def __init__(self, live_codes: torch.Tensor, n_components: int = 10, reg_covar: float = 1e-4,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        from sklearn.mixture import GaussianMixture  # imported here: slow to import

        if len(live_codes) < 2 * n_components:
            raise ValueError(
                f"a mixture of {n_components} components needs more codes than "
                f"{len(live_codes)}; pass at least {2 * n_components} (better: thousands)"
            )
        from threadpoolctl import threadpool_limits  # installed with scikit-learn

        # As many BLAS/OpenMP threads as torch uses (aelib.configure_threads): on a busy
        # 2-core machine the default (all cores) made this fit 7x slower, not faster.
        with threadpool_limits(limits=torch.get_num_threads()):
            self.mixture = GaussianMixture(n_components=n_components, covariance_type="full",
                                           reg_covar=reg_covar, max_iter=200,
                                           random_state=self.seed).fit(live_codes.numpy())
        self.weights = torch.as_tensor(self.mixture.weights_, dtype=torch.float64)
        self.means = torch.as_tensor(self.mixture.means_, dtype=torch.float64)
        self.choleskys = torch.linalg.cholesky(
            torch.as_tensor(self.mixture.covariances_, dtype=torch.float64))

    def _draw_live(self, n: int) -> torch.Tensor:
        component = torch.multinomial(self.weights, n, replacement=True, generator=self._generator)
        noise = torch.randn(n, len(self.live), generator=self._generator, dtype=torch.float64)
        return self.means[component] + torch.einsum("nij,nj->ni", self.choleskys[component], noise)


def fit_sampler(
    kind: str,
    codes: torch.Tensor,
    seed: int = 0,
    dead: Iterable[int] | None = None,
    n_components: int = 10,
    **naive_kwargs,
) -> CodeSampler:
    """Fit a code sampler of the given ``kind`` to real ``codes`` ``[N, k]``.

    Kinds (:data:`SAMPLER_KINDS`):

    * ``"naive"``: the article's recipe, :func:`naive_sample` (live dimensions ~ N(9, 4),
      i.e. std 2; pass ``mean=``/``std=`` to change). Uses the codes only to find the
      dead dimensions.
    * ``"diagonal"``: an independent normal per live dimension, mean and std from the codes.
    * ``"full"``: one normal with the codes' mean and full covariance.
    * ``"gmm"``: a mixture of ``n_components`` (default 10) full-covariance normals
      (``sklearn.mixture.GaussianMixture``, ``random_state=seed``).

    ``dead`` defaults to ``latent.dead_dims(codes)``; dead dimensions are not fitted and
    are set to the codes' median (0 for the naive sampler). The fitted normals can draw
    negative values in a ReLU code's live dimensions; they are not clipped (measured at
    k = 8: clipping at 0 changes none of the yardstick's numbers noticeably). ``seed``
    fixes the fit and the sample stream.
    Returns a :class:`CodeSampler`; call ``.sample(n)``.
    """
    from .latent import dead_dims  # imported here to keep this module light

    if kind not in SAMPLER_KINDS:
        raise ValueError(f"unknown sampler kind {kind!r}; choose one of {SAMPLER_KINDS}")
    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or len(codes) < 2:
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes)
        raise ValueError(
            f"codes must be a tensor [N, k] with N >= 2 (e.g. latent.embed_images(model, "
            f"train_images[:10000])), got {shape}"
        )
    if naive_kwargs and kind != "naive":
        raise ValueError(f"{sorted(naive_kwargs)} only apply to kind='naive'")
    codes = codes.detach().cpu().double()
    latent_dim = codes.shape[1]
    dead = dead_dims(codes) if dead is None else sorted({int(i) for i in dead})
    if any(not 0 <= i < latent_dim for i in dead):
        raise ValueError(f"dead dimensions {dead} are out of range for codes with {latent_dim} dims")
    if kind == "naive":
        return NaiveSampler(latent_dim, dead, seed=seed, **naive_kwargs)
    fill = torch.zeros(latent_dim)
    if dead:
        fill[dead] = codes[:, dead].median(dim=0).values.float()
    common = {"latent_dim": latent_dim, "dead": dead, "fill": fill, "seed": seed}
    live_codes = codes[:, [i for i in range(latent_dim) if i not in set(dead)]]
    if kind == "diagonal":
        return DiagonalGaussianSampler(live_codes, **common)
    if kind == "full":
        return FullGaussianSampler(live_codes, **common)
    return GaussianMixtureSampler(live_codes, n_components=n_components, **common)


# --------------------------------------------------------------------------- walking the latent


def interpolate_codes(start: torch.Tensor, end: torch.Tensor, steps: int = 11) -> torch.Tensor:
    """``steps`` points on the straight line from ``start`` to ``end`` (both included).

    Works for any two tensors of the same shape (codes ``[k]``, or images ``[784]`` for
    a pixel blend). Returns ``[steps, *start.shape]``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be a whole number >= 2 (the two ends included), got {steps!r}")
    if start.shape != end.shape:
        raise ValueError(f"start and end must have the same shape, got {tuple(start.shape)} "
                         f"and {tuple(end.shape)}")
    t = torch.linspace(0.0, 1.0, steps).reshape(-1, *([1] * start.ndim))
    return (1 - t) * start.float().cpu() + t * end.float().cpu()


def traversal_codes(
    base: torch.Tensor,
    dims: Sequence[int],
    low: torch.Tensor | Sequence[float],
    high: torch.Tensor | Sequence[float],
    steps: int = 9,
) -> torch.Tensor:
    """Vary one code dimension at a time, keeping the others at ``base``.

    Row ``i`` walks dimension ``dims[i]`` in ``steps`` even steps from ``low[i]`` to
    ``high[i]`` (e.g. the 1st and 99th percentile of that dimension over real codes).
    Returns ``[len(dims), steps, k]``; decode ``.reshape(-1, k)`` to get one image per cell.
    """
    base = base.detach().float().cpu().flatten()
    k = len(base)
    dims = [int(d) for d in dims]
    if not dims or any(not 0 <= d < k for d in dims):
        raise ValueError(f"dims must be a non-empty list of dimensions from 0 to {k - 1}, got {dims}")
    low_t = torch.as_tensor(low, dtype=torch.float32).flatten()
    high_t = torch.as_tensor(high, dtype=torch.float32).flatten()
    if len(low_t) != len(dims) or len(high_t) != len(dims):
        raise ValueError(f"low and high need one value per dimension in dims ({len(dims)}), "
                         f"got {len(low_t)} and {len(high_t)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be a whole number >= 2, got {steps!r}")
    grid = base.repeat(len(dims), steps, 1)
    for row, d in enumerate(dims):
        grid[row, :, d] = torch.linspace(low_t[row].item(), high_t[row].item(), steps)
    return grid
