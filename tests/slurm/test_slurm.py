"""`-m hydra/launcher=slurm` against a real slurmctld/slurmd (tests/slurm/cluster.py): sweeps as job arrays,
preemption and requeue, a failing array task, a 2-task DDP job.

All sweeps are submitted at once (the module's wall time is then about the slowest scenario, not the sum); the
preemption scenarios are driven from threads that watch the job's own files. To make the timing independent of
the machine's speed, the preempted task is held with SIGSTOP while the signal is on its way and released once the
kernel shows it pending: the job then acts on it in the middle of training, wherever the signal came from.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from ablate.app import run_job
from ablate.config import compose
from ablate.data import build_datasets
from tests.slurm.cluster import PACKAGES, Cluster, missing_programs
from tests.tiny import TINY

if missing := missing_programs():
    pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing): apt-get install -y "
                f"--no-install-recommends {PACKAGES}", allow_module_level=True)

pytestmark = pytest.mark.slurm

# 60 steps: long enough that a job signalled at step 2 is still training; one reference run for all three
LONG = ("train.max_steps=60", "train.seed=7", "train.device=cpu")


def wait_for(ready: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := ready():
            return value
        time.sleep(0.2)
    raise TimeoutError(f"no {what} within {timeout:.0f} s")


def minutes(elapsed: str) -> float:
    """squeue's %M (``M:SS``, ``H:MM:SS``, ``D-HH:MM:SS``) in minutes."""
    days, _, clock = elapsed.rpartition("-")
    seconds = 0
    for part in clock.split(":"):
        seconds = 60 * seconds + int(part)
    return (int(days or 0) * 86400 + seconds) / 60


def signal_state(pid: int) -> tuple[bool, bool]:
    """(SIGUSR2 pending, stopped) for ``pid``; (True, False) once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True, False
    pending = sum(int(m, 16) for m in re.findall(r"^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)", status, re.M))
    return bool(pending & (1 << (signal.SIGUSR2 - 1))), "\nState:\tT" in status


def last_step(job_dir: Path) -> int:
    steps = [json.loads(line)["step"] for line in (job_dir / "metrics.jsonl").read_text().splitlines()
             if line.strip()] if (job_dir / "metrics.jsonl").exists() else []
    return max(steps, default=0)


def saved(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


class Sweep:
    """``python -m ablate -m ... hydra/launcher=slurm`` in the background, named ``name`` in the queue."""

    def __init__(self, cluster: Cluster, root: Path, name: str, *overrides: str) -> None:
        self.cluster, self.name, self.dir = cluster, name, root / name
        gpus = [] if cluster.gpus else ["hydra.launcher.gpus_per_node=null"]  # a node without (fake) GPUs
        cmd = [sys.executable, "-m", "ablate", "-m", *TINY, f"data.root={root / 'data'}", "logger=none",
               "hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.timeout_min=10",
               "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", f"hydra.launcher.name={name}",
               *gpus, *overrides, f"hydra.sweep.dir={self.dir}"]
        self.cmd, self.root, self.runs = cmd, root, 0
        self.again()

    def again(self) -> Sweep:
        """(Re)launch the sweep: the same command into the same folder."""
        self.runs += 1
        self.log = self.root / f"{self.name}.{self.runs}.log"
        env = {**self.cluster.env, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=self.root, env=env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def wait(self, timeout: float = 800) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"{self.name} still running after {timeout:.0f} s; queue:\n"
                                 f"{self.cluster.run('squeue', check=False)}\n{self.log.read_text()[-4000:]}") from None
        return code, self.log.read_text()

    def results(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.dir.glob("*/result.json"))]

    @property
    def job_dir(self) -> Path:  # the one job of a one-job sweep
        return wait_for(lambda: next((p for p in self.dir.glob("0_*") if p.is_dir()), None), 600, "job folder")

    def job_ids(self) -> tuple[str, str]:
        """(SLURM's name of the running array task, e.g. ``12_0``; its plain job id) once it runs."""
        def running() -> list[str] | None:
            rows = self.cluster.run("squeue", "-h", "-n", self.name, "-t", "R", "-o", "%i %A").split()
            return rows[:2] if rows else None
        return tuple(wait_for(running, 600, f"running {self.name} job"))  # type: ignore[return-value]

    def task_pid(self, plain_id: str) -> int:
        """The python process of task 0 (step 0, global task 0) of the job."""
        for row in self.cluster.run("scontrol", "listpids", plain_id).splitlines()[1:]:
            pid, _, step, _, task = (row.split() + [""] * 5)[:5]
            if step == "0" and task == "0":
                return int(pid)
        raise AssertionError(f"no task 0 of job {plain_id} in scontrol listpids")

    def submitit_log(self) -> str:
        return "".join(p.read_text() for p in sorted(self.dir.glob(".submitit/*/*_log.*")))


class Driver(threading.Thread):
    """Runs ``act`` alongside the sweeps; ``result()`` re-raises its exception in the test."""

    def __init__(self, act: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.act, self.value, self.error = act, None, None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.act()
        except BaseException as e:
            self.error = e

    def result(self, timeout: float = 800) -> Any:
        self.join(timeout)
        if self.error is not None:
            raise self.error
        return self.value


def usr2_arrived(s: Sweep, pid: int, woken: dict[str, float]) -> bool:
    """SLURM's USR2 is pending, or was handled (submitit logged it). SLURM sends SIGCONT along with a signal, but
    also on its own after a time-limit update: a task woken without USR2 gets 5 s to log it, then is held again."""
    pending, stopped = signal_state(pid)
    if pending or "Caught signal SIGUSR2" in s.submitit_log():
        return True
    if stopped:
        woken.pop("at", None)
    elif time.monotonic() - woken.setdefault("at", time.monotonic()) > 5:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    return False


def held_until_signalled(s: Sweep, send: Callable[[str, str], None], then: Callable[[str], None] = lambda job: None,
                         before: Callable[[str, str], None] = lambda job, plain: None) -> int:
    """Wait for step 2, ``before(job_id, plain_id)``, stop the task, ``send(...)``, wait until SLURM's signal
    arrives, ``then(job_id)``, release the task. Returns the last logged step before the signal."""
    wait_for(lambda: last_step(s.job_dir) >= 2, 600, f"step 2 of {s.name}")
    job, plain = s.job_ids()
    pid = s.task_pid(plain)
    before(job, plain)
    os.kill(pid, signal.SIGSTOP)
    try:
        step = last_step(s.job_dir)
        send(job, plain)
        woken: dict[str, float] = {}
        # slurmctld checks time limits on a ~30 s timer and, when busy, later: allow several checks to go by
        wait_for(lambda: usr2_arrived(s, pid, woken), 240, f"SIGUSR2 from SLURM to {s.name}")
        then(job)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    return step


def time_limit_signal(s: Sweep) -> int:
    """SLURM's own warning: the job was submitted with --signal=USR2@90; shortening its time limit to 1-2 min
    from now makes slurmctld send USR2 at its next time-limit check (every 30 s). The update itself may send the
    task a SIGCONT, so it comes before the task is held. The limit is put back once the signal is out, so that
    the requeued run is not warned again while it starts."""
    def shorten(job: str, plain: str) -> None:
        elapsed = minutes(s.cluster.run("squeue", "-h", "-j", plain, "-o", "%M").strip())
        # the USR2 falls due at limit − 90 s (1.5 min from now) and the job is killed only at the limit: several
        # of slurmctld's ~30 s time-limit checks fit in between
        s.cluster.run("scontrol", "update", f"JobId={job}", f"TimeLimit={math.ceil(elapsed + 3)}")
        time.sleep(3)

    return held_until_signalled(s, lambda job, plain: None, before=shorten,
                                then=lambda job: s.cluster.run("scontrol", "update", f"JobId={job}",
                                                               "TimeLimit=10", check=False))


def external_usr2(s: Sweep) -> int:
    return held_until_signalled(s, lambda job, plain: s.cluster.run("scancel", "--signal=USR2", job))


def external_requeue(s: Sweep) -> int:
    """``scontrol requeue`` once a periodic checkpoint past step 2 exists; returns that checkpoint's step."""
    ckpt = wait_for(lambda: (p := s.job_dir / "checkpoint.pt").exists() and saved(p)["step"] >= 2 and p, 600,
                    f"periodic checkpoint of {s.name}")
    step = saved(ckpt)["step"]
    s.cluster.run("scontrol", "requeue", s.job_ids()[0])
    return step


@pytest.fixture(scope="module")
def runs(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("slurm_runs")

    build_datasets(compose([*TINY, f"data.root={root / 'data'}"]).data)  # the jobs share it: generate it once
    sweeps = {
        "array": Sweep(cluster, root, "array", "csq=full,C", "proj=scalar,full"),
        "failing": Sweep(cluster, root, "failing", "train.lr=0.0001,-1"),
        "ddp": Sweep(cluster, root, "ddp", "hydra.launcher.tasks_per_node=2", "logger=wandb", "logger.mode=offline",
                     "train.device=cpu", "train.batch_size=2",
                     f"hydra.launcher.gpus_per_node={2 if cluster.gpus else 'null'}"),
        # timeout_min=10: submitit counts the signal as a time-out (max_num_timeout); 60: as a preemption
        "timelimit": Sweep(cluster, root, "timelimit", *LONG, "hydra.launcher.signal_delay_s=90"),
        # the same with no time-out left to requeue: the job fails, and re-running the sweep resumes it
        "budget": Sweep(cluster, root, "budget", *LONG, "hydra.launcher.signal_delay_s=90",
                        "hydra.launcher.max_num_timeout=0"),
        "usr2": Sweep(cluster, root, "usr2", *LONG, "hydra.launcher.timeout_min=60"),
        "requeue": Sweep(cluster, root, "requeue", *LONG, "hydra.launcher.timeout_min=60",
                         "train.checkpoint_every=1"),
    }
    drivers = {"timelimit": Driver(lambda: time_limit_signal(sweeps["timelimit"])),
               "budget": Driver(lambda: time_limit_signal(sweeps["budget"])),
               "usr2": Driver(lambda: external_usr2(sweeps["usr2"])),
               "requeue": Driver(lambda: external_requeue(sweeps["requeue"]))}
    try:
        # the uninterrupted run of the preempted jobs' config, here (signal handlers need the main thread) while
        # the cluster runs the sweeps
        reference = run_job(compose([*TINY, *LONG, f"data.root={root / 'data'}", "logger=none"]),
                            root / "reference")
        yield {"reference": reference, "sweeps": sweeps, "drivers": drivers}
    finally:
        for s in sweeps.values():
            if s.proc.poll() is None:
                s.proc.kill()


def assert_same_as_uninterrupted(result: dict[str, Any], runs: dict[str, Any]) -> None:
    expected = json.loads((Path(runs["reference"]["output_dir"]) / "result.json").read_text())  # NaN as null
    weights = saved(Path(expected["output_dir"]) / "checkpoint.pt")["model"]
    assert (result["status"], result["steps"]) == ("finished", expected["steps"])
    assert result["metrics"] == expected["metrics"]
    final = saved(Path(result["output_dir"]) / "checkpoint.pt")["model"]
    assert final.keys() == weights.keys() and all(torch.equal(final[k], weights[k]) for k in weights)


def test_sweep_runs_as_one_job_array_with_the_launcher_resources(runs: dict[str, Any], cluster: Cluster) -> None:
    s = runs["sweeps"]["array"]
    code, log = s.wait()
    assert code == 0, log[-4000:]
    found = s.results()
    assert sorted(r["status"] for r in found) == ["duplicate", "finished", "finished", "finished"]
    dup = next(r for r in found if r["status"] == "duplicate")  # csq=C ignores proj: two tasks, one model
    owner = json.loads((Path(dup["duplicate_of"]) / "result.json").read_text())
    assert (owner["status"], owner["run_key"], owner["axes"]["csq"]) == ("finished", dup["run_key"], "C")
    tasks = sorted(p.name for p in (s.dir / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name))
    array = tasks[0].split("_")[0]
    assert tasks == [f"{array}_{i}" for i in range(4)]  # one array, one task per job
    shown = cluster.run("scontrol", "show", "job", array)  # finished jobs stay listed for MinJobAge
    assert shown.count("JobState=COMPLETED") == 4 and shown.count("Partition=debug") == 4
    assert shown.count("TimeLimit=00:10:00") == 4 and shown.count("MinMemoryNode=1G") == 4
    if cluster.gpus:
        assert shown.count("TresPerNode=gres:gpu:1") == 4
    assert log.count("sweep report:") == 1 and (s.dir / "report" / "index.md").is_file()


def test_failing_array_task_is_recorded_and_the_sweep_exits_nonzero(runs: dict[str, Any]) -> None:
    s = runs["sweeps"]["failing"]
    code, log = s.wait()
    assert code == 1, log[-4000:]
    assert "ablate: 1 job(s) of the sweep failed" in log
    by_status = {r["status"]: r for r in s.results()}
    assert sorted(by_status) == ["failed", "finished"]
    assert "train.lr=-1.0 must be > 0" in by_status["failed"]["error"]["message"]
    assert (s.dir / "report" / "index.md").is_file() and log.count("sweep report:") == 1


def test_two_task_ddp_job(runs: dict[str, Any]) -> None:
    s = runs["sweeps"]["ddp"]
    code, log = s.wait()
    assert code == 0, log[-4000:]
    [result] = s.results()
    assert (result["status"], result["world_size"], result["effective_batch_size"]) == ("finished", 2, 4)
    assert len(list(Path(result["output_dir"], "wandb").glob("offline-run-*"))) == 1
    assert len(list(s.dir.glob(".submitit/*/*_[01]_log.out"))) == 2  # two SLURM tasks ran it


def requeued_result(s: Sweep, driver: Driver) -> tuple[dict[str, Any], int, str]:
    before = driver.result()
    code, log = s.wait()
    assert code == 0, log[-4000:]
    [result] = s.results()
    return result, before, s.submitit_log()


def test_time_limit_signal_checkpoints_requeues_and_resumes(runs: dict[str, Any]) -> None:
    result, step, log = requeued_result(runs["sweeps"]["timelimit"], runs["drivers"]["timelimit"])
    assert "Caught signal SIGUSR2" in log and "this job is timed-out" in log and "Requeued job" in log
    assert result["resumed_from"] is not None and result["resumed_from"] >= max(step, 1)
    assert_same_as_uninterrupted(result, runs)


def test_no_time_out_left_fails_the_job_and_rerunning_the_sweep_resumes_it(runs: dict[str, Any]) -> None:
    s = runs["sweeps"]["budget"]
    step = runs["drivers"]["budget"].result()
    code, log = s.wait()
    assert code == 1, log[-4000:]
    [failed] = s.results()
    assert failed["status"] == "failed" and "timed-out too many times" in failed["error"]["message"]
    checkpointed = saved(s.job_dir / "checkpoint.pt")["step"]
    assert checkpointed >= max(step, 1) and "Requeued job" not in s.submitit_log()
    code, log = s.again().wait()  # the same command, the same sweep folder
    assert code == 0, log[-4000:]
    [result] = s.results()
    assert result["resumed_from"] == checkpointed
    assert_same_as_uninterrupted(result, runs)


def test_external_usr2_is_a_preemption_checkpointed_and_resumed(runs: dict[str, Any]) -> None:
    result, step, log = requeued_result(runs["sweeps"]["usr2"], runs["drivers"]["usr2"])
    assert "this job is preempted" in log and "Requeued job" in log
    assert result["resumed_from"] is not None and result["resumed_from"] >= max(step, 1)
    assert_same_as_uninterrupted(result, runs)


def test_scontrol_requeue_resumes_from_the_last_checkpoint(runs: dict[str, Any]) -> None:
    result, step, log = requeued_result(runs["sweeps"]["requeue"], runs["drivers"]["requeue"])
    assert "Caught signal SIGUSR2" not in log  # nothing told the job; it was killed and started again
    assert result["resumed_from"] is not None and result["resumed_from"] >= step >= 2
    assert_same_as_uninterrupted(result, runs)
