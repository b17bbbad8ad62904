"""Shared fixtures: real MNIST from the data root (``$AELIB_DATA_DIR``, else ``data/``),
loaded once per session; two small models trained on subsets; every figure closed after
each test. Shared helpers (``from conftest import ...``): the repository and its notebooks,
``raises_naming`` (an error and the facts its message must carry), ``seeded`` models,
``define`` (a notebook cell's function).

Training here always runs on subsets (one epoch on all 60,000 images takes seconds).
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import aelib  # noqa: E402
from aelib import latent  # noqa: E402

SUBSET = 2048  # training images used where only the behaviour of the loop matters
ROOT = Path(__file__).resolve().parent.parent  # the repository
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@contextmanager
def raises_naming(exc_type: type[BaseException], *facts: object):
    """``pytest.raises(exc_type)`` whose message holds each fact (``str(fact)``): the bad value, the
    argument or variable to change, the path, the command to run; never the wording around them."""
    with pytest.raises(exc_type) as info:
        yield info
    message = str(info.value)
    missing = [str(fact) for fact in facts if str(fact) not in message]
    assert not missing, f"the {exc_type.__name__} does not name {missing}: {message!r}"


def seeded(cls: type[nn.Module] = aelib.AutoEncoder, seed: int = 0, **kwargs) -> nn.Module:
    """``cls(**kwargs)`` with the initial weights of ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return cls(**kwargs)


def notebook_code(path: Path) -> str:
    """The code cells of a notebook, joined."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def define(source: str, name: str):
    """What ``name`` is after running a cell's ``source`` with the names the notebooks import."""
    namespace = {"np": np, "torch": torch, "nn": nn, "F": F, "latent": latent}
    exec(source, namespace)
    return namespace[name]


@pytest.fixture(autouse=True)
def close_figures():
    """Close every figure a test opened (matplotlib keeps them alive otherwise)."""
    yield
    plt.close("all")


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
    """The first ``SUBSET`` training images and labels."""
    images, labels = mnist_train
    return images[:SUBSET], labels[:SUBSET]


@pytest.fixture(scope="session")
def mnist_test_subset(mnist_test) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 512 test images and labels."""
    images, labels = mnist_test
    return images[:512], labels[:512]


@pytest.fixture(scope="session")
def trained_ae(mnist_train_subset) -> aelib.AutoEncoder:
    """The article's autoencoder (k = 6) after 3 epochs on the training subset, in eval
    mode on the CPU. Tests that switch its mode must switch it back."""
    torch.manual_seed(0)
    model = aelib.AutoEncoder(latent_dim=6)
    aelib.train(model, mnist_train_subset[0], epochs=3, device="cpu", verbose=False)
    return model


@pytest.fixture(scope="session")
def small_classifier(mnist_train) -> aelib.DigitClassifier:
    """A DigitClassifier after 2 epochs on 3,000 training images (about 85% accurate on
    the test set, chance is 10%), in eval mode on the CPU."""
    images, labels = mnist_train
    torch.manual_seed(0)
    clf = aelib.DigitClassifier()
    aelib.train(clf, images[:3000], labels[:3000], epochs=2, lr=2e-3, device="cpu", verbose=False)
    return clf


@pytest.fixture(autouse=True)
def no_shared_or_cache_only_mode(monkeypatch):
    """Tests start without a hub's shared cache and without cache-only mode (CI sets it for notebooks)."""
    monkeypatch.delenv("AELIB_SHARED_CHECKPOINT_DIR", raising=False)
    monkeypatch.delenv("AELIB_CACHE_ONLY", raising=False)


@pytest.fixture(scope="session")
def same_weights():
    """``same_weights(a, b)``: whether two models hold equal tensors under the same names."""
    def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k].to(sa[k].device)) for k in sa)
    return same


@pytest.fixture
def small_mnist(monkeypatch, mnist_train, mnist_test):
    """The model cache (and the code-size sweep) train on 512 training and 256 test images;
    returns the list of the ``train()`` calls it makes (their keyword arguments, and "model")."""
    from aelib import cache

    calls, real_train = [], cache.train

    def subset(train=True, root=None):
        images, labels = mnist_train if train else mnist_test
        n = 512 if train else 256
        return images[:n], labels[:n]

    def counting_train(model, *args, **kwargs):
        calls.append({"model": model, **kwargs})
        return real_train(model, *args, **kwargs)

    monkeypatch.setattr(cache, "load_mnist", subset)
    monkeypatch.setattr(latent, "load_mnist", subset)
    monkeypatch.setattr(cache, "train", counting_train)
    return calls


@pytest.fixture
def gz_only_root(tmp_path):
    """A fresh data root whose MNIST/raw holds only the four official ``.gz`` files (as a new laptop's)."""
    import shutil

    from aelib.mnist import MNIST_FILES

    raw = tmp_path / "fresh-root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copyfile(aelib.data_root() / "MNIST" / "raw" / name, raw / name)
    return tmp_path / "fresh-root"


@pytest.fixture(scope="session")
def exercise_code():
    """``exercise_code(notebook, name)`` -> ``(stub, solution)``: the source of the code cell tagged
    ``exercise:NAME`` and the Python block of the Markdown cell tagged ``solution:NAME`` in
    ``notebooks/NOTEBOOK`` (e.g. ``"06_naive_sampling.ipynb"``), as the attendee sees them."""
    def find(notebook: str, name: str) -> tuple[str, str]:
        cells = json.loads((ROOT / "notebooks" / notebook).read_text("utf-8"))["cells"]
        tagged = {tag: "".join(c["source"]) for c in cells for tag in c.get("metadata", {}).get("tags", [])}
        stub, solution = tagged[f"exercise:{name}"], tagged[f"solution:{name}"]
        return stub, re.search(r"```python\n(.*?)```", solution, re.S).group(1)

    return find
