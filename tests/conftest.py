"""Shared fixtures: real MNIST from the default data root, loaded once per test session.

The data root is ``$AELIB_DATA_DIR`` if set (CI points it at ../shared/data), else
``data/`` in the repository.
"""

from __future__ import annotations

import pytest
import torch

import aelib

SUBSET = 2048  # training images used where only the behaviour of the loop matters


@pytest.fixture(scope="session")
def mnist_train() -> tuple[torch.Tensor, torch.Tensor]:
    """The 60,000 training images ``[N, 784]`` and labels, official order."""
    return aelib.load_mnist(train=True)


@pytest.fixture(scope="session")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The 10,000 test images ``[N, 784]`` and labels, official order."""
    return aelib.load_mnist(train=False)


@pytest.fixture(scope="session")
def mnist_train_subset(mnist_train) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``SUBSET`` training images and labels (fast enough for many tests)."""
    images, labels = mnist_train
    return images[:SUBSET], labels[:SUBSET]


@pytest.fixture(scope="session")
def mnist_test_subset(mnist_test) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 512 test images and labels."""
    images, labels = mnist_test
    return images[:512], labels[:512]
