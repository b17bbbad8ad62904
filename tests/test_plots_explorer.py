"""The interactive latent explorer builds, and moving a slider changes the image."""

import pytest
import torch

from aelib import AutoEncoder, plots


def test_image_png_is_an_enlarged_png():
    from io import BytesIO

    from PIL import Image

    png = plots.image_png(torch.rand(784), scale=3)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(BytesIO(png)).size == (84, 84)


def test_explorer_updates_the_picture_when_a_slider_moves():
    torch.manual_seed(0)
    model = AutoEncoder(latent_dim=3).eval()
    base = torch.tensor([1.0, 2.0, 3.0])
    box = plots.latent_explorer(model, base, dims=[0, 2], low=[0.0, 0.0], high=[10.0, 10.0])
    sliders = box.children[0].children
    picture = box.children[1].children[0]
    assert [s.description for s in sliders] == ["dim 0", "dim 2"]
    assert [s.value for s in sliders] == [1.0, 3.0]
    before = picture.value
    sliders[1].value = 9.0
    assert picture.value != before
    assert box.children[1].children[1].value == ""  # no classifier, no verdict


def test_explorer_rejects_mismatched_ranges():
    model = AutoEncoder(latent_dim=3)
    with pytest.raises(ValueError, match="one low and one high"):
        plots.latent_explorer(model, torch.zeros(3), dims=[0, 1], low=[0.0], high=[1.0, 1.0])
