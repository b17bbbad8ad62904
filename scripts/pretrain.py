"""Fill the model cache with every model the notebooks train, several trainings at a time.

  python scripts/pretrain.py [--jobs 2] [--set LATENT_DIM=3 SEED=5 EPOCHS=3] [--list] [notebooks ...]

What each notebook trains is written out below (MODELS), as a function of its parameters: the
literal assignments of its parameters cell, with the ``--set`` values put in as
scripts/run_params.py puts them in. The models missing from the cache are then trained by
``aelib.train_or_load_many``. When a notebook changes what it trains, change its entry here:
CI executes every notebook after pretraining with AELIB_CACHE_ONLY=1, so a model this list
misses fails there. ``--list`` only prints the models and the notebooks that use them.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_params import check_names, parameters_cell, parse_settings, set_parameters  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLASSIFIER = ("classifier", {"epochs": 3})  # the digit reader of 06-10; not tied to SEED


def ae(p: dict, k: int, seed: int | None = None, **settings) -> tuple[str, dict]:
    """The article's autoencoder with code size ``k``, trained ``EPOCHS`` epochs from ``SEED``."""
    return "ae", {"latent_dim": k, "epochs": p["EPOCHS"], "seed": p["SEED"] if seed is None else seed, **settings}


def same_settings(kind: str, p: dict) -> tuple[str, dict]:
    """Another kind of model with the autoencoder's settings (``LATENT_DIM``, ``EPOCHS``, ``SEED``)."""
    return kind, {"latent_dim": p["LATENT_DIM"], "epochs": p["EPOCHS"], "seed": p["SEED"]}


def compare_dim(p: dict) -> int:
    """04 and 09: the second code size, never the reader's own."""
    return p["COMPARE_DIM"] if p["COMPARE_DIM"] != p["LATENT_DIM"] else 4 if p["LATENT_DIM"] == 8 else 8


def large_dim(p: dict) -> int:
    """06: the larger code of the article's picture of larger-k samples."""
    return p["LARGE_DIM"] if p["LARGE_DIM"] > p["LATENT_DIM"] else 2 * p["LATENT_DIM"]


# notebook (file name without .ipynb) -> the (kind, settings) it passes to train_or_load(_many)
# or latent.sweep_latent_sizes, given its parameters p
MODELS = {
    "01_function_fitting": lambda p: [],
    "02_autoencoder_model": lambda p: [],
    "03_training": lambda p: [ae(p, p["LATENT_DIM"])],
    "04_reconstruction": lambda p: [ae(p, p["LATENT_DIM"]), ae(p, compare_dim(p))],
    "05_latent_distribution": lambda p: [ae(p, p["LATENT_DIM"])],
    "06_naive_sampling": lambda p: [CLASSIFIER] + [
        ae(p, k) for k in sorted(set(p["K_VALUES"]) | {p["LATENT_DIM"], large_dim(p)})],
    "07_yardstick": lambda p: [CLASSIFIER] + [ae(p, k) for k in sorted(set(p["K_VALUES"]) | {p["LATENT_DIM"]})],
    "08_better_sampling": lambda p: [ae(p, p["LATENT_DIM"]), CLASSIFIER,
                                     ae(p, p["LATENT_DIM"], code_activation=None)],
    "09_pca_linear_ae": lambda p: [ae(p, p["LATENT_DIM"]), ae(p, compare_dim(p)), CLASSIFIER] + [
        ae(p, k) for k in sorted(set(p["SWEEP_DIMS"]) | {p["LATENT_DIM"], compare_dim(p)})
    ] + [same_settings("linear", p)],
    "10_vae_preview": lambda p: [same_settings("vae", p), ae(p, p["LATENT_DIM"]), CLASSIFIER],
    "11_reliability": lambda p: [ae(p, p["LATENT_DIM"], seed=s) for s in range(p["SEED"], p["SEED"] + p["N_SEEDS"])],
}


def parameters(path: Path, values: dict[str, str]) -> dict:
    """The literal assignments of a notebook's parameters cell, with ``values`` put in."""
    source = set_parameters(parameters_cell(path), values)[0]
    params = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                params[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:  # not a literal: no entry below may use it
                pass
    return params


def notebook_models(path: Path, values: dict[str, str] | None = None) -> list[tuple[str, dict]]:
    """The ``(kind, settings)`` one notebook trains with these ``--set`` values."""
    if path.stem not in MODELS:
        raise SystemExit(f"{path.name}: {Path(__file__).name} does not know what this notebook trains; "
                         f"add \"{path.stem}\" to MODELS in scripts/{Path(__file__).name}")
    try:
        return MODELS[path.stem](parameters(path, values or {}))
    except KeyError as exc:
        raise SystemExit(f"{path.name} has no literal parameter {exc}, which its entry in MODELS "
                         f"(scripts/{Path(__file__).name}) reads: update the entry") from None


def all_models(paths, values: dict[str, str] | None = None) -> dict[tuple, list[str]]:
    """Every distinct model the notebooks train, in the order first asked -> the notebooks asking."""
    models = {}
    for path in map(Path, paths):
        for kind, settings in notebook_models(path, values):
            models.setdefault((kind, tuple(sorted(settings.items()))), []).append(path.stem[:2])
    return models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE")
    parser.add_argument("--jobs", type=int, default=None, help="trainings at once (default: aelib's)")
    parser.add_argument("--list", action="store_true", help="only print the models")
    args = parser.parse_args()
    values = parse_settings(args.set)
    check_names(values, args.notebooks)
    models = all_models(args.notebooks, values)
    for (kind, settings), notebooks in models.items():
        print(f"{kind} {dict(settings)}  <- {' '.join(dict.fromkeys(notebooks))}", flush=True)
    if not args.list:
        os.environ.pop("AELIB_CACHE_ONLY", None)  # pretraining is what fills the cache
        import aelib

        aelib.train_or_load_many([(kind, {**dict(s), "verbose": False}) for kind, s in models], processes=args.jobs)
        print(f"{len(models)} models ready in the cache", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
