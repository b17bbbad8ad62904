"""Checks for the code exercises of notebooks 01-06. Like Kaggle Learn's ``q1.check()``, a check
answers in one of three states: not attempted (the stub still returns ``...`` or raises
``NotImplementedError``), correct (with a number measured on the attendee's own code), or wrong
(with a hint that names what is off, never the answer). Checks compare with aelib's own
reference computation, never with pasted numbers. Messages are Chinese: they speak to attendees."""

from dataclasses import dataclass

import torch

STATES = {"not attempted": "还没动手", "correct": "正确", "wrong": "还不对"}


@dataclass(frozen=True)
class Feedback:
    """What a check says: ``state`` (a key of :data:`STATES`) and a sentence for the attendee."""

    state: str
    message: str

    def _repr_markdown_(self) -> str:
        return f"**{STATES[self.state]}**：{self.message}"

    def __str__(self) -> str:
        return f"{STATES[self.state]}：{self.message}"


def attempt(fn, *args):
    """Call the attendee's ``fn(*args)``: ``(result, None)``, or ``(None, Feedback)`` for a stub or a crash."""
    try:
        result = fn(*args)
    except NotImplementedError:
        result = ...
    except Exception as exc:  # the attendee's code failed: say how, as a hint
        return None, Feedback("wrong", f"你的代码出错了：`{type(exc).__name__}: {exc}`。")
    if result is ... or result is None:
        return None, Feedback("not attempted", "把上面代码里的 `...` 换成你的代码，再运行这两格。")
    return result, None


# notebooks 04-05
def check_worst_images(fn, model, images, n: int) -> Feedback:
    """04: ``fn(model, images, n)`` -> indices of the ``n`` images with the largest per-image MSE (any order)."""
    from .latent import reconstruction_errors
    result, feedback = attempt(fn, model, images, n)
    got, feedback = (None, feedback) if feedback else attempt(torch.as_tensor, result)
    errors = reconstruction_errors(model, images)
    if feedback or got.shape != (n,) or got.is_floating_point() or not ((got >= 0) & (got < len(errors))).all():
        return feedback or Feedback("wrong", f"要 {n} 个小于 {len(errors)} 的整数下标，你返回的是形状 {tuple(got.shape)} 的 "
                                    f"`{got.dtype}`" + ("：误差要每张图一个数，对它的 784 个像素求平均。"
                                    if got.ndim == 2 or (got.numel() and got.max() >= len(errors)) else "。"))
    mine = errors[got.long()].sort(descending=True).values
    if mine.allclose(errors.topk(n).values):
        return Feedback("correct", f"这 {n} 张的平均误差是全部 {len(errors):,} 张平均的 {mine.mean() / errors.mean():.1f} 倍。")
    return Feedback("wrong", "这是重建得**最好**的几张：排序方向反了。" if mine.flip(0).allclose(errors.topk(n, largest=False).values)
                    else "这些图的误差不是最大的那几个：每张图的误差是它 784 个像素平方差的平均。")


def check_dead_dims(fn, codes) -> Feedback:
    """05: ``fn(codes)`` -> the dead dimensions of ``codes [N, k]`` (> 0 in under 1% of rows), like ``latent.dead_dims``."""
    from .latent import dead_dims
    result, feedback = attempt(fn, codes)
    got, feedback = (None, feedback) if feedback else attempt(torch.as_tensor, result)
    if feedback or got.ndim != 1 or got.dtype == torch.bool or (got.is_floating_point() and got.numel() > 0):
        return feedback or Feedback("wrong", "你返回的是一个数，像是死维度的**个数**；要的是它们的**编号**（比如一个列表）。" if got.ndim == 0
                                    else f"要的是死维度的编号（整数），你返回的是形状 {tuple(got.shape)} 的 `{got.dtype}`。")
    got, want, k = sorted(set(got.tolist())), dead_dims(codes, rule="relu"), codes.shape[1]
    if got == want:
        return Feedback("correct", f"这组 {k} 维编码里" + (f"有 {len(want)} 个死维度：第 {'、'.join(map(str, want))} 维。" if want else "没有死维度。"))
    return Feedback("wrong", "编号差了 1：维度从 0 数起。" if want and got == [d + 1 for d in want] else
                    f"编号要小于 {k}：每个维度算一个比例（对图像那一维求平均）。" if max(got, default=0) >= k or min(got, default=0) < 0 else
                    ("有活维度被你算成了死维度" if set(got) - set(want) else "漏掉了死维度")
                    + "：规则看的是取值 > 0 的图像占多少（不到 1% 才算死），不是均值接近不接近 0。")
