"""The series' layout as the workshop uses it, read from the committed notebooks.

Main track (01-06): the article's six steps, within a read-along budget, every figure of the
article among its outputs. Optional notebooks (07 on): each opens with the one question it
answers and is linked from the main track, which never depends on them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import NOTEBOOKS, notebook_code

MAIN = [p for p in NOTEBOOKS if p.name[:2] in ("01", "02", "03", "04", "05", "06")]
OPTIONAL = [p for p in NOTEBOOKS if p not in MAIN]

# the read-along budget of the main track (01-06 together)
MAX_PROSE_CHARS = 15_000
MAX_CODE_CELLS = 80
MAX_FIGURES_PER_NOTEBOOK = 4
MAX_CELL_LINES = 15  # every code cell, a folded one too: read in one look

# the article's six headings, and its pictures (by the article's file names; ae1.png is not
# described in its text): (main-track notebook, the file its cell saves) for each
ARTICLE_HEADINGS = ("从函数拟合的角度看机器学习", "为什么我们选择深度学习？", "分类模型到生成模型",
                    "训练完成看看效果", "是否可以生成新的图片", "总结")
ARTICLE_FIGURES = {
    "MLP.jpg": ("02", "02_classifier_diagram.png"),
    "ae.webp": ("02", "02_autoencoder_diagram.png"),
    "ae2.png": ("04", "04_reconstructions.png"),   # one figure, one row each:
    "ae-3.png": ("04", "04_reconstructions.png"),  # test images, the reader's k,
    "ae4.png": ("04", "04_reconstructions.png"),   # the comparison k
    "ae5.png": ("05", "05_code_distributions.png"),
    "ae6.png": ("05", "05_scatter_first_two.png"),
    "ae7.png": ("06", "06_naive_samples.png"),
    "ae8.png": ("06", "06_naive_samples_large_k.png"),
}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    return "".join(cell.get("source", ""))


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def markdown_outputs(cell: dict) -> str:
    return "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in cell.get("outputs", []))


def prose_chars(nb: dict) -> int:
    """Markdown cells plus the Markdown that code cells write (what a reader reads)."""
    return sum(len(source(c)) if c["cell_type"] == "markdown" else len(markdown_outputs(c))
               for c in nb["cells"])


def figures(cell: dict) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def markdown_text(nb: dict) -> str:
    return "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_the_main_track_is_the_articles_six_steps_in_order():
    assert [p.name[:2] for p in MAIN] == ["01", "02", "03", "04", "05", "06"]
    assert OPTIONAL, "the depth lives in optional notebooks after the main track"


def test_main_track_fits_the_read_along_budget():
    notebooks = {p.name: load(p) for p in MAIN}
    prose = {name: prose_chars(nb) for name, nb in notebooks.items()}
    cells = {name: len(code_cells(nb)) for name, nb in notebooks.items()}
    assert sum(prose.values()) <= MAX_PROSE_CHARS, f"prose per notebook: {prose}"
    assert sum(cells.values()) <= MAX_CODE_CELLS, f"code cells per notebook: {cells}"
    for name, nb in notebooks.items():
        n = sum(figures(c) for c in code_cells(nb))
        assert n <= MAX_FIGURES_PER_NOTEBOOK, f"{name} shows {n} figures"


@pytest.mark.parametrize("number", sorted(ARTICLE_FIGURES))
def test_every_article_figure_is_drawn_in_the_main_track(number):
    prefix, filename = ARTICLE_FIGURES[number]
    path = next(p for p in MAIN if p.name.startswith(prefix))
    cells = [c for c in code_cells(load(path)) if f'"{filename}"' in source(c)]
    assert cells, f"the article's {number}: no cell of {path.name} saves {filename}"
    assert any(figures(c) for c in cells), f"the article's {number}: {path.name} shows no image"


@pytest.mark.parametrize("path", MAIN, ids=lambda p: p.name)
def test_main_notebook_states_time_goals_and_article_section(path):
    opening = source(load(path)["cells"][0])
    assert re.search(r"约\s*\d+\s*分钟", opening), "a time estimate (约 N 分钟) up top"
    assert any(f"《{h}》" in opening for h in ARTICLE_HEADINGS), "which section of the article it follows, by heading"
    goals = re.findall(r"^\s*(?:\d+\.|[-*])\s+\S", opening, flags=re.M)
    assert 2 <= len(goals) <= 4, f"two to four things the reader will be able to do, found {len(goals)}"


@pytest.mark.parametrize("path", MAIN + OPTIONAL, ids=lambda p: p.name)
def test_article_cited_as_readers_hold_it(path):
    # the article numbers neither its sections nor its pictures: cite headings and what a picture shows
    prose = "\n".join(source(c) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    bad = re.findall(r"文章(?:的)?(?:第\s*[\d–-]+\s*节|图\s*\d+)|(?<![\w《])图\s*\d+", prose)
    assert not bad, f"citations a reader cannot find in the article: {bad[:5]}"
    headings = re.findall(r"文章(?:的)?《([^》]+)》", prose)
    assert set(headings) <= set(ARTICLE_HEADINGS), f"not a heading of the article: {set(headings) - set(ARTICLE_HEADINGS)}"


@pytest.mark.parametrize("path", OPTIONAL, ids=lambda p: p.name)
def test_optional_notebook_opens_with_its_question_and_is_linked_from_the_main_track(path):
    opening = source(load(path)["cells"][0])
    assert "选读" in opening and re.search(r"[？?]", opening), "opens as 选读 with its one question"
    linked_from = [p.name for p in MAIN if f"]({path.name})" in markdown_text(load(p))
                   or f"]({path.name})" in "".join(markdown_outputs(c) for c in code_cells(load(p)))]
    assert linked_from, f"no main-track notebook links to {path.name}"


@pytest.mark.parametrize("path", MAIN + OPTIONAL, ids=lambda p: p.name)
def test_notebook_ends_with_summary_and_exercises_with_worked_solutions(path):
    text = markdown_text(load(path))
    assert "## 总结" in text and "## 练习" in text
    exercises = text.split("## 练习", 1)[1]
    assert exercises.count("<details>") >= 2, "exercises come with unfoldable worked solutions"


@pytest.mark.parametrize("path", MAIN + OPTIONAL, ids=lambda p: p.name)
def test_every_code_cell_is_short_folded_ones_too(path):
    long = {i: n for i, c in enumerate(load(path)["cells"])
            if c["cell_type"] == "code" and (n := len(source(c).splitlines())) > MAX_CELL_LINES}
    assert not long, f"cells over {MAX_CELL_LINES} lines (cell index: lines): {long}"


@pytest.mark.parametrize("path", MAIN + OPTIONAL, ids=lambda p: p.name)
def test_first_code_cell_is_the_parameters_cell(path):
    first = source(code_cells(load(path))[0])
    assert first.startswith("# Parameters")
    body = [line for line in first.splitlines()[1:] if line.strip() and not line.lstrip().startswith("#")]
    assert body and all(re.match(r"^[A-Z][A-Z0-9_]*\s*=", line) for line in body), body


@pytest.mark.parametrize("path", MAIN, ids=lambda p: p.name)
def test_main_track_never_depends_on_an_optional_notebook(path):
    code = notebook_code(path)
    for optional in OPTIONAL:
        assert optional.name not in code and optional.stem not in code, (
            f"{path.name} runs or reads {optional.name}")


@pytest.mark.parametrize("path", MAIN + OPTIONAL, ids=lambda p: p.name)
def test_notebooks_use_only_aelibs_public_names_and_cite_the_article(path):
    nb, code = load(path), notebook_code(path)
    assert not re.search(r"\baelib(?:\.\w+)*\._\w+|from aelib[\w.]* import [^\n]*\b_\w+|batched_apply", code)
    assert "提纲" not in markdown_text(nb) + "".join(markdown_outputs(c) for c in code_cells(nb)), (
        "readers have the article, not an outline")
