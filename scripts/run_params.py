"""Execute notebooks with other values in their parameters cell, in a scratch folder.

  python scripts/run_params.py --set LATENT_DIM=16 SEED=1 --out /tmp/params -- notebooks/0*.ipynb

Each copy gets the new values in its first code cell and runs top to bottom with its working
directory in notebooks/; figures go to OUT/images. A notebook that fails (an error, a dead kernel,
a timeout) does not stop the others; the failed ones are named at the end and the exit status is 1.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def parse_settings(items: list[str]) -> dict[str, str]:
    """``["K=3", "TITLE='a b'"]`` -> ``{"K": "3", ...}``; each value must be a Python literal."""
    values = {}
    for item in items:
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name.isidentifier():
            raise SystemExit(f"--set {item!r}: write NAME=VALUE, e.g. --set LATENT_DIM=16 SEED=1")
        try:
            ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise SystemExit(f"--set {item!r}: {value!r} is not a Python literal (a number, a list, None, "
                             f"or quoted text such as {name}='\"{value}\"')") from None
        values[name] = value
    return values


def assignments(source: str) -> dict[str, ast.expr]:
    """The ``NAME = value`` (or ``NAME: type = value``) statements of a parameters cell: name -> value node."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name):
                found[targets[0].id] = node.value
    return found


def set_parameters(source: str, values: dict[str, str]) -> tuple[str, list[str]]:
    """Replace the values of ``NAME = ...`` assignments in a parameters cell: exactly the value's source
    span (a value over several lines, a ``#`` inside a string and a comment after the value are fine).
    Returns the new source and the names replaced; other names are skipped."""
    data = source.encode()  # ast's column offsets count UTF-8 bytes
    starts = list(itertools.accumulate((len(line) for line in data.splitlines(keepends=True)), initial=0))
    spans = sorted((starts[v.lineno - 1] + v.col_offset, starts[v.end_lineno - 1] + v.end_col_offset, name)
                   for name, v in assignments(source).items() if name in values)
    for begin, end, name in reversed(spans):
        data = data[:begin] + values[name].encode() + data[end:]
    return data.decode(), [name for *_, name in spans]


def parameters_cell(path: Path) -> str:
    """The source of a notebook's first code cell, its parameters cell."""
    return next(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")


def check_names(values: dict[str, str], paths: list[Path]) -> None:
    """A clear error for a ``--set`` name that none of these notebooks has."""
    known = set().union(*(assignments(parameters_cell(path)) for path in paths))
    if unknown := [name for name in values if name not in known]:
        raise SystemExit(f"--set {', '.join(unknown)}: no such parameter in the parameters cells of "
                         f"these notebooks (they have: {', '.join(sorted(known))})")


def execute(path: Path, values: dict[str, str], out: Path) -> tuple[str, str | None]:
    """Run one notebook copy; returns (a one-line report, the error or None). Never raises."""
    start, error, replaced = time.perf_counter(), None, []
    try:
        nb = nbformat.read(path, as_version=4)
        first = next(cell for cell in nb.cells if cell.cell_type == "code")
        first.source, replaced = set_parameters(first.source, values)
        try:
            NotebookClient(nb, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
        finally:
            nbformat.write(nb, out / path.name)
    except Exception as exc:  # a cell's error, a dead kernel, a timeout: this notebook failed
        error = f"{path.name}: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[-1]}"
    return (f"{path.name}: set {', '.join(replaced) or 'nothing'}, "
            f"{time.perf_counter() - start:.0f} s, {'FAILED' if error else 'ok'}"), error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=Path("/tmp/aelib-params"))
    parser.add_argument("--jobs", type=int, default=1, help="notebooks executed at once")
    args = parser.parse_args()
    values = parse_settings(args.set)
    check_names(values, args.notebooks)
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    os.environ["AELIB_IMAGES_DIR"] = str((args.out / "images").resolve())
    failed = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = {p: pool.submit(execute, p, values, args.out) for p in args.notebooks}
        for path, run in runs.items():
            try:
                report, error = run.result()
            except Exception as exc:  # the worker itself died
                report, error = f"{path.name}: FAILED", f"{path.name}: {type(exc).__name__}: {exc}"
            print(report, flush=True)
            failed += [error] if error else []
    print("".join(f"error in {line}\n" for line in failed), end="", file=sys.stderr)
    print(f"{len(runs) - len(failed)} passed, {len(failed)} failed"
          + (f": {', '.join(line.split(':')[0] for line in failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
