"""The typed config schema, ``compose()``, validation, and the ablation axes a run records.

The YAML tree in ``conf/`` is merged over these dataclasses, so a wrong type fails at compose time with the
key's name; ``validate`` then rejects values that are well-typed but impossible, before anything runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from ablate.config_keys import nan_key, unknown_key
from ablate.data.checks import data_config_problem
from ablate.data.config import DataConfig
from ablate.engine.config import EvalConfig, TrainConfig
from ablate.help import register_help_resolver
from ablate.losses.config import LossConfig
from ablate.models.backbone import weights_path
from ablate.models.config import AxisChoice, ModelConfig
from ablate.models.detector import check_dimensions
from ablate.models.projection import PROJECTIONS
from ablate.models.reference import REFERENCE_POINTS
from ablate.models.spatial_query import SPATIAL_QUERIES, incompatibility
from ablate.runs.logger import LoggerConfig

NA = "n/a"


class ConfigError(ValueError):
    """A config value that is well-typed but cannot work; the message names the key and says why."""


@dataclass
class Config:
    csq: AxisChoice = field(default_factory=AxisChoice)
    proj: AxisChoice = field(default_factory=AxisChoice)
    ref: AxisChoice = field(default_factory=AxisChoice)
    focal: bool = True
    offset: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    name: str = "ablate"  # W&B run-name prefix


def config_dir() -> Path:
    """``conf/`` inside an installed wheel, or at the top of the repo for a source/editable install."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"cannot find ablate's conf/ folder near {here}")


def sweeps_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "sweeps", here.parents[1] / "sweeps"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find ablate's sweeps/ folder near {here}")


def short_dirname(override_dirname: str, limit: int = 120) -> str:
    """A job folder name from its overrides that stays under file-system limits: kept as is when short,
    else a readable prefix plus a hash of the whole (so reruns of the same command find the same folder)."""
    name = override_dirname.replace("/", "_") or "default"
    if len(name) <= limit:
        return name
    return f"{name[:limit]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def register_schema() -> None:
    """The typed schema, and every ``sweeps/<name>.yaml`` as option ``<name>`` of the ``sweep`` group, so a
    paper table is one override: ``python -m ablate +sweep=table3_csq``."""
    if not OmegaConf.has_resolver("ablate_dirname"):
        OmegaConf.register_new_resolver("ablate_dirname", short_dirname)
    register_help_resolver()
    cs = ConfigStore.instance()
    cs.store(name="ablate_schema", node=Config)
    for path in sorted(sweeps_dir().glob("*.yaml")):
        cs.store(group="sweep", name=path.stem, node=OmegaConf.load(path), package="_global_")


def compose(overrides: list[str] | None = None, *, return_hydra_config: bool = False) -> DictConfig:
    """Exactly the config that ``python -m ablate <overrides>`` runs, validated."""
    register_schema()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = hydra_compose("config", overrides=list(overrides or []), return_hydra_config=return_hydra_config)
    validate(cfg)
    return cfg


POSITIVE = ("train.batch_size", "train.epochs", "train.log_every", "eval.batch_size", "eval.top_k")
NON_NEGATIVE = ("train.weight_decay", "train.warmup_steps", "train.min_epoch_steps", "eval.every",
                "loss.bbox_coef", "loss.giou_coef", "loss.cost_bbox", "loss.cost_giou", "loss.eos_coef")


def validate(cfg: DictConfig) -> None:
    """Reject impossible values and combinations, naming the key and the reason. Choices with a fixed set of
    values (backends, logger, data set, backbone, precision) are Enum fields: composition has checked them."""
    for problem in (unknown_key(cfg, Config), nan_key(cfg)):  # a typo'd '+' key; NaN passes every comparison
        if problem is not None:
            raise ConfigError(problem)
    for axis, registry in (("csq", SPATIAL_QUERIES), ("proj", PROJECTIONS), ("ref", REFERENCE_POINTS)):
        if cfg[axis].name not in registry:
            raise ConfigError(f"{axis}={cfg[axis].name!r} is unknown; valid choices: {', '.join(registry.names())}")
    if reason := incompatibility(cfg.csq.name, cfg.proj.name):
        raise ConfigError(reason)
    for key in POSITIVE:
        if OmegaConf.select(cfg, key) < 1:
            raise ConfigError(f"{key}={OmegaConf.select(cfg, key)} must be ≥ 1")
    for key in NON_NEGATIVE:
        if OmegaConf.select(cfg, key) < 0:
            raise ConfigError(f"{key}={OmegaConf.select(cfg, key)} must be ≥ 0")
    if cfg.train.lr <= 0:
        raise ConfigError(f"train.lr={cfg.train.lr} must be > 0")
    if cfg.train.max_steps is not None and cfg.train.max_steps < 1:
        raise ConfigError(f"train.max_steps={cfg.train.max_steps} must be ≥ 1 (or null to train for train.epochs)")
    m = cfg.model
    try:
        check_dimensions(m)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if m.num_classes is not None and m.num_classes < 1:
        raise ConfigError(f"model.num_classes={m.num_classes} must be ≥ 1 (largest category id + 1)")
    if m.backbone.name == "tiny" and m.backbone.dilation:
        raise ConfigError("model.backbone.dilation=true needs a ResNet backbone (model=r50_dc5 or r101_dc5)")
    if m.backbone.weights and m.backbone.weights != "imagenet" and not weights_path(m.backbone.weights).is_file():
        raise ConfigError(f"model.backbone.weights={m.backbone.weights}: no such file (a local state dict, a shipped "
                          "name such as tiny_shapes, or imagenet for torchvision's download)")
    if cfg.eval.only and not m.init_from:
        raise ConfigError("eval.only=true evaluates model.init_from: give it a job folder, a checkpoint.pt or a "
                          "released checkpoint (model.init_from=PATH)")
    if not cfg.data.train_scales or min(cfg.data.train_scales) < 1:
        raise ConfigError(f"data.train_scales={list(cfg.data.train_scales)} needs at least one size ≥ 1")
    for key in ("data.max_size", "data.val_size"):
        if OmegaConf.select(cfg, key) < 1:
            raise ConfigError(f"{key}={OmegaConf.select(cfg, key)} must be ≥ 1")
    if m.backbone.name == "tiny" and (not m.backbone.widths or min(m.backbone.widths) < 1):
        raise ConfigError(f"model.backbone.widths={list(m.backbone.widths)} must be a non-empty list of stage widths ≥ 1")
    if (problem := data_config_problem(cfg.data)) is not None:
        raise ConfigError(problem)


def model_axes(cfg: DictConfig) -> dict[str, Any]:
    """The ablation axes of the model this config builds; an axis the model does not contain is ``n/a``.

    Two configs with equal axes (and equal other settings) are the same model, e.g. ``csq=C proj=full``
    and ``csq=C proj=diagonal`` (CSQ-C has no T).
    """
    query = SPATIAL_QUERIES.get(cfg.csq.name)
    uses_ref = query.conditional or cfg.offset
    return {
        "csq": cfg.csq.name,
        "proj": cfg.proj.name if query.uses_proj else NA,
        "ref": cfg.ref.name if uses_ref else NA,
        "focal": bool(cfg.focal),
        "offset": bool(cfg.offset),
        "model": cfg.model.name,
        "num_queries": int(cfg.model.num_queries),
    }


def variant_label(axes: dict[str, Any]) -> str:
    return " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                    for k, v in axes.items() if k in ("csq", "proj", "ref", "focal", "offset"))


def axis_labels(axes: dict[str, Any]) -> dict[str, str]:
    """How a report prints each axis value (result.json ``labels``): the registries' own labels for the
    csq/proj/ref choices ("CSQ-C", "T = block"), words for the switches; ``n/a`` stays ``n/a``."""
    registries = {"csq": SPATIAL_QUERIES, "proj": PROJECTIONS, "ref": REFERENCE_POINTS}
    switches = {"focal": ("focal loss", "softmax CE"), "offset": ("box offsets", "no box offsets")}
    out: dict[str, str] = {}
    for axis, value in axes.items():
        if value == NA:
            out[axis] = NA
        elif axis in registries:
            out[axis] = registries[axis].get(value).label
        elif axis in switches:
            out[axis] = switches[axis][0 if value else 1]
        else:
            out[axis] = f"{value} queries" if axis == "num_queries" else f"{axis} {value}"
    return out


# Keys that never change the trained weights (tests/engine/test_eval_rng.py trains with each changed): where it
# is written, how it is logged and evaluated. Not train.num_threads (CPU reductions round differently) nor
# data.num_workers (workers draw augmentations from their own RNG). train.device is the hardware, like the CPU model.
_KEY_EXCLUDE = ("logger", "name", "eval.every", "eval.backend", "eval.batch_size", "train.log_every",
                "train.checkpoint_every", "train.resume", "train.device")


def effective_config(cfg: DictConfig) -> dict[str, Any]:
    """The config with unused axes replaced by ``n/a`` and run-only keys removed: what defines the model."""
    c = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    c.pop("hydra", None)
    for key in _KEY_EXCLUDE:
        parts = key.split(".")
        node = c
        for p in parts[:-1]:
            node = node.get(p, {})
        node.pop(parts[-1], None)
    axes = model_axes(cfg)
    for axis in ("proj", "ref"):
        if axes[axis] == NA:
            c[axis] = NA
    return c


def config_key(cfg: DictConfig, *, with_seed: bool = True) -> str:
    c = effective_config(cfg)
    if not with_seed:
        c["train"].pop("seed", None)
    return hashlib.sha1(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()
