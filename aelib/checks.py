"""The argument checks every module shares, and the image size they check against (imports nothing from aelib)."""

import operator

import numpy as np
import torch

IMAGE_SIDE, IMAGE_PIXELS = 28, 28 * 28


def whole_number(name: str, value: object, low: int = 1, high: int | None = None, hint: str = "") -> int:
    """``value`` as an int if it is a whole number of any library (``np.int64(8)``, a 0-d
    tensor; not a bool) from ``low`` to ``high``, else a ValueError that says so."""
    boolean = isinstance(value, (bool, np.bool_)) or getattr(value, "dtype", None) == torch.bool
    try:
        number = None if boolean else operator.index(value)
    except TypeError:  # a float, a string, a tensor of floats or of several numbers, ...
        number = None
    if number is None or number < low or (high is not None and number > high):
        limits = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be a whole number {limits}, got {value!r}{hint}")
    return number


def flat_images(x: torch.Tensor) -> torch.Tensor:
    if x.ndim < 2 or x.shape[1:].numel() != IMAGE_PIXELS:
        raise ValueError(f"expected a batch of images [N, {IMAGE_PIXELS}] or [N, 1, 28, 28], got "
                         f"{tuple(x.shape)}; for one image use x.unsqueeze(0)")
    return x.reshape(len(x), IMAGE_PIXELS)
