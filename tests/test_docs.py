"""The documentation is the test suite: every command line in README.md and docs/*.md that starts with
``python -m ablate``, ``ablate`` or ``torchrun`` is run here, as written, at a tiny budget (small-size overrides
are appended for keys the command does not set), and the effect the docs state is asserted. Paths the machine
cannot have (real COCO, released checkpoints, ImageNet weights, a run folder) are tiny stand-ins made here.

A command added to the docs without a check below fails ``test_every_documented_command_has_a_check``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from ablate.config import config_dir

ROOT = config_dir().parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# `python -m ablate[.module] …`, the `ablate …` script, `torchrun … -m ablate …` (not prose like "ablate: …")
COMMAND = re.compile(r"^(python -m ablate(\.\w+)?(\s|$)|ablate\s+\S|torchrun\s.*-m ablate\b)")


def _fenced(text: str) -> list[str]:
    out, inside, buf = [], False, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside, buf = not inside, ""
            continue
        if not inside:
            continue
        line = buf + " " + line.strip() if buf else line.strip()
        if line.endswith("\\"):
            buf = line[:-1].strip()
            continue
        buf = ""
        out.append(line)
    return out


def _inline(text: str) -> list[str]:
    """Complete commands quoted in prose and tables (not ones with ``...`` or ``<placeholders>``)."""
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return [s for s in spans if "..." not in s and "<" not in s and "[" not in s  # synopses, not command lines
            and not re.fullmatch(r"python -m ablate\.\w+", s)]  # a module named in prose


def doc_commands() -> list[str]:
    """Every documented command line, comments stripped, whitespace normalised, in order, without repeats."""
    found: dict[str, None] = {}
    for path in DOCS:
        text = path.read_text()
        for line in [*_fenced(text), *_inline(text)]:
            line = " ".join(re.sub(r"\s+#.*$", "", line).split())
            if COMMAND.match(line):
                found.setdefault(line, None)
    return list(found)


# ---------------------------------------------------------------------------------------------------------------
# stand-ins and the runner


@dataclass
class Env:
    cwd: Path
    coco: Path
    resnet50: Path
    released_r50: Path
    job: Path  # the README's example run folder, trained here
    data_root: Path
    slurm: Callable[[], object] = lambda: None  # the session's SLURM cluster, started on first use

    def paths(self) -> dict[str, str]:
        return {
            "/data/coco": str(self.coco), "/datasets/coco": str(self.coco),
            "/ckpt/resnet50.pth": str(self.resnet50), "/models/resnet50.pth": str(self.resnet50),
            "/models/r50.pth": str(self.resnet50),
            "/ckpt/ConditionalDETR_r50_epoch50.pth": str(self.released_r50),
            "outputs/runs/2026-12-02/10-00-00-000000": str(self.job),
            "$HEAD_NODE": "127.0.0.1", "$JOB_ID": "1", "/shared/runs": str(self.cwd / "shared_runs"),
        }


# small sizes for every command; a key the command sets itself is left as the command says
BUDGET = ["train.max_steps=2", "train.batch_size=2", "eval.batch_size=4", "train.num_threads=1",
          "train.warmup_steps=0", "data.shapes.num_train=8", "data.shapes.num_val=4", "model.hidden_dim=16",
          "model.nheads=2", "model.dim_feedforward=32", "model.enc_layers=1", "model.dec_layers=2",
          "model.num_queries=6", "model.detr_num_queries=4", "data.num_workers=0", "data.train_scales=[96]",
          "data.max_size=128", "data.val_size=96", "data.crop=false", "logger.mode=offline"]
TINY_BACKBONE = ["model.backbone.widths=[8,16]"]


def tiny_args(args: list[str], env: Env) -> list[str]:
    """The documented arguments with the stand-in paths, plus the budget for the keys they leave unset."""
    subst = env.paths()
    out = []
    for a in args:
        for k, v in subst.items():
            a = a.replace(k, v)
        out.append(a)
    given = {a.split("=", 1)[0].lstrip("+~") for a in out if "=" in a}
    budget = list(BUDGET)
    if not any(a.startswith(("model=r", "model.backbone.weights=")) for a in out):
        budget += TINY_BACKBONE  # a pretrained tiny backbone keeps its own widths
    if "data=coco" not in out:
        budget.append(f"data.root={env.data_root}")
    return out + [b for b in budget if b.split("=", 1)[0] not in given]


def run(argv: list[str], env: Env, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=env.cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def run_ablate(command: str, env: Env, *extra: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "ablate"] or words[0] == "ablate", command
    args = words[3:] if words[0] == "python" else words[1:]
    full = tiny_args(args, env) + list(extra)
    return run([sys.executable, "-m", "ablate", *full], env), full


def results_under(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.rglob("result.json"))]


def newest_run(env: Env, kind: str = "runs") -> Path:
    runs = sorted((env.cwd / "outputs" / kind).glob("*/*"), key=lambda p: p.stat().st_mtime)
    assert runs, f"no folder under outputs/{kind}"
    return runs[-1]


# ---------------------------------------------------------------------------------------------------------------
# checks: (pattern of the documented command, what the docs say it does)


def check_default(command: str, env: Env) -> None:
    """README: trains and evaluates the default model and prints where result.json and the W&B run are."""
    proc, _ = run_ablate(command, env)
    result = json.loads((newest_run(env) / "result.json").read_text())
    assert result["status"] == "finished" and set(result["metrics"]) >= {"AP", "AP50"}
    assert result["axes"]["csq"] == "full" and result["axes"]["proj"] == "diagonal"
    assert "result.json" in proc.stderr + proc.stdout and result["wandb"]["mode"] == "offline"


def check_single_variant(command: str, env: Env) -> None:
    """One variant: the axes the command names are the axes of the finished run."""
    _, args = run_ablate(command, env)
    result = json.loads((newest_run(env) / "result.json").read_text())
    assert result["status"] == "finished"
    for a in args:
        key, _, value = a.partition("=")
        if key in ("csq", "proj", "ref"):
            assert result["axes"][key] in (value, "n/a"), (key, result["axes"])
    if "+experiment=t4_detr" in command:
        assert (result["axes"]["csq"], result["axes"]["focal"], result["axes"]["offset"]) == ("detr", False, False)


def check_sweep(command: str, env: Env) -> None:
    """A multirun: every job recorded (finished or duplicate), same models counted once, the report written."""
    out = env.cwd / "sweeps" / re.sub(r"\W+", "_", command)[-60:]
    run_ablate(command, env, f"hydra.sweep.dir={out}")
    results = results_under(out)
    assert results and all(r["status"] in ("finished", "duplicate") for r in results)
    finished = [r for r in results if r["status"] == "finished"]
    assert len({r["run_key"] for r in finished}) == len(finished)  # no model trained twice
    assert (out / "report" / "table.md").is_file()
    if "csq=C,T,P,I proj=scalar,full" in command:
        assert (len(finished), len(results) - len(finished)) == (6, 2)  # C and P have no T


def check_report(command: str, env: Env) -> None:
    sweep = env.cwd / "report_source"
    run([sys.executable, "-m", "ablate", "-m", "csq=full,C", f"hydra.sweep.dir={sweep}",
         *tiny_args([], env)], env)
    (sweep / "report" / "table.md").unlink()
    run([sys.executable, *shlex.split(command.replace("outputs/multirun/<date>/<time>", str(sweep)))[1:]], env)
    assert (sweep / "report" / "table.md").is_file()


def check_baseline(command: str, env: Env) -> None:
    """Two sweeps of the same variants side by side: baseline.md with the difference of each."""
    new, old = env.cwd / "baseline_new", env.cwd / "baseline_old"
    for folder, seed in ((new, 0), (old, 1)):
        run([sys.executable, "-m", "ablate", "-m", "csq=full,C", f"train.seed={seed}", f"hydra.sweep.dir={folder}",
             *tiny_args([], env)], env)
    words = shlex.split(command.replace("NEW", str(new)).replace("OLD", str(old)))
    run([sys.executable, *words[1:]], env)
    text = (new / "report" / "baseline.md").read_text()
    assert "CSQ-C" in text and str(old) in text


def check_attention(command: str, env: Env) -> None:
    """A trained job's attention maps written into the job folder."""
    words = shlex.split(command.replace("JOBDIR", str(env.job)).replace("--image N", "--image 0"))
    run([sys.executable, *words[1:]], env)
    assert list((env.job / "attention").glob("*.png")) and list((env.job / "attention").glob("*.json"))


def check_predict(command: str, env: Env) -> None:
    """Boxes drawn on every image given (a folder and a file), COCO results beside them."""
    from PIL import Image

    photos = env.cwd / "photos"
    photos.mkdir(exist_ok=True)
    for name, size in (("a.jpg", (160, 120)), ("b.png", (90, 140))):
        Image.new("RGB", size, (200, 40, 40)).save(photos / name)
    Image.new("RGB", (128, 128), (20, 120, 200)).save(env.cwd / "street.jpg")
    words = shlex.split(command.replace("outputs/runs/2026-12-02/10-00-00-000000", str(env.job)))
    run([sys.executable, *words[1:]], env)
    out = env.cwd / "predictions"
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png", "street.png"]
    assert isinstance(json.loads((out / "detections.json").read_text()), list)


def check_pretrain(command: str, env: Env) -> None:
    """The shipped backbone's command writes a loadable state dict and its record (here at 3 steps, elsewhere)."""
    import hashlib

    out = env.cwd / "pretrained" / "tiny.pt"
    run([sys.executable, *shlex.split(command)[1:], "--out", str(out), "--steps", "3", "--images", "6"], env)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() and record["steps"] == 3


def check_pretrained_backbone(command: str, env: Env) -> None:
    """The detector on the shipped backbone: trains with the backbone's statistics (and, frozen, its weights) fixed."""
    run_ablate(command, env)
    folder = newest_run(env)
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "finished"
    import torch

    from ablate.models.backbone import weights_path

    shipped = torch.load(weights_path("tiny_shapes"), weights_only=True)
    trained = torch.load(folder / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(trained[f"backbone.{k}"], v) for k, v in shipped.items() if "running" in k)
    convs = [k for k, v in shipped.items() if v.dim() == 4]
    if "train.lr_backbone=0" in command:  # frozen: every weight as shipped
        assert all(torch.equal(trained[f"backbone.{k}"], v) for k, v in shipped.items())
    else:  # fine-tuned at the documented backbone lr: the convolutions moved, the BN statistics did not
        assert not all(torch.equal(trained[f"backbone.{k}"], shipped[k]) for k in convs)


def check_help(command: str, env: Env) -> None:
    """The ablation groups, their choices and the named sweeps, not Hydra's generic page."""
    proc = run([str(Path(sys.executable).parent / "ablate"), "--help"], env)
    assert "csq" in proc.stdout and "proj" in proc.stdout and "table3_csq" in proc.stdout
    assert "powered by Hydra" not in proc.stdout


def check_completion(command: str, env: Env) -> None:
    """Tab completion of a group lists its choices (the script installed by `ablate -sc install=bash`)."""
    prefix = command.replace("<TAB>", "")
    script = Path(sys.executable).parent / "ablate"
    body = (f'eval "$({script} -sc install=bash)"\n'
            f'COMP_LINE="{prefix}" COMP_POINT={len(prefix)} COMP_CWORD=1 hydra_bash_completion\n'
            'echo "${COMPREPLY[*]}"\n')
    path = {**os.environ, "PATH": f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", body], cwd=env.cwd, env=path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    group = prefix.split()[-1].rstrip("=")
    assert proc.stdout.split() == [f"{group}={p.stem}" for p in sorted((config_dir() / group).glob("*.yaml"))]


# The documented cluster resources → what the single-node test cluster (tests/slurm) has. QOS and account need
# SLURM's accounting database, which the test cluster does not run: those two keys are dropped.
SLURM_FIT = [(r"hydra\.launcher\.partition=\S+", "hydra.launcher.partition=debug"),
             (r"hydra\.launcher\.(qos|account)=\S+", ""),
             (r"hydra\.launcher\.mem_gb=\d+", "hydra.launcher.mem_gb=1"),
             (r"hydra\.launcher\.cpus_per_task=\d+", "hydra.launcher.cpus_per_task=1"),
             (r"hydra\.launcher\.timeout_min=\d+", "hydra.launcher.timeout_min=10"),
             (r"hydra\.launcher\.tasks_per_node=\d+", "hydra.launcher.tasks_per_node=2"),
             (r"hydra\.launcher\.gpus_per_node=\d+", "hydra.launcher.gpus_per_node=1"),
             (r"hydra\.launcher\.array_parallelism=\d+", ""),  # 2 at a time below: 2 cores, 24 GB
             (r"hydra\.sweep\.dir=\S+", "")]


def check_slurm(command: str, env: Env) -> None:
    """A sweep through the real scheduler (tests/slurm's cluster): one job array, every job finished, the report."""
    from tests.slurm.cluster import PACKAGES, Cluster, missing_programs

    if missing := missing_programs():  # as tests/slurm: CI installs the packages, so there this never skips
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing): apt-get install {PACKAGES}")
    cluster: Cluster = env.slurm()
    for pattern, replacement in SLURM_FIT:
        command = re.sub(pattern, replacement, command)
    out = env.cwd / "slurm_sweeps" / str(len(list((env.cwd / "slurm_sweeps").glob("*"))) if (
        env.cwd / "slurm_sweeps").is_dir() else "0")
    extra = [f"hydra.sweep.dir={out}", f"hydra.launcher.name=docs{out.name}", "hydra.launcher.array_parallelism=2"]
    words = shlex.split(command)
    argv = [sys.executable, "-m", "ablate", *tiny_args(words[3:], env), *extra]
    proc = subprocess.run(argv, cwd=env.cwd, capture_output=True, text=True, timeout=1200,
                          env={**cluster.env, "WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(out)
    assert results and all(r["status"] in ("finished", "duplicate") for r in results)
    assert (out / "report" / "table.md").is_file()
    if "tasks_per_node" in command:
        assert all(r["world_size"] == 2 for r in results if r["status"] == "finished")


def check_coco(command: str, env: Env) -> None:
    """COCO-layout data with an ImageNet backbone file: trains, and the frozen stem holds the file's weights."""
    run_ablate(command, env)
    job = newest_run(env)
    result = json.loads((job / "result.json").read_text())
    assert result["status"] == "finished" and result["axes"]["model"] == "r50"
    conv1 = torch.load(job / "checkpoint.pt", weights_only=True)["model"]["backbone.body.conv1.weight"]
    assert torch.equal(conv1, torch.load(env.resnet50, weights_only=True)["conv1.weight"])


def check_eval_only(command: str, env: Env) -> None:
    """Evaluates only: no training line, no checkpoint; a job's own folder gives that job's final metrics."""
    run_ablate(command, env)
    job = newest_run(env)
    result = json.loads((job / "result.json").read_text())
    lines = [json.loads(x) for x in (job / "metrics.jsonl").read_text().splitlines()]
    assert result["status"] == "finished" and result["job_type"] == "eval" and result["steps"] == 0
    assert [r["kind"] for r in lines] == ["eval"] and not (job / "checkpoint.pt").exists()
    if str(env.job) in json.dumps(result["init_from"]):
        source = json.loads((env.job / "result.json").read_text())
        assert result["metrics"] == source["metrics"]
        assert (job / "detections.json").read_text() == (env.job / "detections.json").read_text()


def check_fine_tune(command: str, env: Env) -> None:
    run_ablate(command, env)
    result = json.loads((newest_run(env) / "result.json").read_text())
    assert result["status"] == "finished" and result["job_type"] == "train"
    assert result["init_from"]["path"] == str(env.job / "checkpoint.pt")


def check_torchrun(command: str, env: Env) -> None:
    """DDP: one output folder, one result.json with the world size."""
    words = shlex.split(command)
    i = words.index("-m")
    opts, args = words[1:i], words[i + 2:]
    two_nodes = any(o.startswith("--nnodes=2") for o in opts)
    opts = [re.sub(r"--nproc_per_node=\d+", "--nproc_per_node=1" if two_nodes else "--nproc_per_node=2", o)
            for o in opts]
    port = _free_port()
    opts = [o.replace("127.0.0.1:29500", f"127.0.0.1:{port}") for o in " ".join(opts).replace(
        "$HEAD_NODE", "127.0.0.1").split()]
    run_dir = env.cwd / f"torchrun_{port}"
    sweep = args[:1] == ["-m"]
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    full = [a for a in tiny_args(args, env) if not a.startswith(f"{key}=")] + [f"{key}={run_dir}"]
    argv = [sys.executable, "-m", "torch.distributed.run", *opts, "-m", "ablate", *full]
    if two_nodes:  # both "nodes" on this machine: two launchers meeting at the rendezvous
        env_vars = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
        procs = [subprocess.Popen(argv, cwd=env.cwd, env=env_vars, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        outs = [p.communicate(timeout=600) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    else:
        run(argv, env)
    results = results_under(run_dir)
    expected = len(re.search(r"csq=(\S+)", command).group(1).split(",")) if sweep else 1
    assert len(results) == expected and all(r["status"] == "finished" and r["world_size"] == 2 for r in results)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHECKS: list[tuple[str, Callable[[str, Env], None]]] = [
    (r"python -m ablate$", check_default),
    (r"python -m ablate (csq|\+experiment)=\S+( proj=\S+)?( train\.precision=bf16)?$", check_single_variant),
    (r"python -m ablate (-m )?.*hydra/launcher=slurm .*", check_slurm),
    (r"python -m ablate -m (?!.*hydra/launcher=slurm ).*", check_sweep),
    (r"python -m ablate \+sweep=\S+( train\.seed=\S+)?$", check_sweep),
    (r"ablate --help", check_help),
    (r"ablate \w+=<TAB>", check_completion),
    (r"python -m ablate\.report outputs/multirun/<date>/<time>$", check_report),
    (r"python -m ablate model=r50 data=coco data\.root=\S+ model\.backbone\.weights=\S+$", check_coco),
    (r"python -m ablate .*eval\.only=true model\.init_from=\S+$", check_eval_only),
    (r"python -m ablate csq=T proj=scalar model\.init_from=\S+/checkpoint\.pt$", check_fine_tune),
    (r"torchrun .* -m ablate .*", check_torchrun),
    (r"python -m ablate\.report NEW --baseline OLD", check_baseline),
    (r"python -m ablate\.attention JOBDIR --image N", check_attention),
    (r"python -m ablate\.pretrain", check_pretrain),
    (r"python -m ablate model\.backbone\.weights=tiny_shapes( train\.lr_backbone=\S+)?", check_pretrained_backbone),
    (r"python -m ablate\.predict \S+ photos/ street\.jpg --out predictions --threshold 0\.5", check_predict),
]


def check_for(command: str) -> Callable[[str, Env], None] | None:
    """The first check whose pattern matches the whole command."""
    return next((check for pattern, check in CHECKS if re.fullmatch(pattern, command)), None)


def test_every_documented_command_has_a_check():
    commands = doc_commands()
    assert len(commands) >= 10, commands  # the extraction itself works
    assert [c for c in commands if check_for(c) is None] == []
    unused = [p for p, _ in CHECKS if not any(re.fullmatch(p, c) for c in commands)]
    assert unused == [], "checks for commands the docs no longer show"


# [text](target): relative targets only (no scheme, no pure #anchor); a title or anchor after the path is dropped
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?(?:\s[^)]*)?\)")


def test_relative_links_resolve():
    """A link in README.md, docs/ or a committed report's README/index that points at a file must find it
    (reports are removed or renamed; their links elsewhere must follow)."""
    pages = [*DOCS, ROOT / "reports" / "README.md", *sorted((ROOT / "reports").glob("*/README.md")),
             *sorted((ROOT / "reports").glob("*/index.md"))]
    broken = [f"{page.relative_to(ROOT)}: {target}" for page in pages for target in LINK.findall(page.read_text())
              if "://" not in target and not target.startswith("mailto:")
              and not (page.parent / target).exists()]
    assert broken == []


def test_extraction_reads_fences_continuations_and_inline_commands():
    text = "Run `python -m ablate csq=C` or\n```bash\npython -m ablate -m csq=T \\\n    proj=full  # sweep\n```\n"
    assert _inline(text) == ["python -m ablate csq=C"]
    assert _fenced(text) == ["python -m ablate -m csq=T proj=full  # sweep"]


# ---------------------------------------------------------------------------------------------------------------
# the stand-ins, made once


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Env:
    from tests.docs_standins import make_coco, make_released_r50, make_resnet50

    cwd = tmp_path_factory.mktemp("docs_cwd")
    data_root = tmp_path_factory.mktemp("docs_shapes")
    coco = make_coco(tmp_path_factory.mktemp("coco"))
    resnet50 = make_resnet50(tmp_path_factory.mktemp("ckpt"))
    e = Env(cwd=cwd, coco=coco, resnet50=resnet50, released_r50=Path("unset"), job=cwd / "example_job",
            data_root=data_root, slurm=lambda: request.getfixturevalue("cluster"))
    e.released_r50 = make_released_r50(tmp_path_factory.mktemp("released"), tiny_args(["model=r50", "data=coco",
                                       f"data.root={coco}"], e))
    run([sys.executable, "-m", "ablate", *tiny_args(["csq=T", "proj=scalar", f"hydra.run.dir={e.job}"], e)], e)
    return e


@pytest.mark.slow
@pytest.mark.parametrize("command", doc_commands())
def test_documented_command(command: str, env: Env) -> None:
    check = check_for(command)
    assert check is not None, f"no check for the documented command: {command}"
    check(command, env)
