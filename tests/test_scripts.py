"""scripts/: run_params (other parameter values in a scratch copy) and pretrain, whose list of
models is read from the notebooks themselves, so the two cannot drift; the Makefile's set-up."""

from __future__ import annotations

import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))
run_params = importlib.import_module("run_params")
pretrain = importlib.import_module("pretrain")

# the parameter sets of `make params-check` (Makefile), and the notebooks' own values
PARAMETER_SETS = [{}, {"LATENT_DIM": "16", "SEED": "1", "EPOCHS": "3"}, {"LATENT_DIM": "3", "SEED": "5", "EPOCHS": "3"}]


def notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_set_parameters_replaces_named_values_and_keeps_comments():
    source = "# Parameters\nLATENT_DIM = 8   # size of z\nSEED = 0\nLATENT_DIMS = [2]\n"
    new, done = run_params.set_parameters(source, {"LATENT_DIM": "3", "EPOCHS": "1"})
    assert new == "# Parameters\nLATENT_DIM = 3  # size of z\nSEED = 0\nLATENT_DIMS = [2]\n"
    assert done == ["LATENT_DIM"]  # EPOCHS is not in this notebook: skipped


def test_dry_run_records_every_model_asked_for_with_the_values_set(tmp_path):
    path = notebook(
        tmp_path / "09_x.ipynb",
        "# Parameters: change them and rerun the whole notebook\nLATENT_DIM = 8\nEPOCHS = 10\nEXTRA = [2, 4]",
        "import aelib\nfrom aelib import latent\nimport torch\nimages, labels = aelib.load_mnist()\n"
        "device = aelib.pick_device(None)\nprint('loaded', images.shape)",
        "model, _ = aelib.train_or_load('ae', latent_dim=LATENT_DIM, epochs=EPOCHS, device=device)\n"
        "codes = latent.embed_images(model, images)\nbig = LATENT_DIM if LATENT_DIM > 8 else 2 * LATENT_DIM",
        "%matplotlib inline\nthis cell is no Python",
        "ks = sorted(set(EXTRA) | {big})\njobs = [('ae', dict(latent_dim=k, epochs=EPOCHS)) for k in ks]\n"
        "out = aelib.train_or_load_many([('classifier', dict(epochs=3))] + jobs)\n"
        "for k in ks:\n    aelib.train_or_load('vae', latent_dim=k, epochs=EPOCHS, verbose=False)\n"
        "    codes[codes <= 0] = 1 / 0  # fails: the loop goes on\n"
        "aelib.train_or_load('ae', latent_dim=codes.shape[1])  # not derivable: not recorded\n"
        "table = latent.sweep_latent_sizes([5, LATENT_DIM], epochs=2)")
    jobs, reached = pretrain.dry_run(path, {"LATENT_DIM": "3", "EPOCHS": "1"})
    assert jobs == [("ae", {"latent_dim": 3, "epochs": 1}), ("classifier", {"epochs": 3}),
                    ("ae", {"latent_dim": 2, "epochs": 1}), ("ae", {"latent_dim": 4, "epochs": 1}),
                    ("ae", {"latent_dim": 6, "epochs": 1}), ("vae", {"latent_dim": 2, "epochs": 1}),
                    ("vae", {"latent_dim": 4, "epochs": 1}), ("vae", {"latent_dim": 6, "epochs": 1}),
                    ("ae", {"latent_dim": 3, "epochs": 2, "seed": 0}), ("ae", {"latent_dim": 5, "epochs": 2, "seed": 0})]
    sites = pretrain.call_sites(path)
    assert len(sites) == 5 and not any(s[0].endswith("cell3") for s in sites)
    unreached = {s for s in sites if not any(r[0] == s[0] and s[1] <= r[1] <= s[2] for r in reached)}
    assert [s[1] for s in unreached] == [7]  # the call whose code size comes from data


@pytest.mark.parametrize("values", PARAMETER_SETS, ids=lambda v: " ".join(f"{k}={x}" for k, x in v.items()) or "own")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_pretrain_finds_every_model_a_notebook_asks_for(path, values):
    """Every train_or_load(_many) call in a notebook is reached by pretrain's dry run with
    settings it can read: the models pretrain trains are the ones the notebook loads. A call
    whose settings come from data (not from the parameters) fails here: derive them from
    the parameters instead, so that `make pretrain` and the notebook share one cache file."""
    jobs, reached = pretrain.dry_run(path, values)
    for cell, first, last in sorted(pretrain.call_sites(path)):
        assert any(r[0] == cell and first <= r[1] <= last for r in reached), (
            f"{cell}, line {first}: pretrain cannot tell which model this call asks for")
    for kind, settings in jobs:
        assert kind in ("ae", "linear", "vae", "classifier") and all(
            isinstance(v, (int, float, str, type(None))) for v in settings.values()), (kind, settings)


def test_pretrain_lists_the_models_for_a_parameter_set():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "pretrain.py"), "--list",
                           "--set", "LATENT_DIM=3", "SEED=5", "EPOCHS=3"], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    jobs = [(line.split(" ", 1)[0], ast.literal_eval(line.split(" ", 1)[1])) for line in done.stdout.splitlines()]
    assert ("ae", {"latent_dim": 3, "seed": 5, "epochs": 3}) in jobs
    assert all(jobs.count(job) == 1 for job in jobs)  # each model once


def test_run_params_executes_copies_and_names_the_failing_notebook(tmp_path):
    ok = notebook(tmp_path / "01_ok.ipynb", "# Parameters\nK = 8", "assert K == 3, K\nprint('fine')")
    bad = notebook(tmp_path / "02_bad.ipynb", "# Parameters\nK = 8", "assert K == 8, 'K was changed'")
    before = [p.read_text() for p in (ok, bad)]
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_params.py"), "--jobs", "1",
                           "--out", str(tmp_path / "out"), "--set", "K=3", "--", str(ok), str(bad)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "01_ok.ipynb: set K" in done.stdout and "ok" in done.stdout and "1 passed, 1 failed" in done.stdout
    assert "error in 02_bad.ipynb" in done.stderr and "K was changed" in done.stderr
    assert [p.read_text() for p in (ok, bad)] == before  # the originals are untouched
    executed = json.loads((tmp_path / "out" / "01_ok.ipynb").read_text())
    assert "fine" in "".join(executed["cells"][1]["outputs"][0]["text"])


# ------------------------------------------------------------------- the Makefile's set-up

FAKE_VENV_PYTHON = """#!/bin/sh
# a venv's python with a working pip that only logs what it is asked to install
case "$*" in "-m pip --version") exit 0;; "-m pip install"*) echo "$*" >> "$(dirname "$0")/../pip.log"; exit 0;; esac
exit 1
"""
DEBIAN_PYTHON = """#!/bin/sh
# python3 on Debian/Ubuntu without the venv package: `-m venv DIR` leaves DIR/bin/python without pip
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && ln -sf "$(command -v python3)" "$3/bin/python" && echo "home = /usr" > "$3/pyvenv.cfg"
  echo "The virtual environment was not created successfully because ensurepip is not available." >&2; exit 1
fi
exec python3 "$@"
"""
GOOD_PYTHON = """#!/bin/sh
# a python3 whose `-m venv DIR` makes a venv with pip (FAKE_VENV_PYTHON)
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$(dirname "$0")/venv-python" "$3/bin/python" && echo "home = /usr" > "$3/pyvenv.cfg"; exit 0
fi
exec python3 "$@"
"""


@pytest.fixture
def project(tmp_path):
    """A copy of the Makefile beside a half-made venv: bin/python and pyvenv.cfg, no pip."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    shutil.copy(ROOT / "Makefile", tmp_path)
    for name in ("requirements.txt", "pyproject.toml"):
        (tmp_path / name).write_text("# stand-in\n")
    for name, text in (("venv-python", FAKE_VENV_PYTHON), ("debian-python", DEBIAN_PYTHON),
                       ("good-python", GOOD_PYTHON)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True)
    return tmp_path


def make(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A make of its own: not a sub-make of the `make test` that may be running these tests."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def make_setup(project: Path, python: str) -> subprocess.CompletedProcess:
    return make("setup", f"PYTHON={project / python}", cwd=project)


def test_make_rebuilds_a_venv_left_without_pip(project):
    done = make_setup(project, "good-python")
    assert done.returncode == 0, done.stderr
    assert "creating .venv" in done.stdout
    assert "-m pip install -r requirements.txt -e ." in (project / ".venv" / "pip.log").read_text()
    assert (project / ".venv" / ".aelib-installed").exists()
    assert make_setup(project, "good-python").stdout.strip().endswith("Nothing to be done for 'setup'.")


def test_make_names_the_fix_when_the_venv_package_is_missing(project):
    done = make_setup(project, "debian-python")
    assert done.returncode != 0
    assert "sudo apt install python3-venv" in done.stderr and "run make again" in done.stderr
    assert not (project / ".venv").exists()  # the next run starts clean


def test_make_runs_tests_and_checks_with_one_torch_thread_per_process():
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    done = make("-n", "test", "unit", "params-check", cwd=ROOT)
    runs = [line for line in done.stdout.splitlines() if "-m pytest" in line or "run_params.py" in line]
    assert len(runs) == 3 and all("AELIB_NUM_THREADS=1" in line for line in runs), runs
