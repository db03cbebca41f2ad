"""Recipes: one module per published method, each a thin composition of the stages.

A recipe module registers its options model with
:func:`soilfuse.config.register_recipe_options` and its runner in :data:`RECIPES`.
:func:`run_recipe` creates the run directory, records the manifest and calls the
runner.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["RECIPES", "load_recipes", "register_recipe"]

# Recipe modules, imported by :func:`load_recipes` so that they register themselves.
_MODULES: tuple[str, ...] = ("quadtree_st", "ml_downscale")

#: Runner per recipe name: ``runner(config, run_directory) -> dict of output paths``.
RECIPES: dict[str, Callable[..., dict[str, Any]]] = {}


def register_recipe(name: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Decorator registering a recipe runner under ``name``."""

    def deco(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        RECIPES[name] = fn
        return fn

    return deco


def load_recipes() -> dict[str, Callable[..., dict[str, Any]]]:
    """Import every recipe module (they register on import) and return the registry."""
    for module in _MODULES:
        importlib.import_module(f"soilfuse.recipes.{module}")
    return RECIPES
