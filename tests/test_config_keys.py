"""No dead settings: every key of the config schema is read by some code (a documented switch that does nothing
is a defect). A key counts as read where src/ accesses it as an attribute (``cfg.train.lr``, ``settings.lr``),
names it in a string (``"train.lr"``, not prose) or keyword, or a conf/ file interpolates it (``${model.detr_num_queries}``) — anywhere but
its own declaration."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import ablate
from ablate.config import Config, config_dir

SRC = Path(ablate.__file__).parent


def schema_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        full = f"{prefix}{f.name}"
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            keys += schema_keys(type(default), f"{full}.")
        else:
            keys.append(full)
    return keys


def reads(src: Path = SRC, conf: Path | None = None) -> set[str]:
    """Every attribute name accessed, string constant and keyword used in ``src``, outside dataclass fields."""
    names: set[str] = set()
    for path in src.rglob("*.py"):
        tree = ast.parse(path.read_text())
        prose = {id(n) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)}  # messages, not reads
        prose |= {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        prose |= {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
                  and re.fullmatch(r"[\w.]+", node.value)):  # "lr", "train.lr": a key by name
                names.update(node.value.split("."))
            elif isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)
    for path in (conf or config_dir()).rglob("*.yaml"):
        names.update(re.findall(r"\$\{[\w.]*?(\w+)\}", path.read_text()))
    return names


def test_every_schema_key_is_read_by_code():
    used = reads()
    unread = [k for k in schema_keys(Config) if k.rsplit(".", 1)[-1] not in used]
    assert not unread, f"config keys that no code reads: {unread}"


def test_the_check_sees_a_key_nobody_reads(tmp_path):
    """A copy of src/ whose schema gains a switch (declared, documented, never read) fails the check; reading it
    once in code passes it again."""
    import shutil

    src = tmp_path / "ablate"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    engine = src / "engine" / "config.py"
    declared = engine.read_text().replace(
        "    only: bool = False", "    a_switch_nobody_reads_xq: bool = False  # documented, inert\n    only: bool = False")
    engine.write_text(declared)
    assert "a_switch_nobody_reads_xq" not in reads(src, config_dir())
    job = src / "job.py"
    job.write_text(job.read_text() + "\n\ndef _probe(cfg):\n    return cfg.eval.a_switch_nobody_reads_xq\n")
    assert "a_switch_nobody_reads_xq" in reads(src, config_dir())


def test_the_schema_walk_finds_nested_keys():
    @dataclasses.dataclass
    class Inner:
        b: int = 0

    @dataclasses.dataclass
    class Probe:
        a: bool = False
        inner: Inner = dataclasses.field(default_factory=Inner)

    assert schema_keys(Probe) == ["a", "inner.b"]
