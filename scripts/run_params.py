"""Execute notebooks with other values in their parameters cell, in a scratch folder.

  python scripts/run_params.py --set LATENT_DIM=16 SEED=1 --out /tmp/params notebooks/0*.ipynb

Each notebook is copied, the named assignments of its first code cell are replaced (names a
notebook does not have are skipped), and the copy is executed top to bottom with its working
directory in notebooks/; figures go to OUT/images, never to the repository's images/.
Exits non-zero when a notebook raises, naming the notebook and the error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def set_parameters(source: str, values: dict[str, str]) -> tuple[str, list[str]]:
    """Replace ``NAME = ...`` lines of a parameters cell; returns the new source and the
    names it replaced (a trailing comment is kept)."""
    done = []
    for name, value in values.items():
        pattern = re.compile(rf"^{re.escape(name)}\s*=[^#\n]*(#.*)?$", re.M)
        source, count = pattern.subn(lambda m: f"{name} = {value}" + (f"  {m.group(1)}" if m.group(1) else ""), source)
        done += [name] * bool(count)
    return source, done


def execute(path: Path, values: dict[str, str], out: Path) -> tuple[str, str | None]:
    """Run one notebook copy; returns (a one-line report, the error or None)."""
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.source, replaced = set_parameters(first.source, values)
    start, error = time.perf_counter(), None
    try:
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    except CellExecutionError as exc:
        error = f"{path.name}: {str(exc).strip().splitlines()[-1]}"
    nbformat.write(nb, out / path.name)
    return (f"{path.name}: set {', '.join(replaced) or 'nothing'}, "
            f"{time.perf_counter() - start:.0f} s, {'FAILED' if error else 'ok'}"), error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=Path("/tmp/aelib-params"))
    parser.add_argument("--jobs", type=int, default=1, help="notebooks executed at once")
    args = parser.parse_args()
    values = dict(item.split("=", 1) for item in args.set)
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    os.environ["AELIB_IMAGES_DIR"] = str((args.out / "images").resolve())
    errors = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        jobs = [pool.submit(execute, p, values, args.out) for p in args.notebooks]
        for job in jobs:
            report, error = job.result()
            print(report, flush=True)
            errors += [error] if error else []
    for line in errors:
        print("error in", line, file=sys.stderr)
    print(f"{len(jobs) - len(errors)} passed, {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
