"""A private single-node SLURM cluster (Debian's slurmctld/slurmd/munge packages, no systemd), for the tests.

Everything lives under one folder: its own munge key and socket, free TCP ports, state, spool and logs, so it
touches no system-wide SLURM or munge and two clusters can run side by side. The node advertises
``CPUS`` CPUs and ``GPUS`` GPUs as countable resources (``gres/gpu`` without devices), whatever the machine
has, so that a GPU cluster's job requests (``--gpus-per-node``) are scheduled as they would be there; the jobs
themselves run on the CPU.

    python tests/slurm/cluster.py up /tmp/slurm     # prints the `export SLURM_CONF=...` line to use
    python tests/slurm/cluster.py down /tmp/slurm   # stops exactly the daemons `up` started (recorded pids)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = "slurmctld slurmd slurm-client munge"
PROGRAMS = ("munged", "mungekey", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo", "squeue", "scancel")
DAEMONS = ("munged", "slurmctld", "slurmd")  # start order; stopped in reverse
CPUS, GPUS = 16, 8


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None and not Path("/usr/sbin", p).exists()]


def program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(root: Path, host: str, mem_mb: int, gpus: int) -> str:
    return f"""\
ClusterName=ablatetest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# our own munged; requeued jobs may restart cred_expire seconds after they ended (default 120)
AuthInfo=socket={root}/run/munge.socket,cred_expire=10
MailProg=/bin/true
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# requeued and pending jobs are scheduled within seconds (defaults: bf_interval=30, sched_interval=60)
SchedulerParameters=bf_interval=1,sched_interval=2
# the node's CPUs and GPUs come from this file, not from the hardware
SlurmdParameters=config_overrides
InactiveLimit=0
MinJobAge=300
# seconds between SIGTERM and SIGKILL when a job is killed or requeued from outside (default 30)
KillWait=2
Waittime=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={mem_mb} {f"Gres=gpu:{gpus}" if gpus else ""} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """``Cluster(root).start()`` … ``.stop()``; ``env`` is what a client (sbatch, submitit) needs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.conf = self.root / "etc" / "slurm.conf"
        self.socket = self.root / "run" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}
        self.gpus = 0

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        proc = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode:
            raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def start(self) -> Cluster:
        if os.geteuid() != 0:
            raise RuntimeError("the test cluster's slurmd must run as root (it starts jobs as their user)")
        if missing := missing_programs():
            raise RuntimeError(f"missing {', '.join(missing)}: apt-get install -y {PACKAGES}")
        for sub in ("etc", "state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        key = self.root / "etc" / "munge.key"
        if not key.exists():
            subprocess.run([program("mungekey"), "--create", f"--keyfile={key}"], check=True)
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2
        host = socket.gethostname().split(".")[0]
        self.gpus = self._fake_gpus(host)
        self.conf.write_text(slurm_conf(self.root, host, mem_mb, self.gpus))
        try:
            r = self.root
            self._spawn("munged", program("munged"), "--foreground", "--force", f"--socket={self.socket}",
                        f"--key-file={key}", f"--pid-file={r}/run/munged.pid", f"--log-file={r}/log/munged.log",
                        f"--seed-file={r}/run/munged.seed")
            self._wait("munged", lambda: subprocess.run(
                f"munge -n -S {self.socket} | unmunge -S {self.socket}", shell=True, capture_output=True
            ).returncode == 0)
            self._spawn("slurmctld", program("slurmctld"), "-D", "-i", "-f", str(self.conf))
            self._wait("slurmctld", lambda: "UP" in self.run("scontrol", "ping", check=False))
            self._spawn("slurmd", program("slurmd"), "-D", "-f", str(self.conf))
            self._wait("slurmd", lambda: self.run("sinfo", "-h", "-o", "%T", check=False).split() == ["idle"])
        except BaseException:
            self.stop()
            raise
        (self.root / "run" / "pids").write_text("".join(f"{p.pid}\n" for p in self.procs.values()))
        return self

    def _fake_gpus(self, host: str) -> int:
        dev = self.root / "dev"
        dev.mkdir(exist_ok=True)
        try:
            for i in range(GPUS):
                if not (dev / f"nvidia{i}").exists():
                    os.mknod(dev / f"nvidia{i}", 0o644 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
        except OSError:
            return 0
        (self.root / "etc" / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={host} Name=gpu File={dev}/nvidia[0-{GPUS - 1}]\n")
        return GPUS

    def _spawn(self, name: str, *cmd: str) -> None:
        with open(self.root / "log" / f"{name}.out", "ab") as out:
            self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                                start_new_session=True)

    def _wait(self, name: str, ready, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.procs[name].poll() is not None:
                break
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not come up within {timeout:.0f} s; its log:\n{self.log(name)}")

    def log(self, name: str, chars: int = 3000) -> str:
        text = "".join(p.read_text(errors="replace") for p in sorted((self.root / "log").glob(f"{name}*")))
        return text[-chars:]

    def stop(self) -> None:
        """Cancel what is still queued, then stop the daemons this object started (reverse order)."""
        if "slurmd" in self.procs and self.procs["slurmd"].poll() is None:
            self.run("scancel", "--full", "--user=root", check=False)
            end = time.monotonic() + 20
            while time.monotonic() < end and self.run("squeue", "-h", check=False).strip():
                time.sleep(0.5)
        for name in reversed(DAEMONS):
            if (proc := self.procs.pop(name, None)) is not None:
                stop_pid(proc.pid, lambda p=proc: p.poll() is not None)


def stop_pid(pid: int, gone, grace: float = 20) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + grace
    while time.monotonic() < end and not gone():
        time.sleep(0.1)
    if not gone():
        os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        sys.exit(__doc__)
    cluster = Cluster(Path(argv[1]))
    if argv[0] == "up":
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}")
        return
    pids = cluster.root / "run" / "pids"
    cluster.run("scancel", "--full", "--user=root", check=False)
    for pid in reversed([int(p) for p in pids.read_text().split()]):
        stop_pid(pid, lambda p=pid: not alive(p))
    pids.unlink()


if __name__ == "__main__":
    main(sys.argv[1:])
