"""Samplers fitted to codes: shapes, dead dimensions, fitted moments, seeds, errors."""

import pytest
import torch

from aelib import sampling


def _relu_like_codes(n=5000, seed=0):
    """Codes [n, 5]: dims 1 and 3 dead (always 0), the rest correlated and positive."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 3, generator=gen)
    live = torch.stack([5 + 2 * base[:, 0], 8 + base[:, 0] + base[:, 1], 3 + 0.5 * base[:, 2]], 1)
    codes = torch.zeros(n, 5)
    codes[:, [0, 2, 4]] = live.clamp(min=0)
    return codes


def _correlated_gaussian(n=20000, seed=1):
    gen = torch.Generator().manual_seed(seed)
    mixing = torch.tensor([[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [-1.0, 0.3, 0.2]])
    return torch.randn(n, 3, generator=gen) @ mixing.T + torch.tensor([1.0, -2.0, 4.0])


@pytest.mark.parametrize("kind", sampling.SAMPLER_KINDS)
def test_shapes_and_dead_dimensions(kind):
    codes = _relu_like_codes()
    sampler = sampling.fit_sampler(kind, codes, seed=0)
    assert sampler.kind == kind and sampler.dead == [1, 3] and sampler.live == [0, 2, 4]
    z = sampler.sample(300)
    assert z.shape == (300, 5) and z.dtype == torch.float32
    assert (z[:, [1, 3]] == 0).all()
    assert z[:, [0, 2, 4]].std(dim=0).min() > 0.1


def test_dead_dimensions_of_a_linear_code_get_their_constant():
    codes = _correlated_gaussian(2000)
    codes = torch.cat([codes, torch.full((2000, 1), -1.5)], dim=1)  # a constant (dead) dim
    for kind in ("diagonal", "full", "gmm"):
        sampler = sampling.fit_sampler(kind, codes, seed=0)
        assert sampler.dead == [3]
        assert (sampler.sample(50)[:, 3] == -1.5).all()
    # an explicit list overrides the rule
    assert sampling.fit_sampler("diagonal", codes, dead=[0]).dead == [0]


def test_naive_sampler_is_the_article_recipe():
    codes = _relu_like_codes()
    z = sampling.fit_sampler("naive", codes, seed=3).sample(20000)
    assert (z[:, [1, 3]] == 0).all()
    live = z[:, [0, 2, 4]]
    assert live.mean(dim=0).tolist() == pytest.approx([9.0] * 3, abs=0.05)
    assert live.std(dim=0).tolist() == pytest.approx([2.0] * 3, abs=0.05)
    z = sampling.fit_sampler("naive", codes, mean=0.0, std=1.0).sample(20000)
    assert z[:, 0].mean().item() == pytest.approx(0.0, abs=0.05)


def test_diagonal_matches_marginals_but_drops_correlations():
    codes = _correlated_gaussian()
    z = sampling.fit_sampler("diagonal", codes, seed=0).sample(40000)
    assert torch.allclose(z.mean(0), codes.mean(0), atol=0.05)
    assert torch.allclose(z.std(0), codes.std(0), rtol=0.03)
    assert abs(torch.corrcoef(codes.T)[0, 1]) > 0.9
    assert abs(torch.corrcoef(z.T)[0, 1]) < 0.05


def test_full_gaussian_matches_mean_and_covariance():
    codes = _correlated_gaussian()
    z = sampling.fit_sampler("full", codes, seed=0).sample(40000)
    assert torch.allclose(z.mean(0), codes.mean(0), atol=0.05)
    assert torch.allclose(torch.cov(z.T), torch.cov(codes.T), atol=0.1)


def test_mixture_finds_two_clusters_and_their_weights():
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(3000, 2, generator=gen) * 0.5 + torch.tensor([10.0, 0.0])
    b = torch.randn(7000, 2, generator=gen) * 0.5 + torch.tensor([-10.0, 5.0])
    codes = torch.cat([a, b])
    sampler = sampling.fit_sampler("gmm", codes, seed=0, n_components=2)
    z = sampler.sample(20000)
    near_a = (z - torch.tensor([10.0, 0.0])).norm(dim=1) < 3
    near_b = (z - torch.tensor([-10.0, 5.0])).norm(dim=1) < 3
    assert near_a.float().mean().item() == pytest.approx(0.3, abs=0.02)
    assert near_b.float().mean().item() == pytest.approx(0.7, abs=0.02)
    # a single Gaussian puts much of its mass between the clusters, where no code is
    between = sampling.fit_sampler("full", codes).sample(20000)
    assert (between[:, 0].abs() < 5).float().mean() > 0.2
    assert (z[:, 0].abs() < 5).float().mean() < 0.01
    # the default mixture (10 components) also matches the overall moments
    z10 = sampling.fit_sampler("gmm", codes, seed=0).sample(40000)
    assert torch.allclose(z10.mean(0), codes.mean(0), atol=0.2)


@pytest.mark.parametrize("kind", sampling.SAMPLER_KINDS)
def test_seed_determinism_and_a_private_stream(kind):
    codes = _relu_like_codes(2000)
    torch.manual_seed(123)
    global_before = torch.rand(1)
    torch.manual_seed(123)
    first = sampling.fit_sampler(kind, codes, seed=7)
    again = sampling.fit_sampler(kind, codes, seed=7)
    other = sampling.fit_sampler(kind, codes, seed=8)
    z1, z1_next = first.sample(64), first.sample(64)
    assert torch.equal(z1, again.sample(64))
    assert torch.equal(z1_next, again.sample(64))   # the same sequence, call after call
    assert not torch.equal(z1, z1_next)             # successive calls are new draws
    assert not torch.equal(z1, other.sample(64))
    assert torch.equal(torch.rand(1), global_before)  # global RNG untouched


def test_bad_input_messages():
    codes = _relu_like_codes(100)
    with pytest.raises(ValueError, match="naive.*diagonal.*full.*gmm"):
        sampling.fit_sampler("vae", codes)
    with pytest.raises(ValueError, match="codes must be"):
        sampling.fit_sampler("full", codes[0])
    with pytest.raises(ValueError, match="out of range"):
        sampling.fit_sampler("full", codes, dead=[9])
    with pytest.raises(ValueError, match="only apply to kind='naive'"):
        sampling.fit_sampler("full", codes, mean=3.0)
    with pytest.raises(ValueError, match="at least 20"):
        sampling.fit_sampler("gmm", codes[:15])
    with pytest.raises(ValueError, match="whole number"):
        sampling.fit_sampler("diagonal", codes).sample(0)


def test_interpolate_codes_ends_and_midpoint():
    a, b = torch.tensor([0.0, 2.0, 4.0]), torch.tensor([10.0, 2.0, 0.0])
    path = sampling.interpolate_codes(a, b, steps=5)
    assert path.shape == (5, 3)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(path[2], (a + b) / 2)
    assert torch.allclose(path[1:] - path[:-1], ((b - a) / 4).expand(4, 3))  # even steps
    with pytest.raises(ValueError, match="same shape"):
        sampling.interpolate_codes(a, b[:2])
    with pytest.raises(ValueError, match="steps"):
        sampling.interpolate_codes(a, b, steps=1)


def test_traversal_changes_one_dimension_per_row():
    base = torch.tensor([1.0, 2.0, 3.0, 4.0])
    grid = sampling.traversal_codes(base, dims=[2, 0], low=[-1.0, 5.0], high=[1.0, 9.0], steps=3)
    assert grid.shape == (2, 3, 4)
    assert grid[0, :, 2].tolist() == [-1.0, 0.0, 1.0]
    assert grid[1, :, 0].tolist() == [5.0, 7.0, 9.0]
    untouched = torch.ones(2, 3, 4, dtype=torch.bool)
    untouched[0, :, 2] = False
    untouched[1, :, 0] = False
    assert torch.equal(grid[untouched], base.repeat(2, 3, 1)[untouched])
    with pytest.raises(ValueError, match="one value per dimension"):
        sampling.traversal_codes(base, dims=[0, 1], low=[0.0], high=[1.0, 2.0])
    with pytest.raises(ValueError, match="from 0 to 3"):
        sampling.traversal_codes(base, dims=[4], low=[0.0], high=[1.0])
