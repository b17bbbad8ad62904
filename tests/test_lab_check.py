"""The pass/fail rules of the browser check (scripts/lab_check.py), without a browser: cells as
the check collects them from JupyterLab's screen, classified into problems."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from conftest import ROOT, raises_naming

spec = importlib.util.spec_from_file_location("lab_check", ROOT / "scripts" / "lab_check.py")
lab_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lab_check)

STDERR, STDOUT = "application/vnd.jupyter.stderr", "application/vnd.jupyter.stdout"


def code(index, prompt="[1]:", outputs=(), images=()):
    return {"index": index, "cell_type": "code", "prompt": prompt, "outputs": list(outputs), "images": list(images)}


def test_a_prompt_tells_whether_a_cell_ran_is_running_or_did_not_run():
    assert lab_check.prompt_state("[12]:") == "done"
    assert lab_check.prompt_state("[*]:") == "running"
    assert lab_check.prompt_state("[ ]:") == "not run"
    assert lab_check.prompt_state("") == "not run"


def test_a_clean_notebook_has_no_problems():
    cells = [{"index": 0, "cell_type": "markdown", "prompt": "", "outputs": [], "images": [{"complete": True, "width": 40}]},
             code(1, "[1]:", [{"mime": STDOUT, "text": "reconstruction error 0.031\nValueError count: 0"}]),
             code(2, "[2]:", [{"mime": "image/png", "text": ""}], [{"complete": True, "width": 640}]),
             code(3, "[3]:", [{"mime": "text/plain", "text": "Result(value=3)"}]),
             code(4, "[4]:", [{"mime": "", "text": "dim 0 1.0", "widget": True}])]
    assert lab_check.cell_problems(cells) == []


def test_a_folded_cell_shows_no_prompt_and_is_not_called_unrun_but_a_visible_one_is():
    folded = {**code(1, ""), "hidden": True}   # source_hidden: JupyterLab shows a placeholder, no prompt
    assert lab_check.cell_problems([code(0, "[1]:"), folded, code(2, "[3]:")]) == []
    assert lab_check.cell_problems([code(0, "[1]:"), folded, code(2, "[ ]:")]) == ["cell(s) that did not run: 3"]


def test_stderr_and_errors_are_problems_named_by_cell():
    traceback = "Cell In[4], line 1\n----> 1 raise ValueError('boom')\n\nValueError: boom\n"
    problems = lab_check.cell_problems([
        code(1, outputs=[{"mime": STDERR, "text": "x.py:2: UserWarning: careful\n  warnings.warn('careful')"}]),
        code(4, outputs=[{"mime": STDERR, "text": traceback}])])
    assert len(problems) == 2
    assert problems[0].startswith("cell 2: stderr output") and "UserWarning: careful" in problems[0]
    assert problems[1].startswith("cell 5: error") and problems[1].endswith("ValueError: boom")


def test_broken_widgets_are_problems():
    problems = lab_check.cell_problems([
        code(0, outputs=[{"mime": "", "text": "Error displaying widget: model not found"}]),
        code(1, outputs=[{"mime": "text/plain", "text": "HBox(children=(VBox(children=(FloatSlider(value=1.0"}]),
        code(2, outputs=[{"mime": "text/plain", "text": "FloatSlider(value=2.0, description='dim 3')"}]),
        code(3, outputs=[{"mime": "", "text": "Loading widget..."}])])
    assert len(problems) == 4
    assert "Error displaying widget: model not found" in problems[0]
    assert all("widget is shown as plain text" in p for p in problems[1:3])
    assert "widget never rendered" in problems[3]
    assert all(p.endswith(lab_check.WIDGET_HINT) or lab_check.WIDGET_HINT + ":" in p for p in problems)
    saved = lab_check.cell_problems([code(5, outputs=[{"mime": "text/plain", "text": "HBox(children=())"}])],
                                    hint=" (saved output)")
    assert saved == ["cell 6: a widget is shown as plain text (saved output): HBox(children=())"]


def test_images_that_did_not_render_or_load_are_problems():
    problems = lab_check.cell_problems([code(0, images=[{"complete": True, "width": 0},
                                                        {"complete": True, "width": 300}]),
                                        code(1, images=[{"complete": False, "width": 0}])])
    assert problems == ["cell 1: 1 image(s) did not render (naturalWidth 0)", "cell 2: 1 image(s) still loading"]


def test_code_cells_that_did_not_run_are_listed_once_as_ranges():
    cells = [code(0, "[1]:"), code(1, "[*]:"), code(2, "[ ]:"), code(3, "[ ]:"), code(5, "[ ]:"),
             {"index": 4, "cell_type": "markdown", "prompt": "", "outputs": [], "images": []}]
    assert lab_check.cell_problems(cells) == ["cell(s) that did not run: 2-4, 6"]


def test_dialogs_and_popups_on_screen_are_problems():
    news = "Would you like to get notified about official Jupyter news?\nOpen privacy policy\nYes\nNo"
    problems = lab_check.screen_problems(["Kernel Restarting\nThe kernel appears to have died."], [news])
    assert problems[0].startswith("a dialog is open: Kernel Restarting")
    assert problems[1].startswith("a pop-up shows: Would you like to get notified")
    assert lab_check.screen_problems([], []) == []


def write(folder: Path, name: str, text: str = "{}") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_notebooks_main_track_then_the_explorer_wherever_it_is(tmp_path):
    for name in ("01_a.ipynb", "06_f.ipynb", "07_yardstick.ipynb", "10_vae.ipynb"):
        write(tmp_path, name)
    write(tmp_path, "09_better.ipynb", '{"source": "plots.latent_explorer(model)"}')
    assert [p.name for p in lab_check.default_notebooks(tmp_path)] == ["01_a.ipynb", "06_f.ipynb", "09_better.ipynb"]
    (tmp_path / "09_better.ipynb").unlink()
    with raises_naming(SystemExit, tmp_path, "latent_explorer"):
        lab_check.default_notebooks(tmp_path)


def test_a_rerun_deletes_only_the_screenshots_the_check_wrote(tmp_path):
    committed = [write(tmp_path, name, "figure") for name in ("04_reconstructions.png", "notes.png")]
    outside = write(tmp_path.parent, f"{tmp_path.name}-outside.png", "figure")
    lab_check.clear_screenshots(tmp_path, ["03_training.png", "08_x-explorer.png"])
    for name in ("03_training.png", "08_x-explorer.png"):
        write(tmp_path, name, "screenshot")
    (tmp_path / lab_check.MANIFEST).write_text(f"03_training.png\n08_x-explorer.png\n../{outside.name}\n")
    lab_check.clear_screenshots(tmp_path, ["03_training.png"])
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["04_reconstructions.png", "notes.png"]
    assert all(p.read_text() == "figure" for p in committed + [outside])


def test_screenshots_never_overwrite_a_file_the_check_did_not_write(tmp_path):
    figure = write(tmp_path, "04_reconstruction.png", "figure")
    with raises_naming(SystemExit, tmp_path / "04_reconstruction.png"):
        lab_check.clear_screenshots(tmp_path, ["03_training.png", "04_reconstruction.png"])
    assert figure.read_text() == "figure"


def test_opens_modified_names_a_stale_kernel_display_name():
    stale = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    note = lab_check.opens_modified(stale, "Python 3 (ipykernel)")
    assert "'Python 3'" in note and "'Python 3 (ipykernel)'" in note
    fresh = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)"}}
    assert "display_name" not in lab_check.opens_modified(fresh, "Python 3 (ipykernel)")
