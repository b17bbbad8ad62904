"""aelib.mnist: MNIST loading (shapes, order, the data-root variable, clear errors offline), and a
fresh data root (only the four .gz files) extracted safely by several processes at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import NOTEBOOKS, notebook_code, raises_naming
from torchvision.datasets import MNIST

from aelib.files import project_root
from aelib.mnist import DATA_ENV_VAR, MNIST_FILES, MNISTUnavailableError, data_root, load_mnist


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Make torchvision's download fail at once (a file:// mirror that does not exist)."""
    monkeypatch.setattr(MNIST, "mirrors", [(tmp_path / "no-mirror").as_uri() + "/"])


def test_the_training_split_is_60000_images_of_bytes_over_255_in_the_official_order(mnist_train):
    images, labels = mnist_train
    assert images.shape == (60_000, 784) and images.dtype == torch.float32
    assert labels.shape == (60_000,) and labels.dtype == torch.int64
    assert images.min() == 0 and images.max() == 1
    assert torch.equal((images[:100] * 255).round() / 255, images[:100])  # the bytes / 255
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]  # the official order


def test_the_test_split_is_10000_images_in_the_official_order(mnist_test):
    images, labels = mnist_test
    assert images.shape == (10_000, 784) and labels.shape == (10_000,)
    assert labels[:3].tolist() == [7, 2, 1] and set(labels.unique().tolist()) == set(range(10))


def test_tensor_dataset_of_load_mnist_is_torchvisions_mnist_with_to_tensor(mnist_train):
    from torchvision.transforms import ToTensor

    dataset = MNIST(str(data_root()), train=True, transform=ToTensor())
    for i in (0, 1, 59_999):
        image, label = dataset[i]
        assert torch.equal(image.reshape(784), mnist_train[0][i]) and label == mnist_train[1][i]


def test_a_fresh_root_is_extracted_and_gives_the_same_data(gz_only_root, offline, mnist_test):
    images, labels = load_mnist(train=False, root=gz_only_root)
    assert torch.equal(images, mnist_test[0]) and torch.equal(labels, mnist_test[1])
    raw = gz_only_root / "MNIST" / "raw"
    assert all((raw / name[:-3]).is_file() for name in MNIST_FILES)
    assert [p.name for p in gz_only_root.iterdir()] == ["MNIST"]  # no temporary folder left


def test_an_interrupted_extraction_leaves_no_partial_file(gz_only_root, offline, monkeypatch, mnist_test):
    def killed_halfway(self):
        Path(self.raw_folder, "train-images-idx3-ubyte").write_bytes(b"\0" * 1000)
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(MNIST, "download", killed_halfway)
        with pytest.raises(KeyboardInterrupt):
            load_mnist(train=False, root=gz_only_root)
    raw = gz_only_root / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == sorted(MNIST_FILES)
    assert torch.equal(load_mnist(train=False, root=gz_only_root)[1], mnist_test[1])  # the next try works


LOADER = textwrap.dedent("""
    import hashlib, sys, time
    from pathlib import Path
    import aelib
    root = Path(sys.argv[1])
    while not (root.parent / "go").exists():
        time.sleep(0.01)
    digest = hashlib.sha256()
    for train in (True, False):
        images, labels = aelib.load_mnist(train=train, root=root)
        digest.update(images.numpy().tobytes()); digest.update(labels.numpy().tobytes())
    print(digest.hexdigest())
""")


def test_three_processes_extracting_a_fresh_root_at_once_all_succeed(gz_only_root, tmp_path):
    env = {**os.environ, "AELIB_NUM_THREADS": "1"}
    loaders = [subprocess.Popen([sys.executable, "-c", LOADER, str(gz_only_root)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    time.sleep(5)  # let all three import aelib and wait at the start line
    (tmp_path / "go").touch()
    outputs = [loader.communicate(timeout=300) for loader in loaders]
    assert [loader.returncode for loader in loaders] == [0, 0, 0], outputs
    assert len({out for out, _ in outputs}) == 1  # the same images and labels in each


def test_the_data_root_variable_relative_to_the_repository(monkeypatch):
    monkeypatch.setenv(DATA_ENV_VAR, "some/data")
    monkeypatch.chdir(project_root() / "notebooks")
    assert data_root() == project_root() / "some" / "data"
    assert data_root("/elsewhere") == Path("/elsewhere")  # an explicit root wins


def test_missing_files_offline_name_the_root_the_variable_and_the_files(monkeypatch, tmp_path, offline):
    empty = tmp_path / "empty-root"
    monkeypatch.setenv(DATA_ENV_VAR, str(empty))
    with raises_naming(MNISTUnavailableError, DATA_ENV_VAR, *(empty / "MNIST" / "raw" / name for name in MNIST_FILES)):
        load_mnist(train=True)


def test_a_corrupt_gz_file_gives_the_error_naming_the_root_the_files_and_the_variable(gz_only_root, offline):
    broken = gz_only_root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:100_000])  # a partial download
    with raises_naming(MNISTUnavailableError, gz_only_root, broken, DATA_ENV_VAR):
        load_mnist(train=True, root=gz_only_root)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_reaches_mnist_through_aelib(path):
    """Offline, only aelib.load_mnist names the data root and the variable to set."""
    assert not re.search(r"torchvision\.datasets|\bMNIST\(", notebook_code(path)), f"{path.name} opens MNIST itself"
