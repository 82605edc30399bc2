"""What the CI cases share: submitting jobs, running pilots, and reading panda-server's own tables.

A job is final in panda-server only once its adder has moved it from ``holding`` to ``jobsarchived4``;
``Case.finalize`` runs the adder until ``job_output_report`` is drained and the jobs are archived.
Submission goes through ``SUBMIT``: panda-server's own JobSpec/JobUtils for now; switching it to
``submit_with_fsm_pilot`` makes every case submit with ``fsm-pilot submit`` instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.pandaserver.stack import QUEUE, Stack
from tests.pilotrun import started, wait_for

HERE = Path(__file__).parent
FINAL_STATES = ("finished", "failed")


def submit_with_jobutils(stack: Stack, jobs: list[dict[str, Any]]) -> list[int]:
    """POST /api/v1/job/submit with ``jobs`` encoded by panda-server's JobUtils.dump_jobs_json."""
    encoded = subprocess.run([str(stack.server.python), str(HERE / "jobutils_encode.py")], input=json.dumps(jobs),
                             capture_output=True, text=True, env=stack.server.env, check=False)
    assert encoded.returncode == 0, f"encoding failed: {encoded.stderr[-2000:]}"
    reply = requests.post(f"{stack.server.url}/api/v1/job/submit", json={"jobs": encoded.stdout}, timeout=60)
    answer = reply.json()
    assert answer["success"], answer
    return [int(row[0]) for row in answer["data"]]  # [[PandaID, jobDefinitionID, jobName], ...]


def submit_with_fsm_pilot(stack: Stack, jobs: list[dict[str, Any]]) -> list[int]:
    """``fsm-pilot submit`` with the same job definitions (once it speaks panda-server's submit API)."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(jobs, file)
        file.flush()
        done = subprocess.run([sys.executable, "-m", "fsm_pilot", "submit", "--url", stack.server.url, "--queue",
                               QUEUE, file.name], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [int(line) for line in done.stdout.split()]


SUBMIT: Callable[[Stack, list[dict[str, Any]]], list[int]] = submit_with_fsm_pilot


def sleeper(token: str, seconds: int = 300) -> dict[str, Any]:
    """A payload that runs until killed; its argv[0] is ``token``, so a leftover can be found and stopped."""
    return {"transformation": "bash", "jobPars": f"-c 'exec -a {token} sleep {seconds}'"}


@dataclass
class Case:
    """One case: its dir, its jobs, where its part of the exchange record starts."""

    stack: Stack
    dir: Path
    token: str
    record_start: int = 0
    submitted: list[int] = field(default_factory=list)
    pilots: list[Path] = field(default_factory=list)

    # -- jobs -----------------------------------------------------------------------------------------------
    def submit(self, *jobs: dict[str, Any]) -> list[int]:
        ids = SUBMIT(self.stack, [{**job, "computingSite": QUEUE} for job in jobs])
        self.submitted.extend(ids)
        return ids

    def set_command(self, panda_id: int, command: str) -> dict[str, Any]:
        reply = requests.post(f"{self.stack.server.url}/api/v1/job/set_command",
                              json={"job_id": panda_id, "command": command}, timeout=60)
        answer: dict[str, Any] = reply.json()
        return answer

    def v1(self, function: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = requests.post(f"{self.stack.server.url}/api/v1/{function}", json=body, timeout=60)
        answer: dict[str, Any] = reply.json()
        return answer

    # -- pilots ---------------------------------------------------------------------------------------------
    def launch(self, name: str = "launch") -> Path:
        path = self.dir / name
        path.mkdir(parents=True, exist_ok=True)
        self.pilots.append(path)
        return path

    def pilot_argv(self, launch: Path, *extra: str, tls: bool = False, url: str | None = None,
                   entry: Sequence[str] = ("-m", "fsm_pilot")) -> list[str]:
        """The pilot's command line: the queue's JSON from files, one getJob, the server over HTTP or TLS
        (``url`` replaces the server's own, e.g. a proxy in front of it)."""
        server = self.stack.server
        base = url or (server.tls_url if tls else server.url)
        where = ["--url", base, "--cacert", str(server.cacert)] if tls else ["--url", base]
        api = [] if any(arg.startswith("--api") for arg in extra) else ["--api", "v1"]
        return [sys.executable, *entry, "run", "-q", QUEUE, *where, *api, "-j", "managed", "-t",
                "-a", str(launch), "--queuedata-url", str(self.stack.queuedata_file),
                "--storagedata-url", str(self.stack.storagedata_file), "--min-free-disk", "1000000",
                "-v", "1", "--getjob-wait", "0", *extra]

    def start_pilot(self, launch: Path, *extra: str, tls: bool = False, url: str | None = None,
                    entry: Sequence[str] = ("-m", "fsm_pilot"),
                    env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start a pilot in ``launch``; its console (stdout, stderr) goes to files there, kept as artifacts."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("FSM_PILOT_", "HARVESTER_"))}
        argv = self.pilot_argv(launch, *extra, tls=tls, url=url, entry=entry)
        with (launch / "console.out").open("a") as out, (launch / "console.err").open("a") as err:
            return started(subprocess.Popen(argv, cwd=launch, env={**base, **(env or {})}, text=True,
                                            stdout=out, stderr=err))

    def run_pilot(self, launch: Path, *extra: str, timeout: float = 120, tls: bool = False,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a pilot to its end; its console comes back as stdout/stderr."""
        proc = self.start_pilot(launch, *extra, tls=tls, env=env)
        proc.wait(timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, *console(launch))

    # -- the server's tables ---------------------------------------------------------------------------------
    def rows(self, sql: str) -> list[dict[str, Any]]:
        return self.stack.cluster.rows(sql)

    def active_status(self, panda_id: int) -> str | None:
        found = self.rows(f"SELECT jobstatus FROM doma_panda.jobsactive4 WHERE pandaid = {int(panda_id)}")
        return str(found[0]["jobstatus"]) if found else None

    def wait_active(self, panda_id: int, status: str, pilot: subprocess.Popen[str], timeout: float = 60) -> None:
        """Wait until the server holds the job in ``status``; fail at once if the pilot ended first."""

        def reached() -> bool:
            if pilot.poll() is not None:
                raise AssertionError(f"the pilot exited with {pilot.returncode} before job {panda_id} was {status}")
            return self.active_status(panda_id) == status

        wait_for(reached, timeout, f"job {panda_id} {status} on the server")

    def finalize(self, *ids: int, timeout: float = 120) -> float:
        """Run the adder until job_output_report is empty and every job is in jobsarchived4; its seconds."""
        wanted = ", ".join(str(int(i)) for i in ids)

        def done() -> bool:
            if self.rows("SELECT pandaid FROM doma_panda.job_output_report"):
                return False
            archived = self.rows(f"SELECT pandaid FROM doma_panda.jobsarchived4 WHERE pandaid IN ({wanted})")
            return len(archived) == len(ids)

        return self.stack.server.run_adder(done, timeout)

    def archived(self, panda_id: int) -> dict[str, Any]:
        found = self.rows(f"SELECT * FROM doma_panda.jobsarchived4 WHERE pandaid = {int(panda_id)}")
        assert len(found) == 1, f"job {panda_id}: {len(found)} rows in jobsarchived4"
        return found[0]

    def files(self, panda_id: int) -> dict[str, dict[str, Any]]:
        """filestable4's rows of the job, by type and lfn: {'input:in.dat': {...}, 'log:...': {...}}."""
        found = self.rows(f"SELECT * FROM doma_panda.filestable4 WHERE pandaid = {int(panda_id)}")
        return {f"{row['type']}:{row['lfn']}": row for row in found}

    def pandalog(self, panda_id: int) -> list[dict[str, Any]]:
        return self.rows(f"SELECT * FROM doma_panda.pandalog WHERE pid = {int(panda_id)} ORDER BY bintime")

    # -- the exchange record ---------------------------------------------------------------------------------
    def exchanges(self) -> list[dict[str, Any]]:
        """What every client sent to the server and got back since this case began."""
        record = self.stack.server.record
        if not record.exists():
            return []
        with record.open("rb") as file:
            file.seek(self.record_start)
            return [json.loads(line) for line in file.read().decode().splitlines() if line.strip()]

    def updates(self, panda_id: int) -> list[dict[str, Any]]:
        """The pilots' update_job requests for ``panda_id``, in order, with the server's reply and times."""
        found = []
        for entry in self.exchanges():
            if entry["path"] == "/api/v1/pilot/update_job":
                body = json.loads(entry["request"] or "{}")
                if body.get("job_id") == panda_id:
                    found.append({**entry, "body": body})
        return found

    # -- teardown ----------------------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Stop this case's payloads left running (found by their token) and cancel its jobs still queued."""
        for pid in token_pids(self.token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.cancel_pending()

    def cancel_pending(self) -> None:
        """Kill (through the API) every job still waiting in the queue, so the next case starts empty."""
        pending = [int(r["pandaid"]) for r in self.rows(
            f"SELECT pandaid FROM doma_panda.jobsactive4 WHERE computingsite = '{QUEUE}' "
            "AND jobstatus IN ('activated', 'defined', 'assigned')")]
        if pending:
            answer = self.v1("job/kill", {"job_ids": pending})
            assert answer["success"], answer


def token_pids(token: str) -> list[int]:
    """Processes whose argv[0] is ``token``: payloads a case started (sleeper), found by the mark it gave."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            except OSError:
                continue
            if argv0 == token.encode():
                found.append(int(entry.name))
    return found


def console(launch: Path) -> tuple[str, str]:
    """What the pilots run in ``launch`` printed (stdout, stderr)."""
    return tuple(  # type: ignore[return-value]
        (launch / name).read_text(errors="replace") if (launch / name).exists() else "" for name in
        ("console.out", "console.err"))
