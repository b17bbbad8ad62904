"""Run notebooks in JupyterLab in a real browser, as a workshop attendee would, and check the screen.

  python scripts/lab_check.py                        # the main track and the explorer notebook
  python scripts/lab_check.py notebooks/03_training.ipynb --timeout 60

Starts JupyterLab from this Python environment on 127.0.0.1 (random port and token, the
project's settings from jupyter/overrides.json, empty user settings and workspaces) serving
COPIES of the notebooks in a temporary folder, and drives Debian's Chromium through Playwright.
For each notebook: opens it, clicks Run > Run All Cells, waits until no cell is running and
the kernel is idle, and fails on an error or stderr output, "Error displaying widget", a widget
shown as plain text or stuck at "Loading widget...", an image that did not render, a cell that
did not run, a dialog or pop-up on screen, or a notebook that does not finish within --timeout
seconds. In a notebook that calls `latent_explorer` it moves a slider with the arrow keys and
checks that the decoded picture changes. One screenshot per notebook (its first screen after
Run All; the explorer gets a second one) goes to lab-screenshots/. What an attendee sees on
opening a notebook, before running it, is printed as notes (OPENING_NOTES_FAIL makes them
failures). Notebooks on disk are never modified (the tabs are closed unsaved); figures go to
the temporary folder, not images/.

Needs Playwright for Python (`pip install playwright`, no browser download) and Chromium at
/usr/bin/chromium (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import argparse
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
MAIN_TRACK = "0[1-6]_*.ipynb"                    # the article's six steps
EXPLORER_NOTEBOOK = "08_better_sampling.ipynb"   # the notebook with plots.latent_explorer
EXPLORER_CALL = "latent_explorer("               # how a notebook is recognised as the explorer
SCREENSHOT_DIR = REPO / "lab-screenshots"
SETTINGS_FILE = REPO / "jupyter" / "overrides.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}        # a laptop screen
TIMEOUT_S = 180                                  # per notebook, from Run All to idle
BUDGET_S = 360                                   # the whole check in CI, warm model cache
OPENING_NOTES_FAIL = True    # notes on a notebook as opened (saved outputs, metadata) fail the check
STDERR_MIME = "application/vnd.jupyter.stderr"   # JupyterLab renders stderr AND errors with it
# ipywidgets' plain-text repr (HBox(children=...), FloatSlider(value=...)), which JupyterLab
# shows in place of a widget when it has no working widget manager
WIDGET_AS_TEXT = re.compile(r"^\s*((H|V|Grid)?Box|(Float|Int)\w*(Slider|Progress|Text)|Image|Label|HTML|"
                            r"HTMLMath|Output|Button|Dropdown|Checkbox|Tab|Accordion|Play|interactive|"
                            r"Select\w*|RadioButtons|ToggleButtons?)\(")
LOADING_WIDGET = "Loading widget..."    # what JupyterLab shows until a widget's view is ready
WIDGET_HINT = " (do ipywidgets and jupyterlab_widgets match this JupyterLab?)"


# ---- pure helpers: what counts as a problem (unit-tested in tests/test_lab_check.py) ----

def prompt_state(prompt: str) -> str:
    """'done' for ``[12]:``, 'running' for ``[*]:`` (running or queued), else 'not run'."""
    match = re.search(r"\[\s*([^\]]*?)\s*\]", prompt or "")
    if match and match.group(1) == "*":
        return "running"
    return "done" if match and match.group(1).isdigit() else "not run"


def short(text: str, lines: int = 3, width: int = 300) -> str:
    """The last few non-empty lines of an output (a traceback ends with the error), one line."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept)
    return joined if len(joined) <= width else "..." + joined[-width:]


def cell_problems(cells: list[dict], hint: str = WIDGET_HINT) -> list[str]:
    """What a reader would see go wrong, from cells collected on screen after Run All.

    A cell: ``{"index": 0-based, "kind": "code"|"markdown"|"raw", "prompt": "[3]:", "outputs":
    [{"mime": data-mime-type, "text": text, "widget": a rendered widget?}], "images":
    [{"complete": bool, "width": naturalWidth}]}`` (every <img> in the cell, Markdown too).
    ``hint`` follows a broken widget's description (the likely cause after Run All)."""
    problems, not_run = [], []
    for cell in cells:
        where = f"cell {cell['index'] + 1}"
        if cell.get("kind") == "code" and prompt_state(cell.get("prompt", "")) != "done":
            not_run.append(cell["index"] + 1)
        for out in cell.get("outputs", []):
            text = out.get("text") or ""
            if out.get("mime") == STDERR_MIME:
                kind = "error" if re.search(r"Traceback|\w+(Error|Exception):", text) else "stderr output"
                problems.append(f"{where}: {kind}: {short(text)}")
            if "Error displaying widget" in text:
                problems.append(f"{where}: {short(text, lines=2)}{hint}")
            elif text.strip().startswith(LOADING_WIDGET):
                problems.append(f"{where}: a widget never rendered (it still says {LOADING_WIDGET!r}){hint}")
            elif out.get("mime") == "text/plain" and WIDGET_AS_TEXT.match(text):
                problems.append(f"{where}: a widget is shown as plain text{hint}: {short(text, 1, 120)}")
        broken = [img for img in cell.get("images", []) if img.get("complete") and not img.get("width")]
        pending = [img for img in cell.get("images", []) if not img.get("complete")]
        if broken:
            problems.append(f"{where}: {len(broken)} image(s) did not render (naturalWidth 0)")
        if pending:
            problems.append(f"{where}: {len(pending)} image(s) still loading")
    if not_run:
        problems.append(f"cell(s) that did not run: {ranges(not_run)}")
    return problems


def cell_summary(cells: list[dict]) -> str:
    """One line for the log: how much there was to look at."""
    code = [c for c in cells if c.get("kind") == "code"]
    outputs = [o for c in code for o in c.get("outputs", [])]
    return (f"{len(code)} code cells, {len(outputs)} outputs, "
            f"{sum(len(c.get('images', [])) for c in cells)} images, "
            f"{sum(bool(o.get('widget')) for o in outputs)} widgets")


def screen_problems(dialogs: list[str], toasts: list[str]) -> list[str]:
    """A dialog or a pop-up notification on screen is something the reader must deal with."""
    return ([f"a dialog is open: {short(text, 4)}" for text in dialogs]
            + [f"a pop-up shows: {short(text, 4)}" for text in toasts])


def ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    parts, numbers = [], sorted(numbers)
    for n in numbers:
        if parts and n == parts[-1][1] + 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in parts)


def is_explorer(path: Path) -> bool:
    """Whether a notebook builds the latent explorer (the slider check applies)."""
    return EXPLORER_CALL in path.read_text(encoding="utf-8")


def default_notebooks(folder: Path = NOTEBOOK_DIR, explorer: str = EXPLORER_NOTEBOOK) -> list[Path]:
    """The main track in order, then the explorer notebook: by its configured name, else the one
    notebook that calls latent_explorer; a clear error when the main track or it is missing."""
    main = sorted(folder.glob(MAIN_TRACK))
    if not main:
        raise SystemExit(f"no main-track notebooks ({MAIN_TRACK}) in {folder}")
    if (folder / explorer).exists():
        return main + [folder / explorer]
    found = [p for p in sorted(folder.glob("[0-9][0-9]_*.ipynb")) if p not in main and is_explorer(p)]
    if len(found) != 1:
        raise SystemExit(f"the explorer notebook {explorer} is missing from {folder} and "
                         f"{len(found) or 'no'} other notebook(s) call {EXPLORER_CALL}...); "
                         f"set EXPLORER_NOTEBOOK in {Path(__file__).name}")
    print(f"note: {explorer} is missing; checking {found[0].name}, which calls {EXPLORER_CALL}...); "
          f"update EXPLORER_NOTEBOOK in {Path(__file__).name}")
    return main + found


def opens_modified(metadata: dict, kernel_display_name: str) -> str:
    """The note for a notebook that JupyterLab marks modified as soon as its kernel starts (the
    tab shows a dot and closing it asks to save): it rewrites the kernel metadata it finds stale."""
    saved = metadata.get("kernelspec", {}).get("display_name")
    why = (f"its kernelspec display_name is {saved!r}, the kernel's is {kernel_display_name!r}"
           if saved != kernel_display_name else "its kernel metadata (language_info?) differs from the kernel's")
    return f"opens as modified (the tab shows a dot, closing asks to save): {why}"


def picture_changed(before: str | None, after: str | None) -> bool:
    """Whether the explorer's picture (its image bytes, base64) changed."""
    return before is not None and after is not None and before != after


# ---- JupyterLab server ----

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """JupyterLab serving ``root`` on 127.0.0.1 with a random port and token."""

    def __init__(self, root: Path, scratch: Path):
        self.port, self.token = free_port(), secrets.token_urlsafe(24)
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "TQDM_DISABLE")}
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR",
                     "JUPYTER_RUNTIME_DIR"):                      # nothing from the user's own set-up
            env[name] = str(scratch / name.lower())
        env["AELIB_IMAGES_DIR"] = str(scratch / "figures")     # save_figure: not the repo's images/
        self.log_path = scratch / "jupyterlab.log"
        command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={root}"]
        command += ["--allow-root"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(command, env=env, stdout=self.log_path.open("w"),
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"JupyterLab did not start:\n{self.log_tail()}")
                time.sleep(0.3)

    def api(self, method: str, path: str):
        request = urllib.request.Request(self.base + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{urllib.parse.quote(notebook)}?reset&token={self.token}"

    def kernel_display_name(self, kernel: str = "python3") -> str:
        return self.api("GET", "/api/kernelspecs")["kernelspecs"][kernel]["spec"]["display_name"]

    def shut_down_kernels(self) -> list[str]:
        """Shut down every kernel; returns the paths of the notebooks they ran."""
        sessions = self.api("GET", "/api/sessions")
        for session in sessions:
            self.api("DELETE", f"/api/sessions/{session['id']}")
        return [session["path"] for session in sessions]

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


# ---- the browser side ----

COLLECT_CELLS = """panel => [...panel.querySelectorAll('.jp-Cell')].map((cell, index) => ({
  index,
  kind: cell.classList.contains('jp-CodeCell') ? 'code'
        : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw',
  prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
  outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(out => ({
    mime: out.getAttribute('data-mime-type') || '', text: (out.textContent || '').slice(0, 4000),
    widget: !!out.querySelector('.jupyter-widgets')})),
  images: [...cell.querySelectorAll('img')].map(img => ({complete: img.complete, width: img.naturalWidth})),
}))"""
COLLECT_SCREEN = """() => {
  const shown = el => el.getClientRects().length > 0;
  return {dialogs: [...document.querySelectorAll('.jp-Dialog')].filter(shown).map(d => d.innerText),
          toasts: [...document.querySelectorAll('.Toastify__toast')].filter(shown).map(t => t.innerText)};
}"""
PROMPTS = "panel => [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent)"
KERNEL_STATUS = "[title^='Change kernel for']"         # status bar: "Python 3 (ipykernel) | Idle"
IMAGE_BYTES = """async img => { const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let s = ''; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); }"""


def kernel_idle(page) -> bool:
    status = page.locator(KERNEL_STATUS)
    indicator = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator")
    return (status.count() > 0 and status.first.inner_text().strip().endswith("| Idle")
            and (indicator.count() == 0 or indicator.first.get_attribute("data-status") == "idle"))


def wait_until(condition, seconds: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def run_all(page, timeout: float) -> list[str]:
    """Run > Run All Cells, then wait until no cell runs and the kernel is idle."""
    panel = page.locator(".jp-NotebookPanel").first
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    running = lambda: any(prompt_state(p) == "running" for p in panel.evaluate(PROMPTS))  # noqa: E731
    if not wait_until(lambda: running() or not kernel_idle(page), 20, step=0.1):
        return ["Run All Cells started no cell within 20 s"]
    calm = []   # two quiet looks in a row: nothing running, kernel idle
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = page.evaluate(COLLECT_SCREEN)
        if screen["dialogs"]:
            return screen_problems(screen["dialogs"], [])
        calm.append(not running() and kernel_idle(page))
        if calm[-2:] == [True, True]:
            return []
        time.sleep(0.5)
    prompts = panel.evaluate(PROMPTS)
    busy = [i + 1 for i, p in enumerate(prompts) if prompt_state(p) == "running"]
    return [f"did not finish within {timeout:.0f} s (code cells still running or queued: {ranges(busy)})"]


def settled_cells(panel, seconds: float = 10) -> list[dict]:
    """The cells once every image has loaded, no widget is still loading and two looks a second
    apart agree (or after ``seconds``)."""
    deadline, last = time.monotonic() + seconds, None
    while True:
        cells = panel.evaluate(COLLECT_CELLS)
        loading = any(not i["complete"] for c in cells for i in c["images"]) or any(
            o["text"].strip().startswith(LOADING_WIDGET) for c in cells for o in c["outputs"])
        if (cells == last and not loading) or time.monotonic() > deadline:
            return cells
        last = cells
        time.sleep(1)


def check_explorer(page, shot: Path) -> list[str]:
    """Focus the first slider, move it with the arrow keys, and check that the picture changes."""
    panel = page.locator(".jp-NotebookPanel").first
    slider = panel.locator(".widget-slider").first
    picture = panel.locator("img.widget-image, .widget-image img").first
    if slider.count() == 0 or picture.count() == 0:
        return [f"the explorer shows no {'slider' if slider.count() == 0 else 'picture'} "
                f"(is the widget rendered?)"]
    handle = slider.locator("[role=slider], .slider-container [tabindex], input[type=range]").first
    if handle.count() == 0:
        return ["the explorer's slider has no handle to focus (is the widget rendered?)"]
    handle.scroll_into_view_if_needed()
    readout = lambda: slider.locator(".widget-readout").first.inner_text()  # noqa: E731
    before, value = picture.evaluate(IMAGE_BYTES), readout()
    handle.focus()
    for key in ("ArrowRight", "ArrowLeft"):
        for _ in range(5 if key == "ArrowRight" else 10):
            page.keyboard.press(key)
        if wait_until(lambda: readout() != value, 3):
            break
    else:
        return [f"the explorer's slider did not move with the arrow keys (readout stays {value})"]
    changed = wait_until(lambda: picture_changed(before, picture.evaluate(IMAGE_BYTES)), 15, step=0.5)
    page.screenshot(path=str(shot))
    if not changed:
        return [f"the explorer's picture did not change when its slider moved from {value} to {readout()}"]
    print(f"  explorer: slider {value} -> {readout()}, picture redrawn")
    return []


def drive_notebook(page, lab: Lab, path: Path, timeout: float, shot: Path, explorer: bool) -> list[str]:
    """Open, Run All, look at every cell and at the screen, take the screenshot."""
    name, notebook_metadata = path.name, json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    page.goto(lab.url(name))
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    if not wait_until(lambda: kernel_idle(page) or page.evaluate(COLLECT_SCREEN)["dialogs"], 60):
        return ["the kernel did not become idle within 60 s of opening"]
    screen = page.evaluate(COLLECT_SCREEN)
    if screen["dialogs"]:
        return screen_problems(screen["dialogs"], [])
    panel = page.locator(".jp-NotebookPanel").first
    saved = cell_problems(panel.evaluate(COLLECT_CELLS), hint=" (saved output: shows until the notebook runs)")
    notes = [p for p in saved if "widget" in p]
    if page.locator(".lm-TabBar-tab.jp-mod-dirty").count():
        notes.append(opens_modified(notebook_metadata, lab.kernel_display_name()))
    for note in notes:    # saved outputs and metadata, as an attendee opens the notebook
        print(f"  note, as opened (before Run All): {note}")
    problems = notes if OPENING_NOTES_FAIL else []
    problems += run_all(page, timeout)
    cells = settled_cells(panel)
    print(f"  {cell_summary(cells)}")
    problems += cell_problems(cells)
    page.evaluate("() => document.querySelectorAll('.jp-NotebookPanel .jp-WindowedPanel-outer')"
                  ".forEach(el => el.scrollTo(0, 0))")
    time.sleep(0.5)
    screen = page.evaluate(COLLECT_SCREEN)
    problems += screen_problems(screen["dialogs"], screen["toasts"])
    page.screenshot(path=str(shot))
    if explorer and not problems:
        problems += check_explorer(page, shot.with_name(shot.stem + "-explorer.png"))
    return problems


def check_notebook(context, lab: Lab, path: Path, timeout: float, shots: Path, explorer: bool) -> list[str]:
    """The problems of one notebook in a fresh tab; the tab is closed unsaved, its kernel shut down."""
    name = path.name
    page = context.new_page()
    console = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(str(e)))
    shot = shots / (Path(name).stem + ".png")
    try:
        problems = drive_notebook(page, lab, path, timeout, shot, explorer)
    except Exception as exc:  # a Playwright timeout or a crash is a failure of this notebook
        problems = [f"{type(exc).__name__}: {short(str(exc), 2)}"]
        try:
            page.screenshot(path=str(shot))
        except Exception:
            pass
    if console and (problems or os.environ.get("LAB_CHECK_VERBOSE")):
        problems_note = "\n    ".join(short(c, 1, 200) for c in dict.fromkeys(console))
        print(f"  browser console errors:\n    {problems_note}")
    page.close()                     # no beforeunload handler runs: the unsaved copy is dropped
    try:
        others = [path for path in lab.shut_down_kernels() if Path(path).name != name]
    except OSError as exc:
        others = [f"(could not list kernels: {exc})"]
    if others:
        problems.append(f"kernels were running for other notebooks too: {', '.join(others)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help=f"default: {MAIN_TRACK} and {EXPLORER_NOTEBOOK} in notebooks/")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per notebook")
    parser.add_argument("--screenshots", type=Path, default=SCREENSHOT_DIR)
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit("Playwright is missing: pip install playwright (the browser is Chromium "
                         f"at {CHROMIUM}; no `playwright install` needed)")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    notebooks = [p.resolve() for p in args.notebooks] or default_notebooks()
    for path in notebooks:
        if not path.exists():
            raise SystemExit(f"no such notebook: {path}")
    settings = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    if not settings.exists() or settings.read_bytes() != SETTINGS_FILE.read_bytes():
        print(f"warning: {settings} differs from {SETTINGS_FILE.relative_to(REPO)} "
              "(run `make lab-check`, which installs it)")
    args.screenshots.mkdir(parents=True, exist_ok=True)
    for old in args.screenshots.glob("*.png"):
        old.unlink()
    start, failures = time.monotonic(), {}
    with tempfile.TemporaryDirectory(prefix="lab-check-") as tmp:
        scratch = Path(tmp)
        root = scratch / "notebooks"
        shutil.copytree(NOTEBOOK_DIR, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        for path in notebooks:
            if path.parent != NOTEBOOK_DIR.resolve():
                shutil.copy(path, root / path.name)
        (scratch / "images").symlink_to(REPO / "images")   # Markdown may show ../images/*.png
        lab = Lab(root, scratch)
        print(f"JupyterLab on {lab.base} ({time.monotonic() - start:.0f} s), Chromium {CHROMIUM}")
        try:
            with sync_playwright() as p:
                context = p.chromium.launch_persistent_context(
                    str(scratch / "chromium-profile"), executable_path=CHROMIUM, headless=True,
                    args=CHROMIUM_ARGS, viewport=VIEWPORT)
                for path in notebooks:
                    began = time.monotonic()
                    problems = check_notebook(context, lab, path, args.timeout, args.screenshots,
                                              is_explorer(path))
                    print(f"{path.name}: {time.monotonic() - began:.0f} s, "
                          f"{'FAILED' if problems else 'ok'}", flush=True)
                    for problem in problems:
                        print(f"  {problem}", flush=True)
                    if problems:
                        failures[path.name] = problems
                context.close()
        finally:
            lab.stop()
    took = time.monotonic() - start
    print(f"{len(notebooks) - len(failures)} passed, {len(failures)} failed in {took:.0f} s; "
          f"screenshots in {args.screenshots}")
    if took > BUDGET_S and not args.notebooks:
        print(f"warning: over the {BUDGET_S} s this check may take in CI (warm model cache?)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
