"""A throw-away single-node Slurm 22.05 (munged, slurmctld, slurmd) in one scratch dir, stopped by PID.

Everything is private to the dir: its own munge key and socket, its own slurm.conf (clients find it through
``SLURM_CONF``), ports picked free on 127.0.0.1 only. So it needs no systemd, touches neither /etc/slurm nor
/run/munge, and a second cluster (another checkout's tests) can run beside it. Why each setting is what it is
(measured on this kind of machine): proctrack/linuxproc because proctrack/cgroup without a cgroup.conf fails
every launch and drains the node; ``batch_sched_delay=0`` because jobs are otherwise placed on a 3 s cadence;
``MinJobAge`` because without slurmdbd there is no sacct and ``scontrol show job`` forgets an ended job after
it; ``config_overrides`` so that a 2-core machine can advertise more CPUs and run more pilots at once.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: What must be installed (Debian 12: apt-get install --no-install-recommends slurmctld slurmd slurm-client munge).
PROGRAMS = ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch", "/usr/bin/scontrol", "/usr/bin/scancel",
            "/usr/sbin/munged", "/usr/sbin/mungekey")
INSTALL = "apt-get install --no-install-recommends slurmctld slurmd slurm-client munge (.ci/run does)"
#: Daemons in the order they are stopped: munged last, the others authenticate through it until they exit.
DAEMONS = ("slurmd", "slurmctld", "munged")


class ClusterError(Exception):
    """The cluster could not be started; the message ends with the daemons' last log lines."""


def missing() -> str | None:
    """Why this machine cannot run the cluster (one line), or None when it can."""
    if os.geteuid() != 0:
        return "Slurm tests need root (slurmctld/slurmd run as root, munged as user munge)"
    absent = [p for p in PROGRAMS if not os.access(p, os.X_OK)]
    if absent:
        return f"Slurm is not installed ({', '.join(absent)} missing): {INSTALL}"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return f"no user 'munge' (the munge package creates it): {INSTALL}"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s; ClusterError at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Cluster:
    """One cluster under ``base``: slurm.conf, munge/, ctld/, spool/, run/*.pid, log/."""

    base: Path
    #: CPUs the node advertises (oversubscribed: more than the machine has, so more pilots run at once).
    cpus: int = 16
    #: Seconds from Slurm's SIGTERM to its SIGKILL (Slurm's default is 30).
    kill_wait: int = 5
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @property
    def conf(self) -> Path:
        return self.base / "slurm.conf"

    @property
    def socket(self) -> Path:
        return self.base / "munge" / "munge.socket"

    @property
    def jobcomp(self) -> Path:
        return self.base / "log" / "jobcomp.txt"

    def env(self) -> dict[str, str]:
        """What a Slurm client (sbatch, squeue, scontrol, scancel) needs to find this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def client(self, *argv: str, check: bool = True) -> str:
        """Run a Slurm client against this cluster; its stdout."""
        done = subprocess.run(argv, check=False, env={**os.environ, **self.env()}, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise ClusterError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    # --- start ---------------------------------------------------------------------------------

    def start(self) -> float:
        """Start munged, slurmctld and slurmd; return the seconds it took once the node is idle.

        On failure the daemons already started stay up: call stop() anyway (the fixture registers it first).
        """
        started = time.monotonic()
        self._prepare()
        self._start_munged()
        self.conf.write_text(self.slurm_conf())
        self._spawn("slurmctld", ["/usr/sbin/slurmctld", "-D", "-f", str(self.conf)])
        self._wait_for(lambda: self._ok("scontrol", "ping"), 30, "slurmctld to answer")
        self._spawn("slurmd", ["/usr/sbin/slurmd", "-D", "-N", "localhost", "-f", str(self.conf)])
        self._wait_for(lambda: self._node_state() == "idle", 30, "the node to be idle")
        return time.monotonic() - started

    def _prepare(self) -> None:
        """The directories; munged (user munge) must be able to reach its own through every parent."""
        for parent in self.base.resolve().parents:
            if parent.exists() and not parent.stat().st_mode & 0o001:
                raise ClusterError(f"munged cannot reach {self.base}: {parent} is not world-searchable")
        for name in ("run", "ctld", "spool", "log", "munge"):
            (self.base / name).mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        munge = pwd.getpwnam("munge")
        os.chown(self.base / "munge", munge.pw_uid, munge.pw_gid)
        (self.base / "munge").chmod(0o755)

    def _start_munged(self) -> None:
        """A private munged with its own key and socket (Debian's would need /run/munge and systemd)."""
        key = self.base / "munge" / "munge.key"
        if not key.exists():
            subprocess.run(["/usr/sbin/mungekey", "--create", f"--keyfile={key}"], user="munge", group="munge",
                           extra_groups=[], check=True, capture_output=True)
        munge_dir = self.base / "munge"
        self._spawn("munged", ["/usr/sbin/munged", "--foreground", f"--socket={self.socket}",
                               f"--key-file={key}", f"--log-file={munge_dir / 'munged.log'}",
                               f"--pid-file={munge_dir / 'munged.pid'}", f"--seed-file={munge_dir / 'munged.seed'}"],
                    user="munge")
        self._wait_for(self.socket.exists, 10, "munged's socket")

    def _spawn(self, name: str, argv: list[str], user: str | None = None) -> None:
        """Start one daemon in the foreground, in its own session, output to log/NAME.out; record its PID."""
        as_user: dict[str, object] = {"user": user, "group": user, "extra_groups": []} if user else {}
        with open(self.base / "log" / f"{name}.out", "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **self.env()},
                                    start_new_session=True, **as_user)  # type: ignore[call-overload]
        self._procs[name] = proc
        (self.base / "run" / f"{name}.pid").write_text(f"{proc.pid}\n")

    def _ok(self, *argv: str) -> bool:
        try:
            self.client(*argv)
        except ClusterError:
            return False
        return True

    def _node_state(self) -> str:
        return self.client("sinfo", "-h", "-n", "localhost", "-o", "%T", check=False).strip()

    def _wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """wait_until, failing early (with the logs) if a daemon this cluster started has died."""
        def check() -> bool:
            dead = [n for n, p in self._procs.items() if p.poll() is not None]
            if dead:
                raise ClusterError(f"{', '.join(dead)} exited while waiting for {what}{self.log_tails()}")
            return condition()
        try:
            wait_until(check, timeout, what)
        except ClusterError as exc:
            raise ClusterError(f"{exc}{self.log_tails()}") from None

    def log_tails(self, lines: int = 15) -> str:
        """The last lines of each daemon's log, for a failure message."""
        parts = []
        for path in sorted([*(self.base / "log").glob("*"), self.base / "munge" / "munged.log"]):
            if path.is_file() and path.name != "jobcomp.txt":
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"\n--- {path}\n" + "\n".join(tail))
        return "".join(parts)

    def slurm_conf(self) -> str:
        """The configuration: one node called localhost on 127.0.0.1, one partition, private paths and ports."""
        b = self.base
        return "\n".join([
            "# written by tests/slurm/cluster.py: a single-node test cluster",
            "ClusterName=fsmtest", "SlurmctldHost=localhost(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={self.socket}",
            "CommunicationParameters=NoCtldInAddrAny,NoInAddrAny",  # listen on 127.0.0.1, not 0.0.0.0
            f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
            "MpiDefault=none", "MailProg=/bin/true", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SwitchType=switch/none", "SchedulerType=sched/backfill", "SchedulerParameters=batch_sched_delay=0",
            "EnforcePartLimits=ALL", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/filetxt", f"JobCompLoc={self.jobcomp}",
            "MinJobAge=3600", f"KillWait={self.kill_wait}", "OverTimeLimit=0", "ReturnToService=2",
            f"StateSaveLocation={b / 'ctld'}", f"SlurmdSpoolDir={b / 'spool'}",
            f"SlurmctldPidFile={b / 'run' / 'slurmctld.daemon.pid'}",
            f"SlurmdPidFile={b / 'run' / 'slurmd.daemon.pid'}",
            f"SlurmctldLogFile={b / 'log' / 'slurmctld.log'}", f"SlurmdLogFile={b / 'log' / 'slurmd.log'}",
            "SlurmctldDebug=info", "SlurmdDebug=info", "SlurmdParameters=config_overrides",
            # memory is not a consumable resource with CR_Core: RealMemory is only bookkeeping
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} Boards=1 SocketsPerBoard=1 "
            f"CoresPerSocket={self.cpus} ThreadsPerCore=1 RealMemory=1024 State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])

    # --- stop ----------------------------------------------------------------------------------

    def stop(self, timeout: float = 15) -> list[str]:
        """Cancel every job and wait for it, then stop the daemons by PID; what went wrong, if anything.

        Jobs go first: a job's slurmstepd outlives slurmd and would keep the job COMPLETING.
        """
        problems: list[str] = []
        if all(self._pid(name) is not None for name in ("slurmctld", "slurmd")):
            problems += self._cancel_jobs()
        problems += self._stop_daemons(["slurmd", "slurmctld"], timeout)
        problems += self._stop_daemons(["munged"], timeout)
        return problems

    def _cancel_jobs(self) -> list[str]:
        jobs = self.client("squeue", "-h", "-o", "%i", check=False).split()
        if not jobs:
            return []
        self.client("scancel", *jobs, check=False)
        try:
            wait_until(lambda: not self.client("squeue", "-h", "-o", "%i", check=False).split(),
                       self.kill_wait + 20, "the cancelled jobs to end")
        except ClusterError as exc:
            return [str(exc)]
        return []

    def _pid(self, name: str) -> int | None:
        """The daemon's PID from run/NAME.pid if that process is still ours (its command line names base)."""
        try:
            pid = int((self.base / "run" / f"{name}.pid").read_text())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                ours = str(self.base).encode() in f.read()
        except (OSError, ValueError):
            return None
        return pid if ours and running(pid) else None

    def _stop_daemons(self, names: list[str], timeout: float) -> list[str]:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; each by its recorded PID only."""
        pids = {name: pid for name in names if (pid := self._pid(name)) is not None}
        for pid in pids.values():
            os.kill(pid, signal.SIGTERM)
        problems = []
        try:
            wait_until(lambda: not any(running(p) for p in pids.values()), timeout, "the daemons to exit")
        except ClusterError:
            for name, pid in pids.items():
                if running(pid):
                    problems.append(f"{name} (pid {pid}) ignored SIGTERM for {timeout:.0f} s: SIGKILL")
                    os.kill(pid, signal.SIGKILL)
        for name in names:
            proc = self._procs.pop(name, None)
            if proc is not None:
                proc.wait(timeout=timeout)  # reap our own child
            (self.base / "run" / f"{name}.pid").unlink(missing_ok=True)
        return problems

    def remove(self) -> None:
        """Delete the scratch dir (after stop)."""
        shutil.rmtree(self.base, ignore_errors=True)
