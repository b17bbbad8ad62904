"""Run notebooks in JupyterLab in a real browser, as a workshop attendee would, and check the screen.

  python scripts/lab_check.py [notebooks ...] [--timeout 180] [--screenshots lab-screenshots]

JupyterLab (on 127.0.0.1, random port and token, the project's jupyter/overrides.json, no user
settings) serves copies of the notebooks (default: the main track and the latent explorer) and
Playwright drives Debian's Chromium (/usr/bin/chromium; `pip install playwright`, no browser
download). Run > Run All Cells fails on an error or stderr output, a broken widget, an image not
rendered, a cell not run, a dialog or pop-up, a tab opening as modified, or a timeout; the
explorer's slider must redraw its picture. Screenshots: one per notebook (a rerun deletes only its own).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
MAIN_TRACK = "0[1-6]_*.ipynb"
EXPLORER_CALL = "latent_explorer("         # a notebook with this call gets the slider check
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MANIFEST = ".lab-check-screenshots"        # in the screenshot folder: the files this check wrote
STDERR_MIME = "application/vnd.jupyter.stderr"   # JupyterLab renders stderr and errors with it
# ipywidgets' plain-text repr, which JupyterLab shows in place of a widget without a widget manager
WIDGET_AS_TEXT = re.compile(r"^\s*((H|V|Grid)?Box|(Float|Int)\w*(Slider|Progress|Text)|Image|Label|HTML|"
                            r"HTMLMath|Output|Button|Dropdown|Checkbox|Tab|Accordion|Play|interactive|"
                            r"Select\w*|RadioButtons|ToggleButtons?)\(")
LOADING_WIDGET = "Loading widget..."
WIDGET_HINT = " (do ipywidgets and jupyterlab_widgets match this JupyterLab?)"


def prompt_state(prompt: str) -> str:
    """'done' for ``[12]:``, 'running' for ``[*]:`` (running or queued), else 'not run'."""
    match = re.search(r"\[\s*([^\]]*?)\s*\]", prompt or "")
    return "not run" if not match else "running" if match[1] == "*" else "done" if match[1].isdigit() else "not run"


def short(text: str, lines: int = 3, width: int = 300) -> str:
    """The last few non-empty lines of an output (a traceback ends with the error), on one line."""
    joined = " | ".join([line.strip() for line in text.strip().splitlines() if line.strip()][-lines:])
    return joined if len(joined) <= width else "..." + joined[-width:]


def ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    runs = [[n for _, n in run] for _, run in itertools.groupby(enumerate(sorted(numbers)), lambda p: p[1] - p[0])]
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else f"{run[0]}" for run in runs)


def cell_problems(cells: list[dict], hint: str = WIDGET_HINT) -> list[str]:
    """What a reader would see go wrong, from the cells on screen. A cell: ``{"index", "cell_type":
    "code"|"markdown"|"raw", "prompt": "[3]:", "outputs": [{"mime", "text", "widget"}], "images":
    [{"complete", "width"}]}``; ``hint`` follows a broken widget's description."""
    problems, not_run = [], []
    for cell in cells:
        where = f"cell {cell['index'] + 1}"
        # a folded cell (source_hidden) shows no prompt; Run All stopping early shows in the cells after it
        if cell.get("cell_type") == "code" and not cell.get("hidden") and prompt_state(cell.get("prompt", "")) != "done":
            not_run.append(cell["index"] + 1)
        for out in cell.get("outputs", []):
            text = out.get("text") or ""
            if out.get("mime") == STDERR_MIME:
                what = "error" if re.search(r"Traceback|\w+(Error|Exception):", text) else "stderr output"
                problems.append(f"{where}: {what}: {short(text)}")
            if "Error displaying widget" in text:
                problems.append(f"{where}: {short(text, lines=2)}{hint}")
            elif text.strip().startswith(LOADING_WIDGET):
                problems.append(f"{where}: a widget never rendered (it still says {LOADING_WIDGET!r}){hint}")
            elif out.get("mime") == "text/plain" and WIDGET_AS_TEXT.match(text):
                problems.append(f"{where}: a widget is shown as plain text{hint}: {short(text, 1, 120)}")
        images = cell.get("images", [])
        if broken := sum(1 for i in images if i.get("complete") and not i.get("width")):
            problems.append(f"{where}: {broken} image(s) did not render (naturalWidth 0)")
        if pending := sum(1 for i in images if not i.get("complete")):
            problems.append(f"{where}: {pending} image(s) still loading")
    return problems + ([f"cell(s) that did not run: {ranges(not_run)}"] if not_run else [])


def screen_problems(dialogs: list[str], toasts: list[str]) -> list[str]:
    """A dialog or a pop-up notification on screen is something the reader must deal with."""
    return [f"a dialog is open: {short(t, 4)}" for t in dialogs] + [f"a pop-up shows: {short(t, 4)}" for t in toasts]


def opens_modified(metadata: dict, kernel_display_name: str) -> str:
    """Why JupyterLab marks a notebook modified as soon as its kernel starts (it rewrites stale metadata)."""
    saved = metadata.get("kernelspec", {}).get("display_name")
    return "opens as modified (the tab shows a dot, closing asks to save): " + (
        f"its kernelspec display_name is {saved!r}, the kernel's is {kernel_display_name!r}"
        if saved != kernel_display_name else "its kernel metadata (language_info?) differs from the kernel's")


def is_explorer(path: Path) -> bool:
    return EXPLORER_CALL in path.read_text(encoding="utf-8")


def default_notebooks(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The main track in order, then the optional notebook(s) with the latent explorer."""
    main = sorted(folder.glob(MAIN_TRACK))
    explorers = [p for p in sorted(folder.glob("[0-9][0-9]_*.ipynb")) if p not in main and is_explorer(p)]
    if not main:
        raise SystemExit(f"no main-track notebooks ({MAIN_TRACK}) in {folder}")
    if not explorers:
        raise SystemExit(f"no optional notebook in {folder} calls {EXPLORER_CALL}...): the slider check has nothing to run")
    return main + explorers


def clear_screenshots(folder: Path, names: list[str]) -> None:
    """Delete the screenshots an earlier run wrote into ``folder`` (listed in its MANIFEST) and
    record the ``names`` this run writes; refuse when one of them is a file this check did not write."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / MANIFEST
    for name in manifest.read_text().split() if manifest.exists() else []:
        (folder / Path(name).name).unlink(missing_ok=True)  # only in this folder
    if clash := [name for name in names if (folder / name).exists()]:
        raise SystemExit(f"{folder / clash[0]} exists and was not written by this check; "
                         "pass another folder with --screenshots")
    manifest.write_text("\n".join(names) + "\n")


class Lab:
    """JupyterLab serving ``root`` on 127.0.0.1 with a random port and token."""

    def __init__(self, root: Path, scratch: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.base, self.token = f"http://127.0.0.1:{port}", secrets.token_urlsafe(24)
        env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "TQDM_DISABLE")}
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "JUPYTER_RUNTIME_DIR"):
            env[name] = str(scratch / name.lower())     # nothing from the user's own set-up
        env["AELIB_IMAGES_DIR"] = str(scratch / "figures")  # not the repository's images/
        self.log = scratch / "jupyterlab.log"
        command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
                   f"--LabApp.app_settings_dir={REPO / 'jupyter'}"]    # the project's overrides.json
        self.process = subprocess.Popen(command + (["--allow-root"] if os.geteuid() == 0 else []), env=env,
                                        stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        if not wait_until(lambda: self.process.poll() is not None or self.up(), 90, step=0.3) or not self.up():
            self.stop()
            raise SystemExit("JupyterLab did not start:\n" + "\n".join(self.log.read_text().splitlines()[-15:]))

    def api(self, method: str, path: str):
        request = urllib.request.Request(self.base + path, method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def up(self) -> bool:
        with contextlib.suppress(OSError):
            return self.api("GET", "/api/status") is not None
        return False

    def shut_down_kernels(self) -> list[str]:
        """Shut down every kernel; returns the paths of the notebooks they ran."""
        sessions = self.api("GET", "/api/sessions")
        for session in sessions:
            self.api("DELETE", f"/api/sessions/{session['id']}")
        return [session["path"] for session in sessions]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


COLLECT_CELLS = """panel => [...panel.querySelectorAll('.jp-Cell')].map((cell, index) => ({
  index, cell_type: cell.classList.contains('jp-CodeCell') ? 'code' : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw',
  prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '', hidden: !!cell.querySelector('.jp-InputPlaceholder'),
  outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(out => ({
    mime: out.getAttribute('data-mime-type') || '', text: (out.textContent || '').slice(0, 4000),
    widget: !!out.querySelector('.jupyter-widgets')})),
  images: [...cell.querySelectorAll('img')].map(img => ({complete: img.complete, width: img.naturalWidth}))}))"""
COLLECT_SCREEN = """() => { const shown = el => el.getClientRects().length > 0;
  return {dialogs: [...document.querySelectorAll('.jp-Dialog')].filter(shown).map(d => d.innerText),
          toasts: [...document.querySelectorAll('.Toastify__toast')].filter(shown).map(t => t.innerText)}; }"""
PROMPTS = "panel => [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent)"
IMAGE_BYTES = """async img => { const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let s = ''; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); }"""


def wait_until(condition, seconds: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + seconds
    while not (done := condition()) and time.monotonic() < deadline:
        time.sleep(step)
    return bool(done)


def kernel_idle(page) -> bool:
    status = page.locator("[title^='Change kernel for']")       # status bar: "Python 3 (ipykernel) | Idle"
    indicator = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator")
    return (status.count() > 0 and status.first.inner_text().strip().endswith("| Idle")
            and (indicator.count() == 0 or indicator.first.get_attribute("data-status") == "idle"))


def run_all(page, panel, timeout: float) -> list[str]:
    """Run > Run All Cells, then wait for two quiet looks in a row (no cell running, kernel idle)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    running = lambda: [i + 1 for i, p in enumerate(panel.evaluate(PROMPTS)) if prompt_state(p) == "running"]  # noqa: E731
    if not wait_until(lambda: running() or not kernel_idle(page), 20, step=0.1):
        return ["Run All Cells started no cell within 20 s"]
    calm, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dialogs := page.evaluate(COLLECT_SCREEN)["dialogs"]:
            return screen_problems(dialogs, [])
        calm.append(not running() and kernel_idle(page))
        if calm[-2:] == [True, True]:
            return []
        time.sleep(0.5)
    return [f"did not finish within {timeout:.0f} s (code cells still running or queued: {ranges(running())})"]


def settled_cells(panel, seconds: float = 10) -> list[dict]:
    """The cells once no image or widget is loading and two looks a second apart agree (or after ``seconds``)."""
    deadline, last = time.monotonic() + seconds, None
    while True:
        cells = panel.evaluate(COLLECT_CELLS)
        loading = any(not i["complete"] for c in cells for i in c["images"]) or any(
            o["text"].strip().startswith(LOADING_WIDGET) for c in cells for o in c["outputs"])
        if (cells == last and not loading) or time.monotonic() > deadline:
            return cells
        last = cells
        time.sleep(1)


def check_explorer(page, panel, shot: Path) -> list[str]:
    """Move the first slider with the arrow keys; the decoded picture must change."""
    slider, picture = panel.locator(".widget-slider").first, panel.locator("img.widget-image, .widget-image img").first
    handle = slider.locator("[role=slider], .slider-container [tabindex], input[type=range]").first
    if handle.count() == 0 or picture.count() == 0:
        return ["the explorer shows no slider handle or no picture (is the widget rendered?)"]
    handle.scroll_into_view_if_needed()
    readout = lambda: slider.locator(".widget-readout").first.inner_text()  # noqa: E731
    before, value = picture.evaluate(IMAGE_BYTES), readout()
    handle.focus()
    for key, presses in (("ArrowRight", 5), ("ArrowLeft", 10)):
        for _ in range(presses):
            page.keyboard.press(key)
        if wait_until(lambda: readout() != value, 3):
            break
    else:
        return [f"the explorer's slider did not move with the arrow keys (readout stays {value})"]
    changed = wait_until(lambda: picture.evaluate(IMAGE_BYTES) != before, 15, step=0.5)
    page.screenshot(path=str(shot))
    return [] if changed else [f"the explorer's picture did not change when its slider moved from {value} to {readout()}"]


def drive_notebook(page, lab: Lab, path: Path, timeout: float, shots: Path) -> list[str]:
    """Open, look at it as opened, Run All, look at every cell and at the screen, take the screenshot(s)."""
    page.goto(f"{lab.base}/lab/tree/{urllib.parse.quote(path.name)}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    if not wait_until(lambda: kernel_idle(page) or page.evaluate(COLLECT_SCREEN)["dialogs"], 60):
        return ["the kernel did not become idle within 60 s of opening"]
    if dialogs := page.evaluate(COLLECT_SCREEN)["dialogs"]:
        return screen_problems(dialogs, [])
    panel = page.locator(".jp-NotebookPanel").first
    saved = cell_problems(panel.evaluate(COLLECT_CELLS), hint=" (saved output: shows until the notebook runs)")
    problems = [f"as opened: {p}" for p in saved if "widget" in p]
    if page.locator(".lm-TabBar-tab.jp-mod-dirty").count():
        kernel = lab.api("GET", "/api/kernelspecs")["kernelspecs"]["python3"]["spec"]["display_name"]
        problems.append(opens_modified(json.loads(path.read_text(encoding="utf-8")).get("metadata", {}), kernel))
    problems += run_all(page, panel, timeout)
    cells = settled_cells(panel)
    print(f"  {sum(c['cell_type'] == 'code' for c in cells)} code cells, {sum(len(c['images']) for c in cells)} images, "
          f"{sum(bool(o.get('widget')) for c in cells for o in c['outputs'])} widgets")
    problems += cell_problems(cells)
    page.evaluate("() => document.querySelectorAll('.jp-NotebookPanel .jp-WindowedPanel-outer').forEach(e => e.scrollTo(0, 0))")
    time.sleep(0.5)
    problems += screen_problems(**page.evaluate(COLLECT_SCREEN))  # its dialogs and toasts
    page.screenshot(path=str(shots / f"{path.stem}.png"))
    if is_explorer(path) and not problems:
        problems += check_explorer(page, panel, shots / f"{path.stem}-explorer.png")
    return problems


def check_notebook(context, lab: Lab, path: Path, timeout: float, shots: Path) -> list[str]:
    """The problems of one notebook in a fresh tab; the tab is closed unsaved, its kernel shut down."""
    page, console = context.new_page(), []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(str(e)))
    try:
        problems = drive_notebook(page, lab, path, timeout, shots)
    except Exception as exc:  # a Playwright timeout or a crash is a failure of this notebook
        problems = [f"{type(exc).__name__}: {short(str(exc), 2)}"]
        with contextlib.suppress(Exception):
            page.screenshot(path=str(shots / f"{path.stem}.png"))
    if console and problems:
        print("  browser console errors:\n    " + "\n    ".join(short(c, 1, 200) for c in dict.fromkeys(console)))
    page.close()                     # no beforeunload handler runs: the unsaved copy is dropped
    try:
        others = [p for p in lab.shut_down_kernels() if Path(p).name != path.name]
    except OSError as exc:
        others = [f"(could not list kernels: {exc})"]
    return problems + ([f"kernels were running for other notebooks too: {', '.join(others)}"] if others else [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help=f"default: {MAIN_TRACK} and the explorer")
    parser.add_argument("--timeout", type=float, default=180, help="seconds per notebook, from Run All to idle")
    parser.add_argument("--screenshots", type=Path, default=REPO / "lab-screenshots")
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit(f"Playwright is missing: pip install playwright (it drives {CHROMIUM}; no `playwright install`)")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    notebooks = [p.resolve() for p in args.notebooks] or default_notebooks()
    if missing := [str(p) for p in notebooks if not p.exists()]:
        raise SystemExit(f"no such notebook: {', '.join(missing)}")
    clear_screenshots(args.screenshots, [f"{p.stem}{tail}.png" for p in notebooks
                                         for tail in ("", "-explorer")[:1 + is_explorer(p)]])
    start, failures = time.monotonic(), {}
    with tempfile.TemporaryDirectory(prefix="lab-check-") as tmp:
        scratch, root = Path(tmp), Path(tmp) / "notebooks"
        shutil.copytree(NOTEBOOK_DIR, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        for path in notebooks:
            shutil.copy(path, root / path.name)
        (scratch / "images").symlink_to(REPO / "images")   # Markdown may show ../images/*.png
        lab = Lab(root, scratch)
        print(f"JupyterLab on {lab.base} ({time.monotonic() - start:.0f} s), Chromium {CHROMIUM}")
        try:
            with sync_playwright() as p:
                context = p.chromium.launch_persistent_context(
                    str(scratch / "chromium-profile"), executable_path=CHROMIUM, headless=True,
                    args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800})   # a laptop screen
                for path in notebooks:
                    began = time.monotonic()
                    problems = check_notebook(context, lab, path, args.timeout, args.screenshots)
                    print(f"{path.name}: {time.monotonic() - began:.0f} s, {'FAILED' if problems else 'ok'}", *problems,
                          sep="\n  ", flush=True)
                    failures.update({path.name: problems} if problems else {})
        finally:
            lab.stop()
    print(f"{len(notebooks) - len(failures)} passed, {len(failures)} failed in {time.monotonic() - start:.0f} s; "
          f"screenshots in {args.screenshots}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
