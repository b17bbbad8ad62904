"""Fill the checkpoint cache with every model the notebooks ask for, two processes at a time.

The notebooks train whatever is missing themselves; this only runs those trainings side by
side (one torch thread per process), so that a fresh clone's test run takes less time.
Usage: python scripts/pretrain.py [--latent-dim 8] [--seed 0] [--epochs 10] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor

SWEEP = (2, 4, 8, 16, 32)        # notebooks 04, 06, 07
SPREAD_SEEDS = (0, 1, 2, 3, 4)   # notebook 03
LARGE_DIM = 32                   # notebook 06


def jobs(k: int, seed: int, epochs: int) -> list[tuple[str, dict]]:
    """(kind, train_or_load keyword arguments) for one parameter setting of the notebooks."""
    ae = [dict(latent_dim=d, seed=seed) for d in sorted(set(SWEEP) | {k, LARGE_DIM})]
    ae += [dict(latent_dim=k, seed=s) for s in SPREAD_SEEDS if s != seed]
    ae += [dict(latent_dim=k, seed=seed, code_activation=None)]
    out = [("classifier", dict(epochs=3))] + [("ae", dict(epochs=epochs, **a)) for a in ae]
    out += [("linear", dict(latent_dim=k, seed=seed, epochs=epochs)),
            ("vae", dict(latent_dim=k, seed=seed, epochs=epochs))]
    return out


def run(job: tuple[str, dict]) -> str:
    os.environ.setdefault("AELIB_NUM_THREADS", "1")
    import aelib

    kind, kwargs = job
    aelib.train_or_load(kind, verbose=False, **kwargs)
    return f"{kind} {kwargs}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    todo = jobs(args.latent_dim, args.seed, args.epochs)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for done in pool.map(run, todo):
            print("ready:", done, flush=True)
