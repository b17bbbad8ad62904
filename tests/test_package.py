"""The top level of aelib as the notebooks use it: every aelib name a notebook calls
exists, and the training function does not hide the training module."""

from __future__ import annotations

import ast
import json
import types
from pathlib import Path

import pytest
from conftest import NOTEBOOKS

import aelib
TOPIC_MODULES = ("latent", "metrics", "plots", "sampling")


def aelib_names_used(path: Path) -> set[str]:
    """``aelib.X``, ``aelib.X.Y`` and ``latent.X`` (a topic module imported from aelib)
    attribute chains in a notebook's code cells."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    used = set()
    for cell in (c for c in cells if c["cell_type"] == "code"):
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            chain = []
            while isinstance(node, ast.Attribute):
                chain.insert(0, node.attr)
                node = node.value
            if isinstance(node, ast.Name) and chain and node.id in ("aelib", *TOPIC_MODULES):
                used.add(".".join((([] if node.id == "aelib" else [node.id]) + chain)[:2]))
            if isinstance(node, ast.ImportFrom) and node.module == "aelib":
                used |= {alias.name for alias in node.names}
    return used


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_aelib_name_a_notebook_uses_exists(path):
    for name in sorted(aelib_names_used(path)):
        obj = aelib
        for part in name.split("."):
            assert hasattr(obj, part), f"{path.name} uses aelib.{name}, which aelib does not have"
            obj = getattr(obj, part)


def test_the_training_function_does_not_shadow_a_module():
    # aelib.train is the function; the module is aelib.training
    assert isinstance(aelib.train, types.FunctionType)
    assert isinstance(aelib.training, types.ModuleType) and aelib.training.train is aelib.train
