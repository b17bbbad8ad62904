"""Checks for the code exercises of notebooks 01-06. Like Kaggle Learn's ``q1.check()``, a check
answers in one of three states: not attempted (the stub still returns ``...`` or raises
``NotImplementedError``), correct (with a number measured on the attendee's own code), or wrong
(with a hint that names what is off, never the answer). Checks compare with aelib's own
reference computation, never with pasted numbers. Messages are Chinese: they speak to attendees."""

from dataclasses import dataclass

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


# notebook 06
def check_naive_sampler(fn, model, clf, dead, mean: float, std: float, n: int = 2000) -> Feedback:
    """06: ``fn(n, dead, k, mean, std)`` vs ``sampling.naive_sample``: shape, dead dims 0, live mean and std within 0.1 std."""
    from . import latent, metrics, sampling
    k, dead = model.latent_dim, sorted(dead)
    (z, feedback), live = attempt(fn, n, dead, k, mean, std), [i for i in range(k) if i not in dead]
    if feedback or tuple(getattr(z, "shape", ())) != (n, k):
        return feedback or Feedback("wrong", f"z 应是形状为 [n, k] 即 [{n}, {k}] 的张量，你的是 {getattr(z, 'shape', type(z).__name__)}。")
    ref, m, s, tol = sampling.naive_sample(n, dead, k, mean=mean, std=std)[:, live], z[:, live].mean(), z[:, live].std(), 0.1 * std + 1e-6
    hints = [h for bad, h in (
        ((z[:, dead] != 0).any(), f"第 {'、'.join(str(d) for d in dead if (z[:, d] != 0).any())} 维是死维度，应当恰好是 0" + "（你的 z 里一个 0 也没有）" * bool((z != 0).all()) + "。"),
        (live and (z[:, live] == 0).all(0).any(), f"第 {'、'.join(str(d) for d in live if (z[:, d] == 0).all())} 维是活维度，不该全是 0。"),
        (live and abs(s - ref.std()) > tol, f"活维度的标准差约 {s:.2f}，要求的 std 是 {std:g}" + "：像是把方差当成了标准差" * bool(abs(s - std**2) < tol) + "。"),
        (live and abs(m - ref.mean()) > tol, f"活维度的均值约 {m:.2f}，要求的 mean 是 {mean:g}。")) if bad]
    return Feedback("wrong", hints[0]) if hints else Feedback("correct", f"形状、死维度、均值和标准差都对。解码你的 {n:,} 个 z，分类器有把握"
        f"（最高概率 > 0.9）认出其中 {(metrics.predict_proba(clf, latent.decode_codes(model, z)).max(dim=1).values > 0.9).float().mean():.0%}。")
