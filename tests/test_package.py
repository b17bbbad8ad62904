"""The top level of aelib: each export is the object of the module that defines it, and
``__all__`` lists exactly what the package offers."""

from __future__ import annotations

import importlib
import types

import aelib

# where each top-level name is defined (a module is its own home)
HOMES = {
    "ARTICLE_LOSSES": "training", "AutoEncoder": "models", "CheckpointError": "training",
    "CorruptCheckpointError": "training", "DATA_ENV_VAR": "data", "DigitClassifier": "models",
    "LinearAutoEncoder": "models", "MNISTUnavailableError": "data", "MODELS": "models",
    "VAE": "models", "configure_threads": "training", "data_root": "data", "evaluate": "training",
    "latent": None, "load_checkpoint": "training", "load_mnist": "data", "metrics": None,
    "pick_device": "training", "plots": None, "sampling": None, "save_checkpoint": "training",
    "set_seed": "training", "train": "training", "train_or_load": "training",
}


def test_all_lists_each_export_once():
    assert len(aelib.__all__) == len(set(aelib.__all__))
    assert set(aelib.__all__) == set(HOMES)


def test_each_export_is_the_object_of_its_module():
    for name, home in HOMES.items():
        exported = getattr(aelib, name)
        if home is None:
            assert exported is importlib.import_module(f"aelib.{name}"), name
        else:
            assert exported is getattr(importlib.import_module(f"aelib.{home}"), name), name


def test_the_training_function_does_not_shadow_a_module():
    # aelib.train is the function; the module is aelib.training
    assert isinstance(aelib.train, types.FunctionType)
    assert isinstance(aelib.training, types.ModuleType) and aelib.training.train is aelib.train


def test_nothing_public_is_left_out_of_all():
    modules = {"data", "models", "training"}  # importing submodules binds their names
    public = {name for name in vars(aelib) if not name.startswith("_")} - modules
    assert public == set(aelib.__all__)


def test_star_import_gives_exactly_all():
    namespace: dict = {}
    exec("from aelib import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(aelib.__all__)
