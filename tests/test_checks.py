"""aelib.checks: the whole-number check every module uses (tested here once) and the image-batch check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aelib.checks import flat_images, whole_number


@pytest.mark.parametrize("value, low, high", [(1, 1, None), (7, 1, None), (2, 2, 5), (5, 2, 5), (0, 0, None)])
def test_allowed_values_come_back(value, low, high):
    assert whole_number("x", value, low, high) == value


@pytest.mark.parametrize("value", [np.int64(8), np.int32(8), np.uint8(8), torch.tensor(8),
                                   torch.tensor(8, dtype=torch.int16), np.array(8)])
def test_integers_of_any_library_come_back_as_int(value):
    number = whole_number("latent_dim", value)
    assert number == 8 and type(number) is int


@pytest.mark.parametrize("value, low, high", [
    (0, 1, None), (-3, 1, None), (1, 2, None), (6, 2, 5), (1, 2, 5), (2.0, 1, None), (True, 1, None),
    ("3", 1, None), (None, 1, None), (np.True_, 1, None), (torch.tensor(True), 1, None),
    (torch.tensor(2.0), 1, None), (np.float64(2.0), 1, None), (np.int64(0), 1, None),
])
def test_refused_values_are_named_with_the_argument_the_limits_and_the_hint(value, low, high):
    with pytest.raises(ValueError) as info:
        whole_number("epochs", value, low, high, hint="; try 10")
    message = str(info.value)
    assert "epochs" in message and repr(value) in message and str(low) in message and message.endswith("try 10")
    assert high is None or str(high) in message


def test_flat_images_accepts_both_layouts_and_names_a_wrong_shape():
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(flat_images(x), x.reshape(3, 784)) and flat_images(x.reshape(3, 784)).shape == (3, 784)
    for shape in [(784,), (3, 783), (3, 28, 27)]:
        with pytest.raises(ValueError, match=rf"{shape[-1]}"):
            flat_images(torch.zeros(shape))
