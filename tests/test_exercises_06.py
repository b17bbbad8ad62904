"""Notebook 06's code exercise (the naive sampler), checked three ways as the attendee meets it:
the stub is "not attempted", the folded solution "correct" (with the classifier's share of the
attendee's own samples), and plausible wrong answers "wrong" with a hint naming what is off;
under the notebook's default parameters (k = 8, N(9, 4)) and another set (k = 6, the recipe
read off a model's own codes)."""

from __future__ import annotations

import pytest
import torch
from conftest import define

import aelib
from aelib import exercises, latent, sampling

NOTEBOOK, NAME = "06_naive_sampling.ipynb", "naive_sampler"


def attendee_function(source: str):
    return define(source, "my_naive_sample")


@pytest.fixture(scope="module", params=["default", "k=6, own recipe"])
def setting(request, trained_ae, mnist_train_subset):
    """(model, dead dims, mean, std) as the check cell passes them."""
    if request.param == "default":
        torch.manual_seed(0)
        return aelib.AutoEncoder(latent_dim=8).eval(), [0, 1, 3, 4], 9.0, 2.0
    return (trained_ae, *sampling.recipe_from_codes(latent.embed_images(trained_ae, mnist_train_subset[0])))


def check(fn, setting, clf):
    model, dead, mean, std = setting
    return exercises.check_naive_sampler(fn, model, clf, dead, mean, std)


def test_the_stub_is_not_attempted(exercise_code, setting, small_classifier):
    stub, _ = exercise_code(NOTEBOOK, NAME)
    assert check(attendee_function(stub), setting, small_classifier).state == "not attempted"


def test_the_solution_is_correct_and_scored_by_the_classifier(exercise_code, setting, small_classifier):
    _, solution = exercise_code(NOTEBOOK, NAME)
    feedback = check(attendee_function(solution), setting, small_classifier)
    assert feedback.state == "correct", feedback.message
    assert "%" in feedback.message and "2,000" in feedback.message  # a share of the attendee's own samples


WRONG = {  # a plausible wrong answer -> what its hint must name
    "std used as the variance": ("z = mean + std ** 2 * torch.randn(n, k); z[:, dead] = 0", "方差"),
    "dead dims left drawn": ("z = mean + std * torch.randn(n, k)", "一个 0 也没有"),
    "dead dims off by one": ("z = mean + std * torch.randn(n, k); z[:, [d + 1 for d in dead]] = 0", "死维度"),
    "codes transposed": ("z = mean + std * torch.randn(k, n); z[dead] = 0", "[n, k]"),
    "mean forgotten": ("z = std * torch.randn(n, k); z[:, dead] = 0", "均值"),
}


@pytest.mark.parametrize("mistake", WRONG)
def test_wrong_answers_get_a_hint_naming_what_is_off(mistake, setting, small_classifier):
    body, hint = WRONG[mistake]
    fn = attendee_function(f"def my_naive_sample(n, dead, k, mean, std):\n    {body}\n    return z\n")
    feedback = check(fn, setting, small_classifier)
    assert feedback.state == "wrong" and hint in feedback.message, feedback.message


def test_a_dead_dimension_left_drawn_is_named(setting, small_classifier):
    model, dead, mean, std = setting
    first = dead[0]
    fn = attendee_function("def my_naive_sample(n, dead, k, mean, std):\n"
                           "    z = mean + std * torch.randn(n, k)\n    z[:, dead[1:]] = 0\n    return z\n")
    feedback = check(fn, setting, small_classifier)
    assert feedback.state == "wrong" and f"第 {first} 维" in feedback.message, feedback.message


def test_a_numpy_answer_is_checked_like_a_tensor(setting, small_classifier):
    """An attendee who draws with NumPy gets the same verdicts (the check converts, it does not crash)."""
    model, dead, mean, std = setting
    right = ("def right(n, dead, k, mean, std):\n    z = np.random.default_rng(0).normal(mean, std, (n, k))\n"
             "    z[:, dead] = 0\n    return z\n")
    assert check(define(right, "right"), setting, small_classifier).state == "correct"
    as_variance = right + "def as_variance(n, dead, k, mean, std):\n    return right(n, dead, k, mean, std ** 2)\n"
    feedback = check(define(as_variance, "as_variance"), setting, small_classifier)
    assert feedback.state == "wrong" and "方差" in feedback.message, feedback.message
