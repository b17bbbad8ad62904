"""Checks for the code exercises of notebooks 01-06. Like Kaggle Learn's ``q1.check()``, a check
answers in one of three states: not attempted (the stub still returns ``...`` or raises
``NotImplementedError``), correct (with a number measured on the attendee's own code), or wrong
(with a hint that names what is off, never the answer). Checks compare with aelib's own
computation, never with pasted numbers. Messages are Chinese: they speak to attendees."""

import copy
from dataclasses import dataclass

import numpy as np
import torch

from . import latent, metrics, sampling
from .models import AutoEncoder

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


def check_feature(feature, x_train, y_train, x_test, y_test, target_mse):
    """01: the line ``a·t + b`` on one column ``t = feature(x)``, held-out MSE within 20% of ``target_mse``?"""
    t_train, fail = attempt(feature, x_train)
    t_train, t_test = (None, None) if fail else (np.asarray(t_train, float), np.asarray(feature(x_test), float))
    if fail or t_train.shape not in ((len(x_train),), (len(x_train), 1)):
        return fail or Feedback("wrong", f"`feature(x)` 应给每个 x 一个数：{len(x_train)} 个点要形状 "
                                f"({len(x_train)},)，你的是 {t_train.shape}。")
    fit = lambda a, b: float(np.mean((np.polyval(np.polyfit(a.ravel(), y_train, 1), b.ravel()) - y_test) ** 2))
    yours, line = fit(t_train, t_test), fit(x_train, x_test)
    words = f"直线接在你的特征上，留出 MSE {yours:.4f}（方法二 {target_mse:.4f}，只用 x 的直线 {line:.4f}）"
    if yours <= 1.2 * target_mse + 1e-9:
        return Feedback("correct", words + "，与方法二相差不到 20%。")
    return Feedback("wrong", words + ("：你的特征几乎没帮上忙。" if yours > 0.8 * line else "：有进步，但 y 里还有一部分它没表达出来。"))


def check_decoder(make_decoder, k):
    """02: ``make_decoder(k)`` turns codes [N, k] into images [N, 784] in (0, 1) with the article's layers?"""
    layers = lambda net: " → ".join(f"Linear({m.in_features}, {m.out_features})" if isinstance(m, torch.nn.Linear)
                                    else type(m).__name__ for m in net.modules() if not list(m.children()))
    decoder, fail = attempt(make_decoder, k)
    x_hat, fail = (None, fail) if fail else attempt(decoder, torch.rand(64, k) * 10)  # codes are >= 0
    if fail or tuple(x_hat.shape) != (64, 784):
        return fail or Feedback("wrong", f"64 个编码 [64, {k}] 应变成 [64, 784]，你的得到 {list(x_hat.shape)}。")
    if x_hat.min() <= 0 or x_hat.max() >= 1:
        return Feedback("wrong", f"输出有的落在 (0, 1) 之外（最小 {x_hat.min():.2f}，最大 {x_hat.max():.2f}）：最后少了什么？")
    if layers(decoder) != layers(AutoEncoder(latent_dim=k).decoder):
        return Feedback("wrong", f"形状和范围都对，层却和文章的解码器不同：你的是 {layers(decoder)}。")
    return Feedback("correct", f"[64, {k}] → [64, 784]，值在 (0, 1) 之内，层与 `aelib.AutoEncoder({k}).decoder` "
                    f"一致，共 {sum(p.numel() for p in decoder.parameters()):,} 个参数。")


def check_training_step(training_step, model, x):
    """03: two calls of ``training_step(model, optimizer, x)`` against two steps of aelib's loop, on copies of ``model``."""
    yours, expected, gaps = copy.deepcopy(model).train(), copy.deepcopy(model).train(), []
    your_adam, adam = (torch.optim.Adam(m.parameters(), lr=1e-3) for m in (yours, expected))
    for _ in range(2):  # twice: gradients left from the first step must not leak into the second
        loss, fail = attempt(training_step, yours, your_adam, x)
        if fail:
            return fail
        adam.zero_grad()
        expected.loss(x).backward()
        adam.step()
        gaps.append(max((a - b).abs().max().item() for a, b in zip(yours.parameters(), expected.parameters())))
    hint = ("两步之后权重一点没变：梯度算出来以后，谁来更新权重？" if all(map(torch.equal, yours.parameters(), model.parameters()))
            else f"第一步后就和参考差 {gaps[0]:.1e}：损失该是哪两样东西的均方误差？" if gaps[0] > 1e-6
            else f"第一步对了，第二步却差 {gaps[1]:.1e}：上一步的梯度还留着，加到了这一步上。" if gaps[1] > 1e-6 else None)
    if hint:
        return Feedback("wrong", hint)
    same = "逐位相同" if max(gaps) == 0 else f"最多差 {max(gaps):.1e}"
    return Feedback("correct", f"两步后与参考{same}；你返回的第二步损失 {float(torch.as_tensor(loss).detach()):.4f}。")


def check_worst_images(fn, model, images, n: int) -> Feedback:
    """04: ``fn(model, images, n)`` -> indices of the ``n`` images with the largest per-image MSE (any order)."""
    result, feedback = attempt(fn, model, images, n)
    got, feedback = (None, feedback) if feedback else attempt(torch.as_tensor, result)
    errors = latent.reconstruction_errors(model, images)
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
    result, feedback = attempt(fn, codes)
    got, feedback = (None, feedback) if feedback else attempt(torch.as_tensor, result)
    if feedback or got.ndim != 1 or got.dtype == torch.bool or (got.is_floating_point() and got.numel() > 0):
        return feedback or Feedback("wrong", "你返回的是一个数，像是死维度的**个数**；要的是它们的**编号**（比如一个列表）。" if got.ndim == 0
                                    else f"要的是死维度的编号（整数），你返回的是形状 {tuple(got.shape)} 的 `{got.dtype}`。")
    got, want, k = sorted(set(got.tolist())), latent.dead_dims(codes, rule="relu"), codes.shape[1]
    if got == want:
        return Feedback("correct", f"这组 {k} 维编码里" + (f"有 {len(want)} 个死维度：{metrics.dims_text(want)}。" if want else "没有死维度。"))
    return Feedback("wrong", "编号差了 1：维度从 0 数起。" if want and got == [d + 1 for d in want] else
                    f"编号要小于 {k}：每个维度算一个比例（对图像那一维求平均）。" if max(got, default=0) >= k or min(got, default=0) < 0 else
                    ("有活维度被你算成了死维度" if set(got) - set(want) else "漏掉了死维度")
                    + "：规则看的是取值 > 0 的图像占多少（不到 1% 才算死），不是均值接近不接近 0。")


def check_naive_sampler(fn, model, clf, dead, mean: float, std: float, n: int = 2000) -> Feedback:
    """06: ``fn(n, dead, k, mean, std)`` vs ``sampling.naive_sample``: shape, dead dims 0, live mean and std within 0.1 std."""
    k, dead = model.latent_dim, sorted(dead)
    live = [i for i in range(k) if i not in dead]
    z, fail = attempt(fn, n, dead, k, mean, std)
    z, fail = (None, fail) if fail else attempt(lambda v: torch.as_tensor(v, dtype=torch.float32), z)  # NumPy is fine
    if fail or tuple(z.shape) != (n, k):
        return fail or Feedback("wrong", f"z 应是形状为 [n, k] 即 [{n}, {k}] 的张量，你的是 {list(z.shape)}。")
    nonzero_dead, zero_live = [d for d in dead if (z[:, d] != 0).any()], [d for d in live if (z[:, d] == 0).all()]
    if nonzero_dead:
        no_zeros = "（你的 z 里一个 0 也没有）" if (z != 0).all() else ""
        return Feedback("wrong", f"{metrics.dims_text(nonzero_dead)}是死维度，应当恰好是 0{no_zeros}。")
    if zero_live:
        return Feedback("wrong", f"{metrics.dims_text(zero_live)}是活维度，不该全是 0。")
    want, yours, tol = sampling.naive_sample(n, dead, k, mean=mean, std=std)[:, live], z[:, live], 0.1 * std + 1e-6
    if live and abs(yours.std() - want.std()) > tol:
        as_variance = "：像是把方差当成了标准差" if abs(yours.std() - std ** 2) < tol else ""
        return Feedback("wrong", f"活维度的标准差约 {yours.std():.2f}，要求的 std 是 {std:g}{as_variance}。")
    if live and abs(yours.mean() - want.mean()) > tol:
        return Feedback("wrong", f"活维度的均值约 {yours.mean():.2f}，要求的 mean 是 {mean:g}。")
    confident = metrics.confident_share(metrics.predict_proba(clf, latent.decode_codes(model, z)))
    return Feedback("correct", f"形状、死维度、均值和标准差都对。解码你的 {n:,} 个 z，分类器有把握认出其中 {confident:.0%}（最高概率 > 0.9）。")
