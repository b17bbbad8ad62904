"""The digit classifier: shapes, features, training, the cache, and accuracy()."""

import pytest
import torch
from torch import nn

import aelib
from aelib.classifier import (
    FEATURE_DIM,
    DigitClassifier,
    accuracy,
    extract_features,
    predict_proba,
    train_or_load_classifier,
)


@pytest.fixture(scope="module")
def mnist_subset(mnist_train, mnist_test):
    images, labels = mnist_train
    test_images, test_labels = mnist_test
    return images[:3000], labels[:3000], test_images[:1000], test_labels[:1000]


def test_shapes_flat_and_square_inputs_agree():
    torch.manual_seed(0)
    model = DigitClassifier().eval()
    flat = torch.rand(5, 784)
    assert model(flat).shape == (5, 10)
    assert model.features(flat).shape == (5, FEATURE_DIM)
    assert torch.allclose(model(flat), model(flat.reshape(5, 1, 28, 28)))
    # features are after a ReLU, and the logits are a linear map of them
    feats = model.features(flat)
    assert (feats >= 0).all()
    assert torch.allclose(model.head[1](feats), model(flat), atol=1e-6)
    with pytest.raises(ValueError, match="784"):
        model(torch.rand(5, 100))


def test_predict_proba_rows_are_distributions_and_batching_does_not_matter():
    torch.manual_seed(0)
    model = DigitClassifier()
    x = torch.rand(37, 784)
    p_small = predict_proba(model, x, batch_size=8)
    p_big = predict_proba(model, x, batch_size=1000)
    assert p_small.shape == (37, 10)
    assert torch.allclose(p_small.sum(dim=1), torch.ones(37), atol=1e-5)
    assert torch.allclose(p_small, p_big, atol=1e-6)
    assert extract_features(model, x, batch_size=10).shape == (37, FEATURE_DIM)
    assert model.training  # the helpers restore the mode they found


class _FixedLogits(nn.Module):
    """A fake classifier: image i gets the class stored in its first pixel."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return nn.functional.one_hot(x[:, 0].long(), 10).float() * 5.0 + self.dummy


def test_accuracy_on_a_hand_made_case():
    images = torch.zeros(4, 784)
    images[:, 0] = torch.tensor([3.0, 1.0, 7.0, 7.0])  # predictions 3, 1, 7, 7
    labels = torch.tensor([3, 1, 2, 7])                 # three of four right
    assert accuracy(_FixedLogits(), images, labels, batch_size=3) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="one label per image"):
        accuracy(_FixedLogits(), images, labels[:3])


def test_short_training_on_a_subset_beats_chance_clearly(mnist_subset):
    images, labels, test_images, test_labels = mnist_subset
    torch.manual_seed(0)
    model = DigitClassifier()
    before = accuracy(model, test_images, test_labels)
    history = aelib.train(model, images, epochs=3, labels=labels, seed=0, device="cpu",
                          verbose=False)
    after = accuracy(model, test_images, test_labels)
    assert history["train_loss"][-1] < 1.0  # guessing costs log(10) = 2.30
    assert before < 0.3
    assert after > 0.7  # chance is 0.1


def test_cache_hit_returns_the_same_weights(tmp_path, monkeypatch, mnist_subset):
    images, labels, test_images, test_labels = mnist_subset
    # Train on a small subset so the test is fast; the cache logic is what is tested.
    monkeypatch.setattr(aelib.classifier, "load_mnist",
                        lambda train=True: (images[:1000], labels[:1000]) if train
                        else (test_images[:200], test_labels[:200]))
    model, history = train_or_load_classifier(epochs=1, cache_dir=tmp_path, verbose=False,
                                              device="cpu")
    files = list(tmp_path.glob("classifier_*.pt"))
    assert len(files) == 1 and "epochs=1" in files[0].name
    assert set(history) >= {"train_loss", "test_loss", "test_accuracy"}
    again, history2 = train_or_load_classifier(epochs=1, cache_dir=tmp_path, verbose=False,
                                               device="cpu")
    assert history2 == history
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert not again.training
