"""The code exercises of notebooks 01-03, proved three ways as the notebooks hold them: the stub
is "not attempted", the folded solution "correct", and plausible wrong answers "wrong" with a
hint that names what is off; under the notebooks' default parameters and one other set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import define
from torch import nn

import aelib
from aelib import exercises


def toy_data(seed: int, noise: float, n: int):
    """Notebook 01's data: noisy samples of y = x^2 + x on [-3, 2], training and held-out."""
    rng = np.random.default_rng(seed)
    x_train = rng.uniform(-3, 2, n)
    y_train = x_train**2 + x_train + rng.normal(0, noise, n)
    x_test = rng.uniform(-3, 2, 100)
    return x_train, y_train, x_test, x_test**2 + x_test + rng.normal(0, noise, 100)


@pytest.mark.parametrize("seed, noise, n", [(0, 0.3, 200), (3, 0.1, 50)])
def test_feature_exercise(exercise_code, seed, noise, n):
    stub, solution = exercise_code("01_function_fitting.ipynb", "feature")
    x_train, y_train, x_test, y_test = data = toy_data(seed, noise, n)
    columns = lambda x: np.stack([x, x**2, np.ones_like(x)], axis=1)  # method (2): x, t = x^2, intercept
    target_mse = float(np.mean((columns(x_test) @ np.linalg.lstsq(columns(x_train), y_train, rcond=None)[0]
                               - y_test) ** 2))
    check = lambda fn: exercises.check_feature(fn, *data, target_mse=target_mse)
    assert check(define(stub, "my_feature")).state == "not attempted"
    correct = check(define(solution, "my_feature"))
    assert correct.state == "correct" and f"{target_mse:.4f}" in correct.message
    half = check(lambda x: x**2)  # forgets the x term: better than a line, far from method (2)
    assert half.state == "wrong" and "有进步" in half.message
    useless = check(np.sin)
    assert useless.state == "wrong" and "没帮上忙" in useless.message
    two_columns = check(lambda x: np.stack([x, x**2], axis=1))  # method (2) again, not one column
    assert two_columns.state == "wrong" and f"({n}, 2)" in two_columns.message


@pytest.mark.parametrize("k", [8, 5])
def test_decoder_exercise(exercise_code, k):
    stub, solution = exercise_code("02_autoencoder_model.ipynb", "decoder")
    assert exercises.check_decoder(define(stub, "make_decoder"), k).state == "not attempted"
    correct = exercises.check_decoder(define(solution, "make_decoder"), k)
    n_params = sum(p.numel() for p in aelib.AutoEncoder(latent_dim=k).decoder.parameters())
    assert correct.state == "correct" and f"{n_params:,}" in correct.message
    wrong = {  # a plausible slip -> what the hint must name
        "no sigmoid": (lambda k: nn.Sequential(nn.Linear(k, 256), nn.ReLU(), nn.Linear(256, 784)), "(0, 1)"),
        "input width": (lambda k: nn.Sequential(nn.Linear(k + 1, 256), nn.ReLU(), nn.Linear(256, 784),
                                                nn.Sigmoid()), f"{k + 1}x256"),
        "hidden width": (lambda k: nn.Sequential(nn.Linear(k, 128), nn.ReLU(), nn.Linear(128, 784),
                                                 nn.Sigmoid()), f"Linear({k}, 128)"),
        "no relu": (lambda k: nn.Sequential(nn.Linear(k, 256), nn.Linear(256, 784), nn.Sigmoid()),
                    f"Linear({k}, 256) → Linear"),
        "output size": (lambda k: nn.Sequential(nn.Linear(k, 256), nn.ReLU(), nn.Linear(256, 28),
                                                nn.Sigmoid()), "[64, 28]"),
    }
    for slip, (make, named) in wrong.items():
        feedback = exercises.check_decoder(make, k)
        assert feedback.state == "wrong" and named in feedback.message, (slip, feedback)


@pytest.mark.parametrize("k, seed", [(8, 0), (3, 1)])
def test_training_step_exercise(exercise_code, mnist_train_subset, k, seed):
    stub, solution = exercise_code("03_training.ipynb", "training_step")
    torch.manual_seed(seed)
    model, x = aelib.AutoEncoder(latent_dim=k), mnist_train_subset[0][:64]
    before = [p.detach().clone() for p in model.parameters()]
    check = lambda fn: exercises.check_training_step(fn, model, x)
    assert check(define(stub, "training_step")).state == "not attempted"
    assert check(define(solution, "training_step")).state == "correct"
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "the check trains copies"

    def step(model, optimizer, x, zero_grad=True, update=True, target=None):
        loss = F.mse_loss(model(x)[1], x if target is None else target)
        optimizer.zero_grad() if zero_grad else None
        loss.backward()
        optimizer.step() if update else None
        return loss.item()

    slips = {  # a plausible slip -> what the hint must name
        "no zero_grad": (lambda *a: step(*a, zero_grad=False), "第二步"),
        "no step": (lambda *a: step(*a, update=False), "没变"),
        "wrong target": (lambda m, o, x: step(m, o, x, target=torch.zeros_like(x)), "均方误差"),
    }
    for slip, (fn, named) in slips.items():
        feedback = check(fn)
        assert feedback.state == "wrong" and named in feedback.message, (slip, feedback)
