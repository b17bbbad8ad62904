"""Fill the model cache with every model the notebooks train, several trainings at a time.

  python scripts/pretrain.py [--jobs 2] [--set LATENT_DIM=3 SEED=5 EPOCHS=3] [--list] [notebooks ...]

MODELS below states what each notebook trains, from its parameters (its parameters cell's literal
values, with --set put in as scripts/run_params.py does). When a notebook changes what it trains,
change its entry: CI runs the notebooks after pretraining with AELIB_CACHE_ONLY=1, so a model
missing here fails there. --list prints the models and which notebooks use them, and trains nothing.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_params import assignments, check_names, parameters_cell, parse_settings, set_parameters  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLASSIFIER = ("classifier", {"epochs": 3})  # the digit reader of 04, 06-10 and 12; not tied to SEED


def ae(p: dict, k: int | None = None, seed: int | None = None, kind: str = "ae", **settings) -> tuple[str, dict]:
    """An autoencoder (``kind``: the article's "ae", or "linear", "vae") with code size ``k`` (default
    ``LATENT_DIM``), trained ``EPOCHS`` epochs from ``SEED`` (or ``seed``)."""
    return kind, {"latent_dim": p["LATENT_DIM"] if k is None else k, "epochs": p["EPOCHS"],
                  "seed": p["SEED"] if seed is None else seed, **settings}


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
    "03_training": lambda p: [ae(p)],
    "04_reconstruction": lambda p: [ae(p), ae(p, compare_dim(p)), CLASSIFIER],
    "05_latent_distribution": lambda p: [ae(p)],
    "06_naive_sampling": lambda p: [CLASSIFIER] + [ae(p, k) for k in sorted({*p["K_VALUES"], p["LATENT_DIM"], large_dim(p)})],
    "07_yardstick": lambda p: [CLASSIFIER] + [ae(p, k) for k in sorted({*p["K_VALUES"], p["LATENT_DIM"]})],
    "08_better_sampling": lambda p: [ae(p), CLASSIFIER, ae(p, code_activation=None)],
    "09_pca_linear_ae": lambda p: [ae(p), ae(p, compare_dim(p)), CLASSIFIER, ae(p, kind="linear")] + [
        ae(p, k) for k in sorted({*p["SWEEP_DIMS"], p["LATENT_DIM"], compare_dim(p)})],  # latent.sweep_latent_sizes
    "10_vae_preview": lambda p: [ae(p, kind="vae"), ae(p), CLASSIFIER],
    "11_reliability": lambda p: [ae(p, seed=s) for s in range(p["SEED"], p["SEED"] + p["N_SEEDS"])],
    "12_k_curve_seeds": lambda p: [CLASSIFIER] + [ae(p, k, seed=s) for k in sorted(set(p["K_VALUES"]))
                                                  for s in range(p["SEED"], p["SEED"] + p["N_SEEDS"])],
}


def parameters(path: Path, values: dict[str, str]) -> dict:
    """The literal assignments of a notebook's parameters cell, with ``values`` put in."""
    params = {}
    for name, value in assignments(set_parameters(parameters_cell(path), values)[0]).items():
        with contextlib.suppress(ValueError):  # not a literal: no entry in MODELS may use it
            params[name] = ast.literal_eval(value)
    return params


def notebook_models(path: Path, values: dict[str, str] | None = None) -> list[tuple[str, dict]]:
    """The ``(kind, settings)`` one notebook trains with these ``--set`` values."""
    if path.stem not in MODELS:
        raise SystemExit(f"{path.name}: add what it trains to MODELS in scripts/pretrain.py (key \"{path.stem}\")")
    try:
        return MODELS[path.stem](parameters(path, values or {}))
    except KeyError as exc:
        raise SystemExit(f"{path.name} has no literal parameter {exc}; update its entry in MODELS in scripts/pretrain.py") from None


def all_models(paths, values: dict[str, str] | None = None) -> dict[tuple, list[str]]:
    """Every distinct model the notebooks train, in the order first asked -> the notebooks asking."""
    models = {}
    for path in map(Path, paths):
        for kind, settings in notebook_models(path, values):
            models.setdefault((kind, tuple(sorted(settings.items()))), []).append(path.stem[:2])
    return models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")))
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
