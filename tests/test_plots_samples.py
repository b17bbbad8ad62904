"""Figures of notebook 07: titled sample panels and labelled image rows."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from aelib import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_image_panels_one_grid_per_title(mnist_test_subset):
    images, _ = mnist_test_subset
    panels = {"real": images[:16], "noise": torch.rand(16, 784), "short": images[:5],
              "blank": torch.zeros(16, 784)}
    fig = plots.plot_image_panels(panels, nrow=4, ncols=3, suptitle="samples")
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == list(panels)
    assert len(fig.axes) == 6 and not fig.axes[4].axison  # unused cells are hidden
    grid = np.asarray(shown[0].images[0].get_array())
    np.testing.assert_allclose(grid, plots.image_grid(images[:16], nrow=4).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="non-empty"):
        plots.plot_image_panels({"none": torch.zeros(0, 784)})


def test_image_rows_are_labelled_in_order(mnist_test_subset):
    images, _ = mnist_test_subset
    rows = [images[:6], images[6:12], images[12:18]]
    ax = plots.plot_image_rows(rows, ["dim 0", "dim 3", "dim 5"], column_labels=list("abcdef"),
                               title="traversal")
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(shown[32:60, 2:30], images[6].reshape(28, 28).numpy(), atol=1e-6)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dim 0", "dim 3", "dim 5"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcdef")
    with pytest.raises(ValueError, match="equally long"):
        plots.plot_image_rows([images[:6], images[:5]], ["a", "b"])
    with pytest.raises(ValueError, match="one row label per row"):
        plots.plot_image_rows(rows, ["a"])
