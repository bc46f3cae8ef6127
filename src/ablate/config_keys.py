"""Keys and numbers a composed config may hold: no key the schema lacks (``+train.max_step=20`` is a typo, not
a new setting) and no NaN anywhere."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import typing
from typing import Any

from omegaconf import DictConfig, OmegaConf


def unknown_key(cfg: DictConfig, schema: type) -> str | None:
    """The first key of ``cfg`` (outside ``hydra``) that the dataclass ``schema`` does not define, said in one
    line with the closest known key; else None."""
    return _unknown(OmegaConf.to_container(cfg, resolve=False), _tree(schema), "")


@functools.cache
def _tree(schema: Any) -> dict[str, Any] | None:
    """{field: subtree} of a dataclass (None for a leaf or a free-form mapping), read once per schema."""
    if not dataclasses.is_dataclass(schema):
        return None
    hints = typing.get_type_hints(schema)
    return {f.name: _tree(hints[f.name]) for f in dataclasses.fields(schema)}


def _unknown(values: Any, tree: dict[str, Any] | None, prefix: str) -> str | None:
    if not isinstance(values, dict) or tree is None:
        return None
    for key, value in values.items():
        if prefix == "" and key == "hydra":
            continue
        path = f"{prefix}{key}"
        if key not in tree:
            close = difflib.get_close_matches(str(key), list(tree), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            return f"{path} is not a config key{hint}; '+' adds keys only where the schema has a place for them"
        problem = _unknown(value, tree[key], f"{path}.")
        if problem:
            return problem
    return None


def nan_key(cfg: DictConfig) -> str | None:
    """The first key whose value is NaN, said in one line; else None."""
    def walk(node: Any, prefix: str) -> str | None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k != "hydra" and (found := walk(v, f"{prefix}{k}.")):
                    return found
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if found := walk(v, f"{prefix[:-1]}[{i}]."):
                    return found
        elif isinstance(node, float) and math.isnan(node):
            return f"{prefix[:-1]}=nan must be a number"
        return None

    return walk(OmegaConf.to_container(cfg, resolve=False), "")
