"""Fill the model cache with every model the notebooks ask for, several trainings at a time.

  python scripts/pretrain.py [--jobs 2] [--set LATENT_DIM=3 SEED=5 EPOCHS=3] [--list] [notebooks ...]

The list of models comes from the notebooks themselves, so the two cannot drift: each
notebook's parameters cell (with the ``--set`` values put in, as scripts/run_params.py does)
and then its code cells are dry-run with aelib and every other import replaced by stand-ins;
every ``aelib.train_or_load(...)``, ``train_or_load_many(...)`` or
``latent.sweep_latent_sizes(...)`` call reached is recorded instead of run. Statements that need real data simply fail and are skipped. The models
missing from the cache are then trained by ``aelib.train_or_load_many``, one torch thread
per process. The notebooks would train them too; this only runs those trainings side by side.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_params import set_parameters  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CALLS = ("train_or_load", "train_or_load_many", "sweep_latent_sizes")
NOT_SETTINGS = ("device", "verbose", "cache_dir", "retrain")  # do not change which model it is
PLAIN_MODULES = ("math", "itertools", "functools", "collections", "statistics")  # imported for real


class Stub:
    """Stands for anything the dry run does not compute (data, models, figures, modules):
    every attribute, call, item and operation on it gives another Stub."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return Stub()

    def __iter__(self):
        return iter((Stub(), Stub()))  # unpacks as a pair, e.g. `model, history = ...`

    def __len__(self):
        return 2

    def __format__(self, spec):
        return "?"


for _op in ("call getitem setitem add radd sub rsub mul rmul truediv rtruediv floordiv pow matmul rmatmul "
            "neg abs lt le gt ge and or invert").split():
    setattr(Stub, f"__{_op}__", lambda self, *args, **kwargs: Stub())


class Recorder(Stub):
    """The stand-in for ``aelib``: records the models a notebook asks for."""

    def __init__(self, jobs: list, reached: set):
        self._jobs, self._reached = jobs, reached
        self.latent = self  # for aelib.latent.sweep_latent_sizes

    def _record(self, kind, kwargs: dict) -> None:
        settings = {k: v for k, v in kwargs.items() if k not in NOT_SETTINGS}
        if not any(isinstance(v, Stub) for v in (kind, *settings.values())):  # else: not derivable
            frame = sys._getframe(2)  # the notebook's line that asks
            self._reached.add((frame.f_code.co_filename, frame.f_lineno))
            self._jobs.append((kind, settings))

    def train_or_load(self, kind="ae", **kwargs):
        self._record(kind, kwargs)
        return Stub(), Stub()

    def train_or_load_many(self, jobs, processes=None):
        for kind, kwargs in jobs:
            self._record(kind, kwargs)
        return [(Stub(), Stub()) for _ in jobs]

    def sweep_latent_sizes(self, sizes, epochs=10, seed=0, **_):
        for k in sorted(set(sizes)):
            self._record("ae", {"latent_dim": k, "epochs": epochs, "seed": seed})
        return Stub()


def _cells(path: Path, values: dict[str, str]) -> list[list[ast.stmt]]:
    """The code cells' statements (a cell that is not plain Python, e.g. %magic, is skipped)."""
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in cells]
    if sources:
        sources[0] = set_parameters(sources[0], values)[0]
    out = []
    for source in sources:
        try:
            out.append(ast.parse(source).body)
        except SyntaxError:
            out.append([])
    return out


def call_sites(path: Path) -> set[tuple[str, int, int]]:
    """``(cell name, first line, last line)`` of every train_or_load(_many) call in a notebook."""
    sites = set()
    for i, statements in enumerate(_cells(path, {})):
        for node in (n for statement in statements for n in ast.walk(statement)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in CALLS:
                sites.add((f"{path.name}:cell{i}", node.lineno, node.end_lineno))
    return sites


def _run(statements: list[ast.stmt], env: dict, name: str) -> None:
    """Run each statement on its own, skipping those that fail (they need real data); a
    ``for`` loop's body runs statement by statement for each value, so a failing line in it
    does not hide the models asked for further on."""
    for statement in statements:
        try:
            if isinstance(statement, ast.For) and not statement.orelse:
                values = list(eval(compile(ast.Expression(statement.iter), name, "eval"), env))
                bind = ast.Module([ast.Assign([statement.target], ast.Name("_dry_value", ast.Load()))], [])
                for value in values[:100]:
                    env["_dry_value"] = value
                    exec(compile(ast.fix_missing_locations(bind), name, "exec"), env)
                    _run(statement.body, env, name)
            elif not isinstance(statement, ast.While):
                exec(compile(ast.Module([statement], []), name, "exec"), env)
        except Exception:  # needs real data or models: not about which models to train
            pass


def dry_run(path: Path, values: dict[str, str] | None = None) -> tuple[list, set]:
    """The ``(kind, settings)`` a notebook asks for with these parameter values, and the
    ``(cell name, line)`` of each call reached."""
    jobs, reached = [], set()
    aelib = Recorder(jobs, reached)
    real_import = builtins.__import__

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name.split(".")[0] == "aelib":
            return aelib
        return real_import(name, globals, locals, fromlist, level) if name in PLAIN_MODULES else Stub()

    quiet = {**vars(builtins), "__import__": fake_import, "print": Stub(), "display": Stub(), "open": Stub()}
    env = {"__builtins__": quiet, "__name__": "__dry_run__"}
    for i, statements in enumerate(_cells(path, values or {})):
        _run(statements, env, f"{path.name}:cell{i}")
    return jobs, reached


def notebook_jobs(paths, values: dict[str, str] | None = None) -> list[tuple[str, dict]]:
    """Every distinct ``(kind, settings)`` the notebooks ask for, in the order first asked."""
    jobs = []
    for path in paths:
        jobs += [job for job in dry_run(Path(path), values)[0] if job not in jobs]
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE")
    parser.add_argument("--jobs", type=int, default=None, help="trainings at once (default: aelib's)")
    parser.add_argument("--list", action="store_true", help="only print the models")
    args = parser.parse_args()
    jobs = notebook_jobs(args.notebooks, dict(item.split("=", 1) for item in args.set))
    for kind, settings in jobs:
        print(kind, settings, flush=True)
    if not args.list:
        import aelib

        aelib.train_or_load_many([(kind, {**s, "verbose": False}) for kind, s in jobs], processes=args.jobs)
        print(f"{len(jobs)} models ready in the cache", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
