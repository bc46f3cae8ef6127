"""The fields of result.json the report reads, with the JSON types docs/run_files.md gives them.

A field of the wrong type makes the job `unreadable` with the reason, instead of crashing the report or being
read as something it is not (a seed "0" as a string, metrics as a list).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NUMBER = (int, float)
SCALAR = (str, int, float, bool, type(None))
# field -> (allowed Python types of its JSON value, how the message spells them); None is allowed for all but status
FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "status": ((str,), "a string"),
    "axes": ((dict,), "an object"),
    "labels": ((dict,), "an object"),
    "variant": ((str,), "a string"),
    "seed": ((int,), "an integer"),
    "config_key": ((str,), "a string"),
    "duplicate_of": ((str,), "a string"),
    "metrics": ((dict,), "an object"),
    "params": ((dict,), "an object"),
    "steps": (NUMBER, "a number"),
    "wall_time_s": (NUMBER, "a number"),
    "error": ((dict, str), "an object or a string"),
    "wandb": ((dict,), "an object"),
    "per_class": ((list,), "an array"),
    "machine": ((dict,), "an object"),
}


def result_problem(result: Mapping[str, Any]) -> str | None:
    """Why `result` (a parsed result.json object) cannot be read by the report, or None when it can."""
    if not isinstance(result.get("status"), str):
        return f"result.json: `status` is {_kind(result.get('status'))}, expected a string"
    for name, (types, expected) in FIELDS.items():
        value = result.get(name)
        # bool is an int in Python, never a seed or a step count in JSON
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            return f"result.json: `{name}` is {_kind(value)}, expected {expected}"
    checks = (
        ("axes", lambda v: isinstance(v, SCALAR), "a string, number or boolean"),
        ("labels", lambda v: isinstance(v, str), "a string"),
        ("metrics", lambda v: v is None or (isinstance(v, NUMBER) and not isinstance(v, bool)), "a number or null"),
    )
    for name, ok, expected in checks:
        for key, value in (result.get(name) or {}).items():
            if not ok(value):
                return f"result.json: `{name}.{key}` is {_kind(value)}, expected {expected}"
    return _per_class_problem(result.get("per_class") or [])


def _per_class_problem(entries: list[Any]) -> str | None:
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            return f"result.json: `per_class[{i}]` is {_kind(entry)}, expected an object"
        for key in ("AP", "AP50"):
            value = entry.get(key)
            if value is not None and (not isinstance(value, NUMBER) or isinstance(value, bool)):
                return f"result.json: `per_class[{i}].{key}` is {_kind(value)}, expected a number or null"
    return None


def _kind(value: Any) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)
