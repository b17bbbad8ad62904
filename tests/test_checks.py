"""aelib.checks: the whole-number check every module uses (its rule is tested here, once; other
modules' tests only show that their arguments go through it) and the image-batch check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import raises_naming

from aelib.checks import flat_images, whole_number


@pytest.mark.parametrize("value, low, high", [
    (1, 1, None), (7, 1, None), (2, 2, 5), (5, 2, 5), (0, 0, None), (np.int64(8), 1, None), (np.int32(8), 1, None),
    (np.uint8(8), 1, None), (torch.tensor(8), 1, None), (torch.tensor(8, dtype=torch.int16), 1, None),
    (np.array(8), 1, None),
])
def test_whole_numbers_of_any_library_within_the_limits_come_back_as_int(value, low, high):
    number = whole_number("x", value, low, high)
    assert number == int(value) and type(number) is int


@pytest.mark.parametrize("value, low, high", [
    (0, 1, None), (-3, 1, None), (1, 2, None), (6, 2, 5), (1, 2, 5), (2.0, 1, None), (True, 1, None),
    ("3", 1, None), (None, 1, None), (np.True_, 1, None), (torch.tensor(True), 1, None),
    (torch.tensor(2.0), 1, None), (np.float64(2.0), 1, None), (np.int64(0), 1, None),
])
def test_other_values_are_refused_naming_the_argument_the_value_the_limits_and_the_hint(value, low, high):
    limits = (low,) if high is None else (low, high)
    with raises_naming(ValueError, "epochs", repr(value), *limits, "try 10"):
        whole_number("epochs", value, low, high, hint="; try 10")


def test_flat_images_accepts_both_layouts_and_names_a_wrong_shape():
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(flat_images(x), x.reshape(3, 784)) and flat_images(x.reshape(3, 784)).shape == (3, 784)
    for shape in [(784,), (3, 783), (3, 28, 27)]:
        with raises_naming(ValueError, shape, "unsqueeze"):
            flat_images(torch.zeros(shape))
