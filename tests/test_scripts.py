"""scripts/: run_params (other parameter values in scratch copies), pretrain (what each notebook
trains, stated in scripts/pretrain.py), and the Makefile's set-up and cache targets."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import NOTEBOOKS, ROOT, notebook_code, raises_naming

sys.path.insert(0, str(ROOT / "scripts"))
run_params = importlib.import_module("run_params")
pretrain = importlib.import_module("pretrain")


def notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def script(name: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], capture_output=True,
                          text=True, timeout=300, **kwargs)


# ------------------------------------------------------------------- run_params: the parameters cell

def test_set_parameters_replaces_a_value_written_over_several_lines():
    new, done = run_params.set_parameters("K_VALUES = [2, 4,\n 8]  # sizes\nSEED = 0\n", {"K_VALUES": "[3]"})
    assert (new, done) == ("K_VALUES = [3]  # sizes\nSEED = 0\n", ["K_VALUES"])


def test_set_parameters_keeps_a_hash_inside_a_string_and_the_comment_after_the_value():
    new, _ = run_params.set_parameters('TITLE = "run #1"  # shown on top\n', {"TITLE": '"run #2"'})
    assert new == 'TITLE = "run #2"  # shown on top\n'


def test_set_parameters_touches_only_the_named_assignments():
    source = 'NAME = "编码"; LATENT_DIM = 8   # 编码 z 的长度\nLATENT_DIMS = [2]\nBIG = LATENT_DIM * 2\n'
    new, done = run_params.set_parameters(source, {"LATENT_DIM": "3", "EPOCHS": "1"})
    assert new == source.replace("LATENT_DIM = 8", "LATENT_DIM = 3")
    assert done == ["LATENT_DIM"]  # EPOCHS is not in this cell: skipped


@pytest.mark.parametrize("item", ["LATENT_DIM", "LATENT_DIM 3", "TITLE=run #1"])
def test_a_set_item_that_is_not_name_equals_value_is_named_in_the_error(item):
    with raises_naming(SystemExit, repr(item)):
        run_params.parse_settings([item])


def test_run_params_names_an_unknown_parameter_and_runs_nothing(tmp_path):
    nb = notebook(tmp_path / "01_a.ipynb", "# Parameters\nLATENT_DIM = 8", "print(LATENT_DIM)")
    done = script("run_params.py", "--out", str(tmp_path / "out"), "--set", "LATNT_DIM=3", "--", str(nb))
    assert done.returncode != 0 and "LATNT_DIM" in done.stderr
    assert not (tmp_path / "out" / "01_a.ipynb").exists()


def test_run_params_runs_every_notebook_though_one_errs_and_one_kernel_dies(tmp_path):
    paths = [notebook(tmp_path / "01_ok.ipynb", "# Parameters\nK = 8", "assert K == 3, K\nprint('fine')"),
             notebook(tmp_path / "02_error.ipynb", "# Parameters\nK = 8", "assert K == 8, 'K was changed'"),
             notebook(tmp_path / "03_dies.ipynb", "K = 8", "import os\nos._exit(1)"),
             notebook(tmp_path / "04_after.ipynb", "K = 8", "print('after', K)")]
    before = [p.read_text() for p in paths]
    done = script("run_params.py", "--jobs", "1", "--out", str(tmp_path / "out"), "--set", "K=3", "--",
                  *map(str, paths))
    assert done.returncode == 1
    assert "2 passed, 2 failed: 02_error.ipynb, 03_dies.ipynb" in done.stdout
    assert "K was changed" in done.stderr and "03_dies.ipynb" in done.stderr
    assert [p.read_text() for p in paths] == before  # the originals are untouched
    after = json.loads((tmp_path / "out" / "04_after.ipynb").read_text())
    assert "after 3" in "".join(after["cells"][1]["outputs"][0]["text"])


# ------------------------------------------------------------------- pretrain: what each notebook trains

def parameter(path: Path, name: str):
    return ast.literal_eval(run_params.assignments(run_params.parameters_cell(path))[name])


def autoencoders(jobs) -> dict[int, dict]:
    return {s["latent_dim"]: s for kind, s in jobs if kind == "ae" and "code_activation" not in s}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_pretrain_knows_every_notebook_and_lists_models_exactly_where_its_code_trains(path):
    trains = re.search(r"\b(train_or_load|train_or_load_many|sweep_latent_sizes)\(", notebook_code(path))
    assert bool(pretrain.notebook_models(path)) == bool(trains)


def test_pretrain_06_trains_the_k_curve_with_the_readers_k_and_the_larger_code():
    nb = ROOT / "notebooks" / "06_naive_sampling.ipynb"
    default = autoencoders(pretrain.notebook_models(nb))
    assert set(parameter(nb, "K_VALUES")) | {parameter(nb, "LATENT_DIM")} <= set(default)
    values = {"LATENT_DIM": "3", "K_VALUES": "[2, 5]", "LARGE_DIM": "6", "EPOCHS": "2", "SEED": "7"}
    jobs = pretrain.notebook_models(nb, values)
    assert autoencoders(jobs) == {k: {"latent_dim": k, "epochs": 2, "seed": 7} for k in (2, 3, 5, 6)}
    assert ("classifier", {"epochs": 3}) in jobs  # the digit reader
    # a larger code that is not larger than the reader's: twice the reader's (the parameters cell says so)
    assert set(autoencoders(pretrain.notebook_models(nb, {**values, "LARGE_DIM": "2"}))) == {2, 3, 5, 6}


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if pretrain.notebook_models(p) and
                                  "LATENT_DIM" in pretrain.parameters(p, {})], ids=lambda p: p.name)
def test_pretrain_lists_the_readers_own_model_for_the_values_set(path):
    jobs = pretrain.notebook_models(path, {"LATENT_DIM": "3", "EPOCHS": "2", "SEED": "7"})
    assert ("ae", {"latent_dim": 3, "epochs": 2, "seed": 7}) in jobs
    assert all(s["epochs"] == 2 for kind, s in jobs if kind != "classifier")


def test_pretrain_12_trains_every_code_size_with_every_seed():
    nb = ROOT / "notebooks" / "12_k_curve_seeds.ipynb"
    jobs = pretrain.notebook_models(nb, {"K_VALUES": "[3, 5]", "SEED": "4", "N_SEEDS": "2", "EPOCHS": "2"})
    assert sorted((s["latent_dim"], s["seed"]) for kind, s in jobs if kind == "ae") == [(3, 4), (3, 5), (5, 4), (5, 5)]
    assert ("classifier", {"epochs": 3}) in jobs


def test_pretrain_09_trains_its_whole_sweep():
    nb = ROOT / "notebooks" / "09_pca_linear_ae.ipynb"
    jobs = pretrain.notebook_models(nb, {"SWEEP_DIMS": "[5, 7]", "LATENT_DIM": "3", "COMPARE_DIM": "6"})
    assert set(autoencoders(jobs)) == {3, 5, 6, 7}
    assert ("linear", {"latent_dim": 3, "epochs": parameter(nb, "EPOCHS"), "seed": parameter(nb, "SEED")}) in jobs


def test_pretrain_04_never_compares_a_code_size_with_itself():
    nb = ROOT / "notebooks" / "04_reconstruction.ipynb"
    for k in ("4", "8", "16"):
        ks = [s["latent_dim"] for kind, s in pretrain.notebook_models(nb, {"LATENT_DIM": k, "COMPARE_DIM": k})
              if kind == "ae"]
        assert len(set(ks)) == 2 and int(k) in ks


def test_pretrain_lists_each_model_of_a_parameter_set_once():
    done = script("pretrain.py", "--list", "--set", "LATENT_DIM=3", "SEED=5", "EPOCHS=3", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    jobs = [(line.split(" ", 1)[0], ast.literal_eval(line.split(" ", 1)[1].split("  <- ")[0]))
            for line in done.stdout.splitlines()]
    assert ("ae", {"latent_dim": 3, "seed": 5, "epochs": 3}) in jobs
    n_seeds = parameter(ROOT / "notebooks" / "11_reliability.ipynb", "N_SEEDS")
    seeds = {s["seed"] for kind, s in jobs if kind == "ae" and s["latent_dim"] == 3 and "code_activation" not in s}
    assert seeds == set(range(5, 5 + n_seeds))  # notebook 11: seeds SEED, SEED + 1, ...
    assert all(jobs.count(job) == 1 for job in jobs)


def test_pretrain_names_a_notebook_it_does_not_know_and_a_parameter_its_entry_misses(tmp_path):
    new = notebook(tmp_path / "12_new.ipynb", "LATENT_DIM = 8", "aelib.train_or_load('ae')")
    with raises_naming(SystemExit, "12_new.ipynb", "MODELS", "scripts/pretrain.py"):
        pretrain.notebook_models(new)
    renamed = notebook(tmp_path / "03_training.ipynb", "LATENT_DIM = 8\nSEED = 0\nN_EPOCHS = 10")
    with raises_naming(SystemExit, "03_training.ipynb", "'EPOCHS'", "MODELS"):
        pretrain.notebook_models(renamed)


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


def test_make_runs_tests_with_one_thread_and_notebooks_from_the_cache_only():
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    done = make("-n", "test", "params-check", cwd=ROOT)
    lines = done.stdout.splitlines()
    runs = [line for line in lines if "-m pytest" in line or "run_params.py" in line]
    assert runs and all("AELIB_NUM_THREADS=1" in line for line in runs), runs
    notebook_runs = [line for line in runs if line.endswith("notebooks") or "run_params.py" in line]
    assert len(notebook_runs) == 2 and all("AELIB_CACHE_ONLY=1" in line for line in notebook_runs), runs
    # the unit tests train small models into scratch caches: not cache-only
    assert all("AELIB_CACHE_ONLY" not in line for line in runs if line not in notebook_runs)
    assert lines.index(next(line for line in lines if "pretrain.py" in line)) < lines.index(notebook_runs[0])


def test_make_clean_cache_deletes_the_models_of_the_cache_it_is_pointed_at(tmp_path):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    shutil.copy(ROOT / "Makefile", tmp_path)
    default, other = tmp_path / "checkpoints", tmp_path / "relative" / "cache"
    for folder in (default, other):
        folder.mkdir(parents=True)
        for name in ("ae_latent_dim=8.pt", ".ae_latent_dim=8.pt.lock", "notes.txt"):
            (folder / name).write_text("x")
    env = {k: v for k, v in os.environ.items() if k != "AELIB_CHECKPOINT_DIR"}
    done = subprocess.run(["make", "clean-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**env, "AELIB_CHECKPOINT_DIR": "relative/cache", "MAKEFLAGS": ""})
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]  # only the cache's own files
    assert len(list(default.iterdir())) == 3  # the other cache is left alone
    subprocess.run(["make", "clean-cache"], cwd=tmp_path, capture_output=True, timeout=60,
                   env={**env, "MAKEFLAGS": ""})
    assert sorted(p.name for p in default.iterdir()) == ["notes.txt"]
