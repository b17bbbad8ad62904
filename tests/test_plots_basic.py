"""Tests for the model diagram and the loss-curve plot in aelib.plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

import aelib  # noqa: E402
from aelib import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _layer_boxes(ax: plt.Axes) -> list[FancyBboxPatch]:
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    return sorted(boxes, key=lambda p: p.get_x())


def _texts(ax: plt.Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


@pytest.mark.parametrize("latent_dim", [2, 8, 64])
def test_diagram_labels_every_layer_size(latent_dim):
    ax = plots.draw_autoencoder_diagram(latent_dim)
    texts = _texts(ax)
    assert texts.count("784") == 2
    assert texts.count("256") == 2
    assert f"k = {latent_dim}" in texts
    assert {"Encoder", "Decoder", "code z"} <= set(texts)
    assert len(_layer_boxes(ax)) == 5


def test_diagram_box_heights_follow_layer_sizes():
    heights = {}
    for k in (2, 8, 64):
        boxes = _layer_boxes(plots.draw_autoencoder_diagram(k))
        h = [b.get_height() for b in boxes]
        # input and output equal and tallest, the two hidden layers equal, code smallest
        assert h[0] == pytest.approx(h[4]) and h[1] == pytest.approx(h[3])
        assert h[0] > h[1] > h[2]
        heights[k] = h[2]
    assert heights[2] < heights[8] < heights[64]


def test_diagram_uses_given_axes_and_code_activation():
    fig, ax = plt.subplots()
    out = plots.draw_autoencoder_diagram(4, ax=ax, code_activation=None)
    assert out is ax and fig.axes == [ax]
    linear_code = [t for t in _texts(ax) if t.startswith("Linear")]
    relu_code = [t for t in _texts(plots.draw_autoencoder_diagram(4)) if t.startswith("Linear")]
    # the article's model: ReLU on the code, so three "Linear + ReLU" and one sigmoid
    assert relu_code == ["Linear + ReLU"] * 3 + ["Linear + Sigmoid"]
    assert linear_code == ["Linear + ReLU", "Linear", "Linear + ReLU", "Linear + Sigmoid"]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_diagram_rejects_bad_latent_dim(bad):
    with pytest.raises(ValueError, match="latent_dim"):
        plots.draw_autoencoder_diagram(bad)


@pytest.fixture(scope="module")
def real_history(mnist_train_subset, mnist_test_subset):
    """A real (tiny) training run on 512 MNIST images, with test losses."""
    aelib.set_seed(0)
    model = aelib.AutoEncoder(latent_dim=4, hidden_dim=32)
    return aelib.train(model, mnist_train_subset[0][:512], epochs=3, batch_size=64,
                       device="cpu", test_images=mnist_test_subset[0][:256], verbose=False)


def test_loss_curves_plot_the_history(real_history):
    ax = plots.plot_loss_curves(real_history)
    lines = ax.get_lines()
    assert len(lines) == 2
    train_line, test_line = lines
    assert list(train_line.get_xdata()) == [1, 2, 3]
    assert list(train_line.get_ydata()) == pytest.approx(real_history["train_loss"])
    assert list(test_line.get_ydata()) == pytest.approx(real_history["test_loss"])
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 2


def test_loss_curves_reference_and_missing_test_loss(real_history):
    history = dict(real_history, test_loss=[])
    reference = [0.06, 0.05, 0.045, 0.04]  # may be longer than the history
    fig, ax = plt.subplots()
    out = plots.plot_loss_curves(history, reference=reference, ax=ax,
                                 reference_label="article")
    assert out is ax
    lines = ax.get_lines()
    assert len(lines) == 2  # train + reference, no test curve
    assert list(lines[1].get_xdata()) == [1, 2, 3, 4]
    assert list(lines[1].get_ydata()) == reference
    assert "article" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_loss_curves_reject_bad_history(real_history):
    with pytest.raises(ValueError, match="train_loss"):
        plots.plot_loss_curves({"epoch": [1, 2]})
    with pytest.raises(ValueError, match="equally long"):
        plots.plot_loss_curves({"epoch": [1, 2], "train_loss": [0.1]})
    with pytest.raises(ValueError, match="test losses"):
        plots.plot_loss_curves(dict(real_history, test_loss=[0.1]))
    with pytest.raises(ValueError, match="reference"):
        plots.plot_loss_curves(real_history, reference=[])


def test_code_size_axis_is_log2_with_one_tick_per_size():
    fig, ax = plt.subplots()
    ax.plot([2, 8, 32], [0.04, 0.03, 0.01])
    plots.code_size_axis(ax, [32, 2, 8, 8])
    assert ax.get_xscale() == "log"
    assert list(ax.get_xticks()) == [2, 8, 32]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "8", "32"]
    assert "code size" in ax.get_xlabel()
    with pytest.raises(ValueError, match="code sizes"):
        plots.code_size_axis(ax, [0, 4])
    plt.close(fig)
