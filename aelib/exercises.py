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
