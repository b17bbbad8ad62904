"""New codes for the decoder: the article's naive recipe, fitted samplers, and walks. The article writes
N(mean, variance) ("N(9, 4)": variance 4); these functions take the standard deviation (``std=2``), as torch
does. A ``seed`` draws from a private generator: the same seed gives the same codes, torch's is untouched."""

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .checks import whole_number
from .latent import dead_dims

ARTICLE_MEAN, ARTICLE_STD = 9.0, 2.0  # the article's N(9, 4): mean 9, variance 4
SAMPLERS = ("naive", "diagonal", "full", "gmm")


def _dims(dead: Iterable[int], latent_dim: int) -> list[int]:
    dead = sorted({int(i) for i in dead})
    if any(not 0 <= i < latent_dim for i in dead):
        raise ValueError(f"dead dimensions {dead} are out of range for latent_dim={latent_dim}; "
                         f"pass indices from 0 to {latent_dim - 1} (e.g. latent.dead_dims(codes))")
    return dead


def naive_sample(n: int, dead: Iterable[int], latent_dim: int, mean: float | Sequence[float] = ARTICLE_MEAN,
                 std: float | Sequence[float] = ARTICLE_STD, seed: int = 0) -> torch.Tensor:
    """The article's recipe, ``[n, latent_dim]``: dead dimensions 0, every other one drawn independently
    from a normal with ``mean`` and ``std`` (a number, or one per dimension), not clipped."""
    whole_number("n (how many codes to draw)", n)
    whole_number("latent_dim", latent_dim, hint=" (the model's code size, model.latent_dim)")
    dead = _dims(dead, latent_dim)
    mean_t, std_t = (torch.as_tensor(np.array(v, dtype=np.float32)).flatten() for v in (mean, std))
    for name, t in (("mean", mean_t), ("std", std_t)):
        if t.numel() not in (1, latent_dim) or not torch.isfinite(t).all():
            raise ValueError(f"{name} must be one finite number or one per code dimension "
                             f"({latent_dim}), got {t.numel()} values")
    if (std_t < 0).any():
        raise ValueError(f"std is a standard deviation and must be >= 0, got {std!r}; for the "
                         f"article's N(9, 4) (variance 4) pass std=2")
    codes = mean_t + std_t * torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    codes[:, dead] = 0.0
    return codes


def recipe_from_codes(codes: torch.Tensor) -> tuple[list[int], float, float]:
    """The article's recipe read off a model's own ``codes`` ``[N, k]`` by numbers, not by eye:
    ``(dead, mean, std)``, the mean and std of all live values together (no live dimension: 0, 0)."""
    dead = dead_dims(codes)
    live = codes.detach().float().cpu()[:, [i for i in range(codes.shape[1]) if i not in dead]]
    return dead, (live.mean().item() if live.numel() else 0.0), (live.std().item() if live.numel() > 1 else 0.0)


def sample_codes(sampler: str, codes: torch.Tensor, n: int, seed: int = 0,
                 dead: Iterable[int] | None = None, n_components: int = 10) -> torch.Tensor:
    """Fit a distribution by ``sampler`` (one of SAMPLERS) to real ``codes`` ``[N, k]`` and draw ``n``: ``"naive"``:
    :func:`naive_sample` (the codes only give the dead dimensions); ``"diagonal"``: an independent normal per live
    dimension; ``"full"``: one normal with the codes' mean and full covariance; ``"gmm"``: a mixture of
    ``n_components`` full-covariance normals. Dead dimensions (default: ``latent.dead_dims(codes)``) get the codes'
    median. One ``seed`` gives the fitted samplers the same standard-normal draws; "naive" draws its own."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    whole_number("n (how many codes to draw)", n)
    found = dead_dims(codes)  # also checks that codes is a tensor [N, k] with N >= 2
    dead = _dims(found if dead is None else dead, k := codes.shape[1])
    if sampler == "naive":
        return naive_sample(n, dead, k, seed=seed)
    live = [i for i in range(k) if i not in dead]
    out = codes.detach().cpu().float().median(dim=0).values.expand(n, k).clone()
    if not live:  # nothing to fit: every code is the median, so every sample decodes alike
        return out
    x = codes.detach().cpu().double()[:, live]
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, len(live), generator=generator, dtype=torch.float64)
    if sampler == "diagonal":
        drawn = x.mean(0) + x.std(0) * noise
    elif sampler == "full":
        cov = torch.cov(x.T).reshape(len(live), len(live))
        ridge = 1e-6 * cov.diagonal().mean().clamp(min=1e-12) * torch.eye(len(live), dtype=cov.dtype)
        drawn = x.mean(0) + noise @ torch.linalg.cholesky(cov + ridge).T
    else:  # "gmm": each draw picks a component, then is drawn from that component's normal
        from sklearn.mixture import GaussianMixture  # imported here: slow to import

        if len(x) < 2 * n_components:
            raise ValueError(f"a mixture of {n_components} components needs more codes than "
                             f"{len(x)}; pass at least {2 * n_components} (better: thousands)")
        with threadpool_limits(limits=torch.get_num_threads()):  # all cores: 7x slower on a busy machine
            gmm = GaussianMixture(n_components, covariance_type="full", reg_covar=1e-4, max_iter=200,
                                  random_state=seed).fit(x.numpy())
        component = torch.multinomial(torch.as_tensor(gmm.weights_), n, replacement=True, generator=generator)
        chol = torch.linalg.cholesky(torch.as_tensor(gmm.covariances_))
        drawn = torch.as_tensor(gmm.means_)[component] + torch.einsum("nij,nj->ni", chol[component], noise)
    out[:, live] = drawn.float()
    return out


def interpolate_codes(start: torch.Tensor, end: torch.Tensor, steps: int = 11) -> torch.Tensor:
    """``[steps, *start.shape]``: evenly spaced points from ``start`` to ``end``, both included (codes, or images)."""
    whole_number("steps", steps, 2, hint=" (the two ends included)")
    if start.shape != end.shape:
        raise ValueError(f"start and end must have the same shape, got {tuple(start.shape)} and {tuple(end.shape)}")
    t = torch.linspace(0.0, 1.0, steps).reshape(-1, *([1] * start.ndim))
    return (1 - t) * start.float().cpu() + t * end.float().cpu()


def traversal_codes(base: torch.Tensor, dims: Sequence[int], low: Sequence[float],
                    high: Sequence[float], steps: int = 9) -> torch.Tensor:
    """Row ``i`` walks dimension ``dims[i]`` from ``low[i]`` to ``high[i]`` in ``steps``,
    the other dimensions kept at ``base``: ``[len(dims), steps, k]``."""
    base, dims = base.detach().float().cpu().flatten(), [int(d) for d in dims]
    if not dims or any(not 0 <= d < len(base) for d in dims) or not len(low) == len(high) == len(dims):
        raise ValueError(f"dims must be dimensions from 0 to {len(base) - 1} with one low and one high "
                         f"value each, got dims {dims}, {len(low)} lows and {len(high)} highs")
    grid = base.repeat(len(dims), whole_number("steps", steps, 2), 1)
    for row, d in enumerate(dims):
        grid[row, :, d] = torch.linspace(float(low[row]), float(high[row]), steps)
    return grid
