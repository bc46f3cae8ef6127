"""``ablate --help``: the ablation groups with their choices, the named sweeps and example commands.

Hydra's help template (``conf/hydra/help/ablate.yaml``) calls the ``ablate_help`` resolver, which reads the
choices and their one-line descriptions (each YAML file's first comment line) from ``conf/`` and ``sweeps/``,
so the page cannot drift from the configs. The same descriptions name the variant in the start banner.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

# What each group switches, in the paper's terms; the order of the help page.
GROUPS = {
    "csq": "conditional spatial query p_q in decoder layers 2… (paper Table 3)",
    "proj": "the transformation T in p_q = T(f)·p_s (Figure 5; unused by csq=C, P, detr)",
    "ref": "the reference point s (§4.3)",
    "model": "backbone and size (Table 1); tiny is the CPU default",
    "data": "data set",
    "logger": "experiment logger",
}
SWITCHES = {
    "focal": "true: sigmoid focal loss + focal matching cost · false: softmax CE + no-object (Table 4)",
    "offset": "true: boxes as offsets from s · false: boxes predicted directly (Table 4)",
}
EXAMPLES = [
    ("python -m ablate", "Conditional DETR (tiny) on the synthetic shapes"),
    ("python -m ablate csq=T proj=scalar", "one variant"),
    ("python -m ablate -m csq=C,T,P,I proj=scalar,full", "a sweep of every combination, then its report"),
    ("python -m ablate +sweep=table3_csq train.seed=0,1,2", "a paper table, 3 seeds"),
    ("python -m ablate model=r50 data=coco data.root=/data/coco logger.mode=online", "R50 on COCO, W&B online"),
]


def describe(folder: Path, name: str, limit: int = 96) -> str:
    """The first comment line of ``folder/name.yaml`` that is not a ``@package`` directive ("" if none),
    cut at ``limit`` characters."""
    try:
        lines = (folder / f"{name}.yaml").read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    for line in lines:
        text = line.strip()
        if text.startswith("#") and "@package" not in text:
            text = text.lstrip("#").strip().rstrip(":,")
            return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
        if text and not text.startswith("#"):
            break
    return ""


def choices(folder: Path, default: str | None = None) -> list[str]:
    """The YAML files of a config group, the default first."""
    names = sorted(p.stem for p in folder.glob("*.yaml"))
    return sorted(names, key=lambda n: n != default)


def help_text(conf: Path, sweeps: Path) -> str:
    """The body of the help page (everything but Hydra's own flags)."""
    defaults = _defaults(conf)
    out = ["ablate: ablation studies of Conditional DETR (Meng et al., ICCV 2021)", "",
           "Usage:  ablate [GROUP=CHOICE ...] [KEY=VALUE ...]        one run",
           "        ablate -m GROUP=A,B ... [KEY=VALUE ...]          a sweep over every combination", "",
           "Ablation axes and other groups (default first):"]
    for group, what in GROUPS.items():
        names = choices(conf / group, defaults.get(group))
        out.append(f"  {group:<8} {what}: {', '.join(names)}")
        out += [f"             {n:<13} {describe(conf / group, n)}" for n in names]
    for key, what in SWITCHES.items():
        out.append(f"  {key:<8} {what}")
    experiments = choices(conf / "experiment")
    out.append(f"  +experiment=NAME   Table 4 rows: {', '.join(experiments)}")
    out += ["", "Named sweeps (+sweep=NAME; each runs a multirun and writes its report):"]
    out += [f"  {n:<14} {describe(sweeps, n)}" for n in choices(sweeps)]
    out += ["", "Examples:"]
    width = max(len(cmd) for cmd, _ in EXAMPLES)
    out += [f"  {cmd:<{width}}  # {what}" for cmd, what in EXAMPLES]
    out += ["", "Every key and its value: ablate --cfg job [overrides].  Hydra's own flags: ablate --hydra-help.",
            "Shell completion (bash, zsh): eval \"$(ablate -sc install=bash)\"."]
    return "\n".join(out)


def register_help_resolver() -> None:
    """``${ablate_help:}`` for the help template."""
    if not OmegaConf.has_resolver("ablate_help"):
        from ablate.config import config_dir, sweeps_dir

        # "$$": Hydra passes the page through string.Template
        OmegaConf.register_new_resolver("ablate_help", lambda: help_text(config_dir(), sweeps_dir()).replace("$", "$$"))


def _defaults(conf: Path) -> dict[str, str]:
    entries = OmegaConf.load(conf / "config.yaml").get("defaults", [])
    return {k: str(v) for e in entries if isinstance(e, dict) or OmegaConf.is_dict(e) for k, v in e.items()}
