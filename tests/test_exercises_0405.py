"""The code exercises of notebooks 04 and 05, proved three ways as learntools and nbgrader do:
the stub as the notebook holds it gives "not attempted", the folded solution "correct", and a
plausible wrong answer "wrong" with a hint naming what is off; under the notebooks' default
parameters and one other set."""

from __future__ import annotations

import pytest
import torch
from conftest import define

import aelib
from aelib import exercises, latent

WORST = ("04_reconstruction.ipynb", "worst_images")
DEAD = ("05_latent_distribution.ipynb", "dead_dims")


@pytest.fixture(scope="module", params=[8, 3], ids=["k=8 (default)", "k=3"])
def model(request):
    """An untrained article autoencoder of code size k: per-image errors differ enough to rank."""
    torch.manual_seed(request.param)
    return aelib.AutoEncoder(latent_dim=request.param).eval()


@pytest.mark.parametrize("n", [10, 3])
def test_worst_images_stub_solution_and_wrong_answers(exercise_code, model, mnist_test, n):
    stub, solution = exercise_code(*WORST)
    images = mnist_test[0][:1000]  # more images than pixels: a per-pixel index is a valid image index
    check = lambda fn: exercises.check_worst_images(fn, model, images, n)  # noqa: E731
    assert check(define(stub, "worst_images")).state == "not attempted"
    right = check(define(solution, "worst_images"))
    assert right.state == "correct" and "倍" in right.message

    errors = lambda m, x: (latent.reconstruct(m, x) - x).pow(2)  # noqa: E731  [N, 784]
    best = check(lambda m, x, k: errors(m, x).mean(dim=1).topk(k, largest=False).indices)
    assert best.state == "wrong" and "最好" in best.message and "反了" in best.message
    per_pixel = check(lambda m, x, k: errors(m, x).mean(dim=0).topk(k).indices)  # one error per pixel
    assert per_pixel.state == "wrong" and "784" in per_pixel.message
    few = exercises.check_worst_images(lambda m, x, k: errors(m, x).mean(dim=0).topk(k).indices, model, images[:500], n)
    assert few.state == "wrong" and "784" in few.message  # pixel indices, some maybe out of range
    no_mean = check(lambda m, x, k: errors(m, x).topk(k).indices)  # [N, k]: the mean over pixels forgotten
    assert no_mean.state == "wrong" and f"({len(images)}, {n})" in no_mean.message and "784" in no_mean.message
    one_more = check(lambda m, x, k: errors(m, x).mean(dim=1).topk(k + 1).indices)
    assert one_more.state == "wrong" and f"要 {n} 个" in one_more.message and f"({n + 1},)" in one_more.message
    values = check(lambda m, x, k: errors(m, x).mean(dim=1).topk(k).values)  # the errors, not the indices
    assert values.state == "wrong" and "float32" in values.message


def relu_codes(k: int, dead: list[int], n: int = 1000) -> torch.Tensor:
    """ReLU codes [n, k]: the ``dead`` dims are 0 except for a few large values (under 1% of rows,
    so their mean is not near 0); one live dim is small but often > 0 (its mean is near 0)."""
    g = torch.Generator().manual_seed(k)
    codes = torch.relu(torch.randn(n, k, generator=g) * 5 + 3)
    codes[:, dead] = 0.0
    codes[: n // 200, dead] = 400.0  # 0.5% of rows: still dead by the rule, mean 2
    quiet = next(d for d in range(k) if d not in dead)
    codes[:, quiet] = torch.rand(n, generator=g) * 0.02  # live, mean 0.01
    return codes


@pytest.mark.parametrize("k, dead", [(8, [0, 1, 3, 4]), (5, [])], ids=["k=8, four dead", "k=5, none dead"])
def test_dead_dims_stub_solution_and_wrong_answers(exercise_code, k, dead):
    stub, solution = exercise_code(*DEAD)
    codes = relu_codes(k, dead)
    assert latent.dead_dims(codes) == dead  # the codes are what the test says they are
    check = lambda fn: exercises.check_dead_dims(fn, codes)  # noqa: E731
    assert check(define(stub, "find_dead_dims")).state == "not attempted"
    right = check(define(solution, "find_dead_dims"))
    assert right.state == "correct" and (f"{len(dead)} 个死维度" in right.message if dead else "没有死维度" in right.message)

    near_zero_mean = check(lambda c: [d for d in range(c.shape[1]) if c[:, d].mean() < 0.1])
    assert near_zero_mean.state == "wrong" and "活维度" in near_zero_mean.message and "1%" in near_zero_mean.message
    count = check(lambda c: int(((c > 0).float().mean(dim=0) < 0.01).sum()))
    assert count.state == "wrong" and "个数" in count.message and "编号" in count.message
    mask = check(lambda c: (c > 0).float().mean(dim=0) < 0.01)
    assert mask.state == "wrong" and "torch.bool" in mask.message
    per_image = check(lambda c: torch.nonzero((c > 0).float().mean(dim=1) < 0.99).flatten())  # shares over the wrong dim
    assert per_image.state == "wrong" and f"小于 {k}" in per_image.message
    if dead:
        off_by_one = check(lambda c: [d + 1 for d in range(c.shape[1]) if (c[:, d] > 0).float().mean() < 0.01])
        assert off_by_one.state == "wrong" and "从 0 数起" in off_by_one.message
        all_zero = check(lambda c: [d for d in range(c.shape[1]) if (c[:, d] == 0).all()])  # "always", not "almost"
        assert all_zero.state == "wrong" and "漏掉" in all_zero.message
