"""aelib.plots: each figure draws what it promises (panels, lines, bars, titles, pixels,
colours) on small inputs; save_figure writes where it is told (atomically: test_data.py)."""

from __future__ import annotations

import types

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import raises_naming
from matplotlib.colors import to_rgba

import aelib
from aelib import plots

CELL = 30  # one 28-pixel image plus make_grid's 2-pixel padding


def relu_codes(n: int, k: int, dead=(), seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    codes = torch.relu(torch.randn(n, k, generator=g) * 4 + 6)
    codes[:, list(dead)] = 0.0
    return codes


def cell(grid: np.ndarray, row: int, col: int) -> np.ndarray:
    """The 28 x 28 image at (row, col) of a make_grid picture."""
    return grid[2 + CELL * row: CELL * (row + 1), 2 + CELL * col: CELL * (col + 1)]


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


# -------------------------------------------------------------------- style, saving


def test_use_style_sets_the_series_look():
    with matplotlib.rc_context():
        plots.use_style()
        _, ax = plt.subplots()
        assert ax.set_title("t").get_fontweight() == "bold"
        assert ax.imshow(np.zeros((2, 2))).get_cmap().name == "gray"
        assert plt.rcParams["savefig.bbox"] == "tight"


def test_save_figure_writes_into_the_images_variables_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AELIB_IMAGES_DIR", str(tmp_path / "from-env"))
    fig, _ = plt.subplots()
    path = plots.save_figure(fig, "07_samples.png")
    assert path == tmp_path / "from-env" / "07_samples.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # an explicit folder wins; the suffix picks the format
    pdf = plots.save_figure(fig, "x.pdf", folder=tmp_path / "explicit")
    assert pdf == tmp_path / "explicit" / "x.pdf" and pdf.read_bytes()[:5] == b"%PDF-"
    monkeypatch.delenv("AELIB_IMAGES_DIR")
    monkeypatch.setattr(plots, "project_root", lambda: tmp_path / "repo")
    assert plots.save_figure(fig, "y.png") == tmp_path / "repo" / "images" / "y.png"


# -------------------------------------------------------------------------- images


def test_show_images_places_each_image_in_its_cell(mnist_test_subset):
    images = mnist_test_subset[0][:7]
    ax = plots.show_images(images, nrow=3, title="seven", labels=["a", "b", "c", "d"])
    grid = np.asarray(ax.images[0].get_array())
    assert grid.shape == (2 + 3 * CELL, 2 + 3 * CELL)  # 3 rows of 3 (the last one short)
    for i in (0, 4, 6):
        np.testing.assert_allclose(cell(grid, i // 3, i % 3), images[i].reshape(28, 28).numpy())
    assert ax.get_title() == "seven"
    # labels under the columns (at most one per column), centred on them
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert list(ax.get_xticks()) == [16, 16 + CELL, 16 + 2 * CELL]
    assert ax.images[0].get_cmap().name == "gray_r"  # dark strokes on white


def test_plot_image_rows_one_named_row_each(mnist_test_subset):
    images = mnist_test_subset[0]
    rows = [images[:6], 1 - images[:6], images[6:12]]
    ax = plots.plot_image_rows(rows, ["original", "inverted", "others"], column_labels=list("abcdef"),
                               title="rows")
    grid = np.asarray(ax.images[0].get_array())
    assert grid.shape == (2 + 3 * CELL, 2 + 6 * CELL)
    np.testing.assert_allclose(cell(grid, 1, 2), 1 - images[2].reshape(28, 28).numpy(), atol=1e-6)
    np.testing.assert_allclose(cell(grid, 2, 5), images[11].reshape(28, 28).numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "inverted", "others"]
    assert list(ax.get_yticks()) == [16, 16 + CELL, 16 + 2 * CELL]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcdef")
    with raises_naming(ValueError, "[6, 5]"):
        plots.plot_image_rows([images[:6], images[:5]], ["a", "b"])
    with raises_naming(ValueError, "[6, 6, 6]", "1 label"):
        plots.plot_image_rows(rows, ["a"])


def test_plot_image_panels_one_titled_grid_per_entry(mnist_test_subset):
    images = mnist_test_subset[0]
    panels = {"real": images[:16], "noise": torch.rand(16, 784), "short": images[:5],
              "blank": torch.zeros(16, 784)}
    fig = plots.plot_image_panels(panels, nrow=4, ncols=3, suptitle="samples")
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == list(panels)
    assert len(fig.axes) == 6 and [ax.axison for ax in fig.axes[4:]] == [False, False]
    np.testing.assert_allclose(cell(np.asarray(shown[2].images[0].get_array()), 1, 0),
                               images[4].reshape(28, 28).numpy())
    assert fig._suptitle.get_text() == "samples"
    with raises_naming(ValueError, "panels"):
        plots.plot_image_panels({"none": torch.zeros(0, 784)})


# ------------------------------------------------------------------------- diagrams


def test_draw_network_one_box_per_layer_sized_by_the_layer():
    sizes = [784, 256, 8, 256, 784]
    ax = plots.draw_network(sizes, ["input", "hidden", "code z", "hidden", "output"],
                            ["Linear+ReLU", "Linear+ReLU", "Linear+ReLU", "Linear+Sigmoid"],
                            groups=[(0, 2, "Encoder"), (2, 4, "Decoder")])
    boxes = sorted((p for p in ax.patches if isinstance(p, plt.Rectangle)), key=lambda p: p.get_x())
    assert len(boxes) == 5
    heights = [b.get_height() for b in boxes]
    assert heights[0] == heights[4] > heights[1] == heights[3] > heights[2]  # a larger layer, a taller box
    # the sizes are compressed, so the 8-number code stays visible beside the 784 pixels
    assert heights[1] / heights[0] > 256 / 784 and heights[2] / heights[0] > 0.15
    shown = texts(ax)
    assert shown.count("784") == 2 and shown.count("256") == 2 and "8" in shown
    assert {"input", "code z", "output", "Linear+Sigmoid", "Encoder", "Decoder"} <= set(shown)
    assert shown.count("Linear+ReLU") == 3
    assert len(ax.get_lines()) == 2  # one bracket per group


@pytest.mark.parametrize("sizes, names, ops", [
    ([784, 10], ["in"], ["op"]), ([784, 10], ["in", "out"], []),
    ([784, 10], ["in", "out"], ["a", "b"]), ([784, 0], ["in", "out"], ["op"]),
])
def test_draw_network_rejects_mismatched_lists(sizes, names, ops):
    with pytest.raises(ValueError):
        plots.draw_network(sizes, names, ops)


def test_draw_network_uses_the_given_axes():
    fig, ax = plt.subplots()
    assert plots.draw_network([3, 2], ["a", "b"], ["f"], ax=ax) is ax and fig.axes == [ax]


# --------------------------------------------------------------------------- curves


@pytest.fixture(scope="module")
def real_history(mnist_train_subset, mnist_test_subset):
    """A tiny real training run (3 epochs on 512 images) with test losses."""
    torch.manual_seed(0)
    model = aelib.AutoEncoder(latent_dim=4, hidden_dim=32)
    return aelib.train(model, mnist_train_subset[0][:512], epochs=3, batch_size=64,
                       test_images=mnist_test_subset[0][:256], verbose=False)


def test_loss_curves_draw_train_and_test_losses(real_history):
    ax = plots.plot_loss_curves(real_history, label="k=4 ")
    train_line, test_line = ax.get_lines()
    assert list(train_line.get_xdata()) == [1, 2, 3]
    assert list(train_line.get_ydata()) == real_history["train_loss"]
    assert list(test_line.get_ydata()) == real_history["test_loss"]
    assert list(ax.get_xticks()) == [1, 2, 3] and ax.get_xlabel() == "epoch"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "k=4 train (mean over the epoch)", "k=4 test (after the epoch)"]


def test_loss_curves_draw_the_articles_curve_for_its_epochs(real_history):
    history = dict(real_history, test_loss=[])
    fig, ax = plt.subplots()
    assert plots.plot_loss_curves(history, article=aelib.ARTICLE_LOSSES[8], ax=ax) is ax
    train_line, article = ax.get_lines()  # no test curve without test losses
    assert list(article.get_xdata()) == list(range(1, 11))  # epoch 1 is the first value
    assert list(article.get_ydata()) == aelib.ARTICLE_LOSSES[8]
    assert article.get_linestyle() == "--"
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "article (train)"


@pytest.mark.parametrize("history", [{"epoch": [1, 2]}, {"epoch": [1, 2], "train_loss": [0.1]}, {}])
def test_loss_curves_reject_a_bad_history_naming_what_to_pass(history):
    with raises_naming(ValueError, "'epoch'", "'train_loss'", "aelib.train"):
        plots.plot_loss_curves(history)


def test_code_size_axis_is_log2_with_one_tick_per_size():
    _, ax = plt.subplots()
    ax.plot([2, 8, 32], [0.04, 0.03, 0.01])
    assert plots.code_size_axis(ax, [32, 2, 8, 8]) is ax
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert list(ax.get_xticks()) == [2, 8, 32]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "8", "32"]
    assert ax.get_xlabel() == "code size k (log2 scale)"
    with raises_naming(ValueError, "sizes", "[0, 4]"):
        plots.code_size_axis(ax, [0, 4])


def test_code_size_axis_names_the_live_dims_and_marks_a_collapsed_model():
    _, ax = plt.subplots()
    plots.code_size_axis(ax, [2, 8, 32], live={2: 0, 8: 4})  # 32 not given: its plain size
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2\n0 (collapsed)", "8\n4", "32"]
    assert "live dims" in ax.get_xlabel()


@pytest.fixture
def by_k_frame() -> pd.DataFrame:
    return pd.DataFrame({"k": [2, 4, 8] * 2, "sampler": ["diagonal"] * 3 + ["full"] * 3,
                         "precision": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                         "recall": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})


def test_plot_by_k_one_panel_per_column_one_line_per_hue(by_k_frame):
    fig = plots.plot_by_k(by_k_frame, {"precision": "precision (%)", "recall": "recall"},
                          hue="sampler", real={"precision": 0.9}, title="by k")
    assert len(fig.axes) == 2 and fig._suptitle.get_text() == "by k"
    for ax, column, label in zip(fig.axes, ["precision", "recall"], ["precision (%)", "recall"]):
        data = [line for line in ax.get_lines() if len(line.get_xdata()) == 3]
        assert [list(line.get_ydata()) for line in data] == [
            by_k_frame[column][:3].tolist(), by_k_frame[column][3:].tolist()]
        assert all(list(line.get_xdata()) == [2, 4, 8] for line in data)
        assert ax.get_ylabel() == label and ax.get_xscale() == "log"
        assert list(ax.get_xticks()) == [2, 4, 8]
    dashed = [[line for line in ax.get_lines() if line.get_linestyle() == "--"] for ax in fig.axes]
    assert [len(f) for f in dashed] == [1, 0] and list(dashed[0][0].get_ydata()) == [0.9, 0.9]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["diagonal", "full", "real test images"]
    assert fig.axes[1].get_legend() is None  # one legend for the figure


def test_plot_by_k_marks_live_dims_on_every_panel(by_k_frame):
    fig = plots.plot_by_k(by_k_frame, {"precision": "P", "recall": "R"}, hue="sampler", live={2: 0, 4: 1, 8: 3})
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["2\n0 (collapsed)", "4\n1", "8\n3"]


# ------------------------------------------------------------------------ code space


def face(patch) -> tuple:
    return tuple(np.round(patch.get_facecolor()[:3], 3))


GREY = tuple(np.round(to_rgba("0.6")[:3], 3))


@pytest.mark.parametrize("k, dead", [(2, []), (8, [1, 4]), (13, [0, 12])])
def test_code_distributions_one_histogram_per_dimension_dead_ones_grey(k, dead):
    codes = relu_codes(400, k, dead)
    if dead:
        codes[:2, dead[0]] = 1.0  # active in 0.5% of the codes: still dead, shown in its title
    fig = plots.plot_code_distributions(codes, dead)
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == k
    expected = [f"dim {i}" for i in range(k)]
    for i in dead:  # a dead dimension's title gives its share of codes > 0
        expected[i] += " (dead, 0.5% > 0)" if i == dead[0] else " (dead, 0.0% > 0)"
    assert [ax.get_title() for ax in panels] == expected
    colours = [{face(p) for p in ax.patches} for ax in panels]
    assert all(len(c) == 1 for c in colours)
    assert [c == {GREY} for c in colours] == [i in dead for i in range(k)]
    assert fig._suptitle.get_text() == f"Each code dimension: 400 codes, k = {k}, {len(dead)} dead"


@pytest.mark.parametrize("k, step", [(40, 2), (100, 4)])
def test_code_distributions_for_many_dimensions_one_box_each(k, step):
    dead = [3, k - 5]
    fig = plots.plot_code_distributions(relu_codes(200, k, dead), dead)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, matplotlib.patches.PathPatch)]
    assert len(boxes) == k
    grey = sorted(round(p.get_path().vertices[:, 0].mean()) for p in boxes if face(p) == GREY)
    assert grey == dead  # the dead dimensions' boxes are grey, the others not
    # every step-th dimension is labelled, with its own number
    assert list(ax.get_xticks()) == list(range(0, k, step))
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(d) for d in range(0, k, step)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["live", "dead"]


def test_code_distributions_rejects_dead_dims_out_of_range():
    with raises_naming(ValueError, "[5]", "4"):
        plots.plot_code_distributions(relu_codes(10, 4), dead=[5])


def test_latent_scatter_plots_the_chosen_dims_coloured_by_digit(mnist_test_subset):
    labels = mnist_test_subset[1][:300]
    codes = relu_codes(300, 5, seed=1)
    ax = plots.plot_latent_scatter(codes, labels, dims=(3, 1), title="codes")
    offsets = np.asarray(ax.collections[0].get_offsets())
    np.testing.assert_allclose(offsets, codes[:, [3, 1]].numpy(), rtol=1e-6)
    colours = np.asarray(ax.collections[0].get_facecolors())[:, :3]
    same_digit = (labels[:, None] == labels[None, :]).numpy()
    same_colour = (np.abs(colours[:, None] - colours[None, :]).sum(-1) < 1e-6)
    assert (same_digit == same_colour).all()  # one colour per digit
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        str(d) for d in sorted(labels.unique().tolist())]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("code dim 3", "code dim 1", "codes")
    with raises_naming(ValueError, "dims", "(2, 2)"):
        plots.plot_latent_scatter(codes, labels, dims=(2, 2))
    with raises_naming(ValueError, "300", "299"):
        plots.plot_latent_scatter(codes, labels[:299])


def test_correlation_heatmap_shows_the_correlations():
    g = torch.Generator().manual_seed(2)
    base = torch.randn(500, 1, generator=g)
    codes = torch.cat([base, -base + 0.1 * torch.randn(500, 1, generator=g),
                       torch.randn(500, 2, generator=g), torch.zeros(500, 1)], dim=1)
    ax = plots.plot_correlation(codes, dims=[0, 1, 3])
    values = np.asarray(ax.collections[0].get_array()).reshape(3, 3)
    np.testing.assert_allclose(values, torch.corrcoef(codes[:, [0, 1, 3]].T).numpy(), rtol=1e-5,
                               atol=1e-6)
    assert values[0, 1] < -0.9
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "3"]
    assert f"{values[0, 1]:.2f}" in texts(ax)  # annotated with the values
    with raises_naming(ValueError, "[0, 4]", "dims=latent.live_dims(codes)"):
        plots.plot_correlation(codes, dims=[0, 4])  # dimension 4 never changes
    with raises_naming(ValueError, "[0]"):
        plots.plot_correlation(codes, dims=[0])


# ------------------------------------------------------------------- latent explorer


def test_latent_explorer_is_none_outside_jupyter():
    assert plots.latent_explorer(aelib.AutoEncoder(latent_dim=3), torch.zeros(3), [0], [0.0],
                                 [1.0]) is None


@pytest.fixture
def in_jupyter(monkeypatch):
    import IPython

    kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setattr(IPython, "get_ipython", lambda: kernel)


def test_latent_explorer_redraws_when_a_slider_moves(in_jupyter, trained_ae, small_classifier):
    base = torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 0.0])
    box = plots.latent_explorer(trained_ae, base, dims=[0, 2], low=[0.0, -1.0], high=[10.0, 9.0],
                                clf=small_classifier)
    sliders = box.children[0].children
    picture, verdict = box.children[1].children
    assert [s.description for s in sliders] == ["dim 0", "dim 2"]
    assert [(s.value, s.min, s.max) for s in sliders] == [(1.0, 0.0, 10.0), (3.0, -1.0, 9.0)]
    before = picture.value
    assert before[:8] == b"\x89PNG\r\n\x1a\n"
    sliders[1].value = 8.0
    assert picture.value != before
    code = base.clone()
    code[2] = 8.0
    with torch.no_grad():
        probs = torch.softmax(small_classifier(trained_ae.decode(code[None])), dim=1)[0]
    assert f"{int(probs.argmax())} " in verdict.value and f"{float(probs.max()):.2f}" in verdict.value
    assert torch.equal(base, torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 0.0]))  # not changed
    # a notebook that is not run yet shows the plain-text form: one short line, not the widget tree
    assert box._repr_mimebundle_()["text/plain"] == "Latent explorer: run the notebook to move its sliders"


def test_latent_explorer_rejects_mismatched_ranges(in_jupyter):
    with raises_naming(ValueError, "2 dims", "1 lows", "2 highs"):
        plots.latent_explorer(aelib.AutoEncoder(latent_dim=3), torch.zeros(3), dims=[0, 1],
                              low=[0.0], high=[1.0, 1.0])
