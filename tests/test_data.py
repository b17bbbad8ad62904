"""aelib.data: MNIST loading (shapes, order, the data-root variable, clear errors offline;
every notebook reaches MNIST through it) and the atomic write. The model cache, also in
aelib.data: test_checkpoints.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torchvision.datasets import MNIST

import aelib
from aelib.data import DATA_ENV_VAR, MNIST_FILES, MNISTUnavailableError, atomic_write, data_root, load_mnist

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Make torchvision's download fail at once (a file:// mirror that does not exist)."""
    nowhere = (tmp_path / "no-mirror").as_uri() + "/"
    monkeypatch.setattr(MNIST, "mirrors", [nowhere])


def real_raw_folder() -> Path:
    return data_root() / "MNIST" / "raw"


def linked_root(tmp_path: Path, names) -> Path:
    """A data root whose MNIST/raw holds symbolic links to the given real files."""
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in names:
        (raw / name).symlink_to(real_raw_folder() / name)
    return tmp_path / "root"


def test_training_split(mnist_train):
    images, labels = mnist_train
    assert images.shape == (60_000, 784) and images.dtype == torch.float32
    assert labels.shape == (60_000,) and labels.dtype == torch.int64
    assert images.min() == 0 and images.max() == 1
    # pixels are the bytes / 255: every value is a multiple of 1/255
    assert torch.equal((images[:100] * 255).round() / 255, images[:100])
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]  # the official order
    assert torch.bincount(labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_test_split(mnist_test):
    images, labels = mnist_test
    assert images.shape == (10_000, 784) and images.dtype == torch.float32
    assert labels.shape == (10_000,) and labels.dtype == torch.int64
    assert 0 <= images.min() and images.max() <= 1
    assert labels[:3].tolist() == [7, 2, 1]
    assert set(labels.unique().tolist()) == set(range(10))


def test_explicit_root_matches_default(mnist_test):
    images, labels = load_mnist(train=False, root=data_root())
    assert torch.equal(images, mnist_test[0]) and torch.equal(labels, mnist_test[1])


def test_data_root_variable_is_respected(monkeypatch, tmp_path, offline, mnist_test):
    root = linked_root(tmp_path, MNIST_FILES + tuple(n[:-3] for n in MNIST_FILES))
    monkeypatch.setenv(DATA_ENV_VAR, str(root))
    assert data_root() == root.resolve()
    images, labels = aelib.load_mnist(train=False)
    assert torch.equal(images, mnist_test[0]) and torch.equal(labels, mnist_test[1])

    # an explicit root wins over the variable
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "elsewhere"))
    assert data_root(root) == root.resolve()
    assert torch.equal(load_mnist(train=False, root=root)[1], mnist_test[1])


def test_missing_files_offline_name_root_variable_and_files(monkeypatch, tmp_path, offline):
    empty = tmp_path / "empty-root"
    monkeypatch.setenv(DATA_ENV_VAR, str(empty))
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist(train=True)
    message = str(info.value)
    assert str(empty.resolve()) in message
    assert DATA_ENV_VAR in message
    for name in MNIST_FILES:
        assert str(empty.resolve() / "MNIST" / "raw" / name) in message


def test_corrupt_gz_file_gives_a_clear_error(tmp_path, offline):
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        (raw / name).write_bytes((real_raw_folder() / name).read_bytes())
    broken = raw / "train-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:100_000])  # a partial download
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist(train=True, root=tmp_path / "root")
    message = str(info.value)
    assert f"{broken.resolve()} (MD5 checksum does not match)" in message
    assert "corrupt" in message and DATA_ENV_VAR in message
    # the intact files are not reported as damaged
    assert "t10k-images-idx3-ubyte.gz (MD5" not in message


def test_truncated_extracted_file_gives_a_clear_error(tmp_path, offline):
    names = [n[:-3] for n in MNIST_FILES if n != "t10k-labels-idx1-ubyte.gz"]
    root = linked_root(tmp_path, names)
    broken = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    broken.write_bytes((real_raw_folder() / broken.name).read_bytes()[:5_000])
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist(train=False, root=root)
    message = str(info.value)
    assert f"{broken.resolve()} (5000 bytes, expected 10008)" in message
    assert str(root.resolve()) in message


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_reaches_mnist_through_aelib(path):
    """Offline, only aelib.load_mnist names the data root and the variable to set; a
    notebook that opens torchvision's MNIST itself shows torchvision's raw error instead."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert not re.search(r"torchvision\.datasets|\bMNIST\(", code), (
        f"{path.name} opens MNIST itself; use aelib.load_mnist() (a DataLoader takes "
        f"TensorDataset(*aelib.load_mnist()))")


def test_tensor_dataset_of_load_mnist_is_torchvisions_mnist_with_to_tensor(mnist_train):
    """What a notebook's DataLoader loop gets from TensorDataset(*load_mnist()) is exactly
    what torchvision's MNIST with ToTensor gives (the same pixels, labels and order)."""
    from torchvision.transforms import ToTensor

    dataset = MNIST(str(data_root()), train=True, transform=ToTensor())
    for i in (0, 1, 59_999):
        image, label = dataset[i]
        assert torch.equal(image.reshape(784), mnist_train[0][i]) and label == mnist_train[1][i]


# ------------------------------------------------------------------------- atomic_write


def test_atomic_write_creates_folders_and_a_world_readable_file(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    seen = []

    def write(tmp):
        seen.append(Path(tmp))
        Path(tmp).write_text("new")

    assert atomic_write(target, write) == target
    assert target.read_text() == "new"
    # written under another name in the same folder (so the rename is atomic), then renamed
    assert seen[0] != target and seen[0].parent == target.parent and not seen[0].exists()
    assert target.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_atomic_write_readers_see_the_old_file_until_the_write_is_complete(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def write(tmp):
        Path(tmp).write_text("half")
        assert target.read_text() == "old"  # a reader at this moment sees the old content
        Path(tmp).write_text("new, complete")

    atomic_write(target, write)
    assert target.read_text() == "new, complete"


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_write_leaves_the_old_file_and_no_temp_file(tmp_path, error):
    target = tmp_path / "out.png"
    target.write_bytes(b"old picture")

    def failing(tmp):
        Path(tmp).write_bytes(b"half a pic")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
