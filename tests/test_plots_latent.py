"""The latent-space figures in aelib.plots: they show what they claim and adapt to k."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import aelib  # noqa: E402
from aelib import plots  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    images, labels = aelib.load_mnist(train=False)
    return images[:300], labels[:300]


def relu_codes(n, k, dead=(), seed=0):
    g = torch.Generator().manual_seed(seed)
    codes = torch.relu(torch.randn(n, k, generator=g) * 4 + 6)
    codes[:, list(dead)] = 0.0
    return codes


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_reconstructions_two_labelled_rows(digits):
    images, labels = digits
    originals, recon = images[:7], 1 - images[:7]
    ax = plots.plot_reconstructions(originals, recon, [str(int(d)) for d in labels[:7]],
                                    title="t")
    shown = ax.images[0].get_array()
    assert shown.shape == plots.image_grid(torch.cat([originals, recon]), nrow=7).shape
    # top row shows the originals, bottom row the reconstructions (gap of 2 px padding)
    top = np.asarray(shown[2:30, 2:30])
    bottom = np.asarray(shown[32:60, 2:30])
    np.testing.assert_allclose(top, images[0].reshape(28, 28).numpy(), atol=1e-6)
    np.testing.assert_allclose(bottom, 1 - images[0].reshape(28, 28).numpy(), atol=1e-6)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "reconstruction"]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(int(d)) for d in labels[:7]]
    with pytest.raises(ValueError, match="as many"):
        plots.plot_reconstructions(originals, recon[:3])


@pytest.mark.parametrize("k, dead", [(2, []), (8, [1, 4]), (13, [0])])
def test_code_distributions_one_panel_per_dimension(k, dead):
    fig = plots.plot_code_distributions(relu_codes(400, k, dead), dead)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(panels) == k
    titles = [ax.get_title() for ax in panels]
    assert titles == [f"dim {i}" + (" (dead)" if i in dead else "") for i in range(k)]
    assert f"{len(dead)} dead" in fig._suptitle.get_text()


def test_code_distributions_compact_for_large_k():
    k, dead = 64, [3, 40]
    fig = plots.plot_code_distributions(relu_codes(300, k, dead), dead)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xlim()[1] > k - 1  # all 64 boxes on one axis
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"live", "dead"}
    assert len(ax.get_xticklabels()) <= 32  # thinned labels stay readable
    with pytest.raises(ValueError, match="out of range"):
        plots.plot_code_distributions(relu_codes(10, 4), dead=[4])


def test_latent_scatter_plots_the_chosen_dims_coloured_by_digit(digits):
    _, labels = digits
    codes = relu_codes(len(labels), 5, seed=1)
    ax = plots.plot_latent_scatter(codes, labels, dims=(3, 1))
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.sort(offsets[:, 0]), np.sort(codes[:, 3].numpy()), rtol=1e-6)
    np.testing.assert_allclose(np.sort(offsets[:, 1]), np.sort(codes[:, 1].numpy()), rtol=1e-6)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [str(d) for d in sorted(labels.unique().tolist())]
    assert ax.get_xlabel() == "code dim 3" and ax.get_ylabel() == "code dim 1"
    with pytest.raises(ValueError, match="two different"):
        plots.plot_latent_scatter(codes, labels, dims=(2, 2))


def test_correlation_heatmap_values():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(500, 1, generator=g)
    codes = torch.cat([base, -base + 0.1 * torch.randn(500, 1, generator=g),
                       torch.randn(500, 2, generator=g), torch.zeros(500, 1)], dim=1)
    ax = plots.plot_correlation(codes, dims=[0, 1, 2])
    values = np.asarray(ax.collections[0].get_array()).reshape(3, 3)
    np.testing.assert_allclose(values, torch.corrcoef(codes[:, :3].T).numpy(), rtol=1e-5)
    assert values[0, 1] < -0.9
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="constant"):
        plots.plot_correlation(codes)  # dimension 4 never changes
    with pytest.raises(ValueError, match="at least two"):
        plots.plot_correlation(codes, dims=[0])


def test_reconstructions_several_rows(digits):
    images, _ = digits
    rows = [images[:4] * 0.5, images[:4] * 0.25]
    ax = plots.plot_reconstructions(images[:4], rows, row_labels=["x", "k = 8", "k = 4"])
    shown = np.asarray(ax.images[0].get_array())
    assert shown.shape[0] == 2 + 3 * 30  # three rows of 28 px + 2 px padding
    np.testing.assert_allclose(shown[62:90, 2:30], 0.25 * images[0].reshape(28, 28).numpy(),
                               atol=1e-6)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "k = 8", "k = 4"]
    with pytest.raises(ValueError, match="3 strings"):
        plots.plot_reconstructions(images[:4], rows, row_labels=["a", "b"])
