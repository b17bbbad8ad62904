"""aelib.sampling: the article's naive recipe, samplers fitted to codes (each sampler), walks
through the code space. Synthetic codes whose distribution is known."""

from __future__ import annotations

import pytest
import torch
from conftest import raises_naming

from aelib import sampling
from aelib.sampling import SAMPLERS, naive_sample, sample_codes

MEAN = torch.tensor([1.0, -2.0, 4.0])
MIXING = torch.tensor([[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [-1.0, 0.3, 0.2]])
COV = MIXING @ MIXING.T  # the known covariance of correlated_gaussian()


def correlated_gaussian(n: int = 20_000, seed: int = 1) -> torch.Tensor:
    """Codes drawn from N(MEAN, COV): strongly correlated, some values negative."""
    noise = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    return noise @ MIXING.T + MEAN


def relu_like_codes(n: int = 5000, seed: int = 0) -> torch.Tensor:
    """Codes [n, 5] like a ReLU code's: dims 1 and 3 dead (always 0), the rest positive."""
    base = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    codes = torch.zeros(n, 5)
    codes[:, [0, 2, 4]] = torch.stack([5 + 2 * base[:, 0], 8 + base[:, 0] + base[:, 1],
                                       3 + 0.5 * base[:, 2]], 1).clamp(min=0)
    return codes


# -------------------------------------------------------------------- recipe_from_codes


def test_recipe_is_read_off_the_live_dimensions_only():
    codes = torch.zeros(1000, 3)
    codes[:, [0, 2]] = torch.tensor([8.0, 12.0]).repeat(500)[:, None]  # live values: mean 10, std 2
    dead, mean, std = sampling.recipe_from_codes(codes)
    assert dead == [1]  # the all-zero dimension, not averaged in (that would give mean 6.7)
    assert mean == pytest.approx(10.0) and std == pytest.approx(2.0, rel=0.01)


def test_recipe_of_a_collapsed_model_draws_only_zeros():
    dead, mean, std = sampling.recipe_from_codes(torch.zeros(100, 4))
    assert dead == [0, 1, 2, 3] and (mean, std) == (0.0, 0.0)
    assert (naive_sample(10, dead, 4, mean=mean, std=std) == 0).all()


# ------------------------------------------------------------------------- naive_sample


def test_naive_sample_is_the_articles_recipe():
    codes = naive_sample(20_000, dead=[4, 5], latent_dim=8, seed=0)
    assert codes.shape == (20_000, 8) and codes.dtype == torch.float32
    assert (codes[:, [4, 5]] == 0).all()
    live = codes[:, [0, 1, 2, 3, 6, 7]]
    # the article's N(9, 4) is mean 9 and variance 4 (std 2), in every live dimension
    assert live.mean(0).sub(9.0).abs().max() < 0.05
    assert live.var(0).sub(4.0).abs().max() < 0.2
    assert (torch.corrcoef(live.T) - torch.eye(6)).abs().max() < 0.05  # independent


def test_naive_sample_per_dimension_mean_and_std():
    codes = naive_sample(10_000, [0], 3, mean=[0.0, 10.0, 100.0], std=[1.0, 0.0, 5.0], seed=0)
    assert (codes[:, 0] == 0).all()  # dead wins over its mean
    assert (codes[:, 1] == 10.0).all()  # std 0: exactly the mean
    assert codes[:, 2].mean().item() == pytest.approx(100.0, abs=0.3)
    assert codes[:, 2].std().item() == pytest.approx(5.0, abs=0.2)
    assert naive_sample(1000, [], 1, mean=0.0, std=1.0).min() < -2  # values are not clipped


@pytest.mark.parametrize("kwargs, named", [
    ({"n": 2.5}, ("n (how many codes to draw)", "2.5")),  # through the whole-number check (test_checks.py)
    ({"dead": [8]}, ("[8]", "latent_dim=8", "0 to 7")),
    ({"dead": [-1]}, ("[-1]", "0 to 7")),
    ({"std": -2.0}, ("std", "-2.0", "std=2")),  # the article's N(9, 4) is std 2
    ({"mean": [1.0, 2.0]}, ("mean", "(8)", "2 values")),
    ({"std": float("nan")}, ("std",)),
])
def test_naive_sample_bad_input_says_what_to_do(kwargs, named):
    with raises_naming(ValueError, *named):
        naive_sample(**{"n": 4, "dead": [1], "latent_dim": 8, **kwargs})


# ------------------------------------------------------------------------- sample_codes


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_each_sampler_gives_codes_of_the_right_shape_with_dead_dims_left_alone(sampler):
    codes = relu_like_codes()
    z = sample_codes(sampler, codes, 300, seed=0)
    assert z.shape == (300, 5) and z.dtype == torch.float32
    assert (z[:, [1, 3]] == 0).all()  # found by latent.dead_dims: all 0
    assert z[:, [0, 2, 4]].std(dim=0).min() > 0.1


@pytest.mark.parametrize("sampler", ["diagonal", "full", "gmm"])
def test_fitted_samplers_fill_dead_dims_with_the_codes_median(sampler):
    codes = correlated_gaussian(2001)
    spread = torch.randperm(2001, generator=torch.Generator().manual_seed(0)).float()
    codes = torch.cat([codes, spread[:, None]], dim=1)  # values 0..2000 in some order
    z = sample_codes(sampler, codes, 50, dead=[3], seed=0)  # declared dead, though it varies
    assert (z[:, 3] == 1000.0).all()  # the median (the mean would be 1000 too: see below)
    codes[:, 3] = torch.where(spread < 1500, 0.0, 40.0)  # median 0, mean 10
    assert (sample_codes(sampler, codes, 50, dead=[3], seed=0)[:, 3] == 0.0).all()


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_all_dims_dead_every_draw_is_the_one_median_code(sampler):
    """A collapsed model (every dimension dead): nothing to fit, no crash, one code."""
    codes = torch.zeros(500, 3)
    codes[:3, 1] = 5.0  # dim 1 is > 0 for 0.6% of the codes: still dead (< 1%)
    z = sample_codes(sampler, codes, 40, seed=0)
    assert z.shape == (40, 3) and (z == 0).all()
    median = torch.full((600, 2), 7.0)
    assert (sample_codes(sampler, median, 10, dead=[0, 1], seed=1) == (0.0 if sampler == "naive" else 7.0)).all()


def test_naive_sampler_is_naive_sample_with_the_codes_dead_dims():
    """The same draws: naive_sample's seed is as reproducible and private as every sampler's (tested below)."""
    codes = relu_like_codes()
    assert torch.equal(sample_codes("naive", codes, 100, seed=4),
                       naive_sample(100, dead=[1, 3], latent_dim=5, seed=4))


def test_diagonal_matches_each_marginal_but_drops_correlations():
    codes = correlated_gaussian()
    z = sample_codes("diagonal", codes, 40_000, seed=0)
    torch.testing.assert_close(z.mean(0), MEAN, atol=0.06, rtol=0)
    torch.testing.assert_close(z.std(0), COV.diagonal().sqrt(), atol=0, rtol=0.03)
    assert torch.corrcoef(codes.T)[0, 1] > 0.9
    assert torch.corrcoef(z.T)[0, 1].abs() < 0.03


def test_full_matches_the_mean_and_the_covariance():
    codes = correlated_gaussian()
    z = sample_codes("full", codes, 40_000, seed=0)
    torch.testing.assert_close(z.mean(0), MEAN, atol=0.06, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), COV, atol=0.15, rtol=0)


def test_gmm_recovers_two_well_separated_clusters():
    g = torch.Generator().manual_seed(5)
    centres = torch.tensor([[10.0, 0.0], [-10.0, 5.0]])
    codes = torch.cat([torch.randn(3000, 2, generator=g) * 0.5 + centres[0],
                       torch.randn(7000, 2, generator=g) * 0.5 + centres[1]])
    z = sample_codes("gmm", codes, 20_000, seed=0, n_components=2)
    near = [(z - c).norm(dim=1) < 3 for c in centres]
    assert near[0].float().mean().item() == pytest.approx(0.3, abs=0.02)
    assert near[1].float().mean().item() == pytest.approx(0.7, abs=0.02)
    assert (z[near[0]].std(0) - 0.5).abs().max() < 0.05  # each cluster's own spread
    # one Gaussian puts much of its mass between the clusters, where no code is
    single = sample_codes("full", codes, 20_000, seed=0)
    assert (single[:, 0].abs() < 5).float().mean() > 0.2
    assert (z[:, 0].abs() < 5).float().mean() < 0.01


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_same_seed_same_draws_and_the_global_generator_untouched(sampler):
    codes = relu_like_codes(2000)
    torch.manual_seed(123)
    expected_global = torch.rand(1)
    torch.manual_seed(123)
    first = sample_codes(sampler, codes, 64, seed=7)
    assert torch.equal(torch.rand(1), expected_global)
    assert torch.equal(first, sample_codes(sampler, codes, 64, seed=7))
    assert not torch.equal(first, sample_codes(sampler, codes, 64, seed=8))


def test_diagonal_and_full_share_their_random_numbers():
    """Common random numbers: when the codes' dimensions are uncorrelated, the full
    covariance is diagonal, and the same seed must give (nearly) the same codes."""
    a, b = torch.meshgrid(torch.arange(1.0, 9.0), torch.tensor([10.0, 20.0, 35.0]), indexing="ij")
    codes = torch.stack([a.flatten(), b.flatten()], dim=1)  # a grid: correlation exactly 0
    assert torch.cov(codes.T)[0, 1].abs() < 1e-6
    diagonal = sample_codes("diagonal", codes, 500, seed=3)
    full = sample_codes("full", codes, 500, seed=3)
    torch.testing.assert_close(full, diagonal, atol=1e-3, rtol=0)
    assert (full - sample_codes("full", codes, 500, seed=4)).abs().max() > 1.0


@pytest.mark.parametrize("kwargs, named", [
    ({"sampler": "vae"}, ("'vae'", *map(repr, SAMPLERS))),
    ({"codes": torch.rand(5)}, ("codes", "embed_images")),
    ({"codes": torch.rand(1, 3)}, ("codes", "embed_images")),
    ({"dead": [9]}, ("[9]", "latent_dim=5")),
    ({"n": -3}, ("n (how many codes to draw)", "-3")),  # through the whole-number check (test_checks.py)
    ({"sampler": "gmm", "codes": relu_like_codes(15)}, ("10 components", "15", "20")),
])
def test_sample_codes_bad_input_says_what_to_do(kwargs, named):
    args = {"sampler": "full", "codes": relu_like_codes(100), "n": 10, **kwargs}
    with raises_naming(ValueError, *named):
        sample_codes(**args)


# ----------------------------------------------------------------------- walks


def test_interpolate_codes_ends_and_even_steps():
    a, b = torch.tensor([0.0, 2.0, 4.0]), torch.tensor([10.0, 2.0, 0.0])
    path = sampling.interpolate_codes(a, b, steps=5)
    assert path.shape == (5, 3)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    torch.testing.assert_close(path[1:] - path[:-1], ((b - a) / 4).expand(4, 3))
    images = sampling.interpolate_codes(torch.zeros(784), torch.ones(784), steps=3)
    assert images.shape == (3, 784) and torch.equal(images[1], torch.full((784,), 0.5))
    with raises_naming(ValueError, "(3,)", "(2,)"):
        sampling.interpolate_codes(a, b[:2])
    with raises_naming(ValueError, "steps", "1", "2", "the two ends"):  # the ends count as steps
        sampling.interpolate_codes(a, b, steps=1)


def test_traversal_changes_one_dimension_per_row():
    base = torch.tensor([1.0, 2.0, 3.0, 4.0])
    grid = sampling.traversal_codes(base, dims=[2, 0], low=[-1.0, 5.0], high=[1.0, 9.0], steps=3)
    assert grid.shape == (2, 3, 4)
    assert grid[0, :, 2].tolist() == [-1.0, 0.0, 1.0]
    assert grid[1, :, 0].tolist() == [5.0, 7.0, 9.0]
    untouched = torch.ones(2, 3, 4, dtype=torch.bool)
    untouched[0, :, 2] = untouched[1, :, 0] = False
    assert torch.equal(grid[untouched], base.repeat(2, 3, 1)[untouched])
    assert torch.equal(base, torch.tensor([1.0, 2.0, 3.0, 4.0]))  # the base is not changed


@pytest.mark.parametrize("kwargs, named", [
    ({"low": [0.0]}, ("[0, 1]", "1 lows", "2 highs")),
    ({"dims": [4, 0]}, ("[4, 0]", "0 to 3")),
    ({"dims": [], "low": [], "high": []}, ("dims []",)),
    ({"steps": 1}, ("steps", "1")),  # through the whole-number check (test_checks.py)
])
def test_traversal_bad_input_names_it(kwargs, named):
    args = {"base": torch.zeros(4), "dims": [0, 1], "low": [0.0, 0.0], "high": [1.0, 2.0], **kwargs}
    with raises_naming(ValueError, *named):
        sampling.traversal_codes(**args)
