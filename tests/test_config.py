"""Every combination of every config group composes and validates; the schema rejects bad values by name."""

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from ablate.config import (
    NA,
    ConfigError,
    config_dir,
    config_key,
    model_axes,
    register_schema,
    sweeps_dir,
    validate,
)
from ablate.config import compose as ablate_compose
from ablate.models.spatial_query import incompatibility

GROUPS = {g: sorted(p.stem for p in (config_dir() / g).glob("*.yaml"))
          for g in ("csq", "proj", "ref", "model", "data", "logger")}


def test_groups_mirror_the_registries():
    from ablate.models.projection import PROJECTIONS
    from ablate.models.reference import REFERENCE_POINTS
    from ablate.models.spatial_query import SPATIAL_QUERIES

    assert set(GROUPS["csq"]) == set(SPATIAL_QUERIES.names())
    assert set(GROUPS["proj"]) == set(PROJECTIONS.names())
    assert set(GROUPS["ref"]) == set(REFERENCE_POINTS.names())
    assert set(GROUPS["model"]) == {"tiny", "tiny_s8", "r50", "r50_dc5", "r101", "r101_dc5"}


def _compose_all(combos):
    register_schema()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for combo in combos:
            cfg = compose("config", overrides=[f"{g}={c}" for g, c in combo.items()] + ["data.root=/tmp/coco"])
            validate(cfg)
            for group, choice in combo.items():
                assert cfg[group].name == choice, (group, choice)
            yield combo, cfg


def test_every_ablation_combination_composes():
    """csq × proj × ref: the grid a sweep can ask for (the model groups are crossed with the rest below)."""
    axes = ("csq", "proj", "ref")
    combos = [dict(zip(axes, c)) for c in itertools.product(*(GROUPS[a] for a in axes))
              if not incompatibility(c[0], c[1])]
    keys = {config_key(cfg) for _, cfg in _compose_all(combos)}
    # proj is n/a for C, P, detr, detr_content (the default keeps offsets on, so ref always counts):
    # distinct models = (3 forms with T × 5 projections − CSQ-T with T = I + 4 forms without) × 3 references
    assert len(keys) == (3 * 5 - 1 + 4) * 3


def test_degenerate_csq_proj_pair_is_rejected_naming_both_keys():
    """CSQ-T with T = I gives p_q = 𝟙 for every query: refused at compose time, not trained."""
    with pytest.raises(ConfigError, match=r"csq=T with proj=identity: .*constant .* degenerate model"):
        ablate_compose(["csq=T", "proj=identity"])
    for proj in ("scalar", "block", "full", "diagonal"):  # every other T is a real CSQ-T model
        ablate_compose(["csq=T", f"proj={proj}"])
    ablate_compose(["csq=full", "proj=identity"])  # T = I on p_s is CSQ-P, a real model


def test_degenerate_pair_stops_the_cli_with_one_line(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "ablate", "csq=T", "proj=identity", "logger=none",
                           f"hydra.run.dir={out}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("ablate:")]
    assert len(lines) == 1 and lines[0].startswith("ablate: config error: csq=T with proj=identity:"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "result.json").exists() or '"failed"' in (out / "result.json").read_text()
    assert not (out / "checkpoint.pt").exists()


def test_every_model_data_logger_combination_composes():
    """The other groups do not interact with the axes; each of their combinations composes and validates."""
    groups = ("model", "data", "logger")
    combos = [dict(zip(groups, c)) for c in itertools.product(*(GROUPS[g] for g in groups))]
    names = {(cfg.model.name, cfg.data.name, cfg.logger.name) for _, cfg in _compose_all(combos)}
    assert len(names) == len(combos)


def test_default_is_the_paper_model_on_tiny():
    cfg = ablate_compose([])
    assert (cfg.csq.name, cfg.proj.name, cfg.ref.name, cfg.focal, cfg.offset) == ("full", "diagonal", "query", True, True)
    assert cfg.model.name == "tiny" and cfg.data.name == "shapes" and cfg.logger.mode == "offline"


def test_r50_keeps_the_papers_hyperparameters():
    cfg = ablate_compose(["model=r50"])
    t = cfg.train
    assert (t.lr, t.lr_backbone, t.weight_decay, t.epochs, t.lr_drop, t.clip_max_norm, t.warmup_steps) == (
        1e-4, 1e-5, 1e-4, 50, 40, 0.1, 0)
    assert (cfg.model.num_queries, cfg.model.hidden_dim, cfg.model.nheads, cfg.model.dim_feedforward) == (300, 256, 8, 2048)


def test_unused_axes_are_na_and_same_model_same_key():
    a = ablate_compose(["csq=C", "proj=full"])
    b = ablate_compose(["csq=C", "proj=scalar"])
    assert model_axes(a)["proj"] == NA and config_key(a) == config_key(b)
    c = ablate_compose(["csq=detr", "offset=false", "ref=zero"])
    d = ablate_compose(["csq=detr", "offset=false", "ref=learned"])
    assert model_axes(c)["ref"] == NA and config_key(c) == config_key(d)
    assert config_key(ablate_compose(["csq=T", "proj=full"])) != config_key(ablate_compose(["csq=T", "proj=scalar"]))
    # seeds are different runs of the same variant
    e, f = ablate_compose(["train.seed=1"]), ablate_compose(["train.seed=2"])
    assert config_key(e) != config_key(f) and config_key(e, with_seed=False) == config_key(f, with_seed=False)
    # logging and evaluation cadence do not change the model
    assert config_key(ablate_compose(["logger=none", "eval.every=7"])) == config_key(ablate_compose([]))


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(ConfigCompositionException, match="Available options in 'csq'"):
        ablate_compose(["csq=X"])


@pytest.mark.parametrize("override,match", [
    ("train.lr=abc", "train.lr"),
    ("model.nheads=4.5", "model.nheads"),
    ("focal=maybe", "focal"),
    ("train.nonsense=1", "nonsense"),
])
def test_wrong_types_name_the_key(override, match):
    with pytest.raises((ValidationError, ConfigCompositionException), match=match):
        ablate_compose([override])


@pytest.mark.parametrize("override,valid", [
    ("eval.backend=fast", "pycocotools, faster_coco_eval"),
    ("logger.mode=loud", "offline, online, disabled"),
    ("data.name=voc", "shapes, coco"),
    ("model.backbone.name=vgg", "tiny, resnet50, resnet101"),
    ("train.precision=fp16", "fp32, bf16"),
])
def test_fixed_choices_are_checked_when_composing(override, valid):
    """Enum fields owned by their modules (eval backends, logger, data sets, backbones, precision): a bad value
    never reaches a job, and the message names the key and every valid choice."""
    key = override.split("=")[0]
    with pytest.raises((ValidationError, ConfigCompositionException)) as e:
        ablate_compose([override])
    text = f"{e.value} {e.value.__cause__}"
    assert key in text and f"[{valid}]" in text


@pytest.mark.parametrize("overrides,match", [
    (["train.batch_size=0"], "train.batch_size=0 must be ≥ 1"),
    (["train.lr=-1"], "train.lr=-1.0 must be > 0"),
    (["model.hidden_dim=30", "model.nheads=4"], "divisible by model.nheads=4"),
    (["model.backbone.dilation=true"], "needs a ResNet backbone"),
    (["data=coco"], "data=coco needs data.root"),
    (["model.dropout=1.5"], r"model.dropout=1.5 must be in \[0, 1\)"),
    (["data.train_scales=[]"], "data.train_scales=\\[\\] needs at least one size"),
    (["model.backbone.widths=[]"], "must be a non-empty list of stage widths ≥ 1"),
    (["data.max_size=0"], "data.max_size=0 must be ≥ 1"),
])
def test_impossible_values_are_rejected_with_the_reason(overrides, match):
    with pytest.raises(ConfigError, match=match):
        ablate_compose(overrides)


SWEEPS = sorted(p.stem for p in sweeps_dir().glob("*.yaml"))


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_sweep_composes(sweep):
    from ablate.config import compose as c

    cfg = c([f"+sweep={sweep}"], return_hydra_config=True)
    params = dict(cfg.hydra.sweeper.params)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN" and "train.seed" in params
    # every job of the sweep composes too
    axes = [[f"{k}={v}" for v in str(vals).split(",")] for k, vals in params.items()]
    for job in itertools.product(*axes):
        validate(c(list(job)))


def test_detr_pe_sweep_rows_differ():
    base = ["+experiment=t4_detr"]
    a, b = ablate_compose([*base, "csq=detr"]), ablate_compose([*base, "csq=detr_content"])
    assert (a.csq.name, b.csq.name) == ("detr", "detr_content") and not a.focal and not b.offset
    assert a.model.num_queries == a.model.detr_num_queries


def test_wandb_sweep_files_exist_for_each_sweep():
    for sweep in SWEEPS:
        assert (sweeps_dir() / "wandb" / f"{sweep}.yaml").is_file(), sweep
        text = (sweeps_dir() / "wandb" / f"{sweep}.yaml").read_text()
        assert "${args_no_hyphens}" in text and "-m, ablate" in text


def test_conf_is_found_outside_the_repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Path(config_dir(), "config.yaml").is_file()
    assert ablate_compose([]).model.name == "tiny"
