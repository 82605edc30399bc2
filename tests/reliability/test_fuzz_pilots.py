"""Fuzzing real pilots: hostile job files, queuedata and server replies, one pilot process each.

Invariants: the pilot ends in time, its exit code is in the documented table, no
traceback anywhere, its transition log replays clean, and a job it rejected is
reported failed with a PanDA error code (``final_update_<PandaID>.json``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fsm_pilot.errors import PilotError
from tests.pilotrun import job_def, make_launch
from tests.reliability import fuzzvalues
from tests.reliability.cluster import start_pilot
from tests.reliability.conftest import MakeLedger
from tests.reliability.invariants import PILOT_INVARIANTS, check_pilot
from tests.reliability.ledger import Ledger
from tests.reliability.sandbox import Sandbox
from tests.reliability.scale import size
from tests.reliability.stubserver import StubServer

INVARIANTS = ("finished_in_time", "rejected_job_coded", *PILOT_INVARIANTS)
EXAMPLES = size(4, 150)
#: A bound on a pilot that hangs (its fuzzed work is tiny: it normally ends within a second or two).
DEADLINE = 60.0
CODES = frozenset(int(e) for e in PilotError)
ARGS = ("--timefloor", "0", "-v", "1", "--getjob-wait", "0", "--update-timeout", "3")


class PilotFuzz:
    """Runs one pilot per example in its own launch dir and checks it."""

    def __init__(self, box: Sandbox, root: Path, book: Ledger) -> None:
        self.box, self.root, self.book = box, root, book
        self.count = 0

    def run(self, files: Mapping[str, bytes], url: str | None = None, example: str = "",
            deadline: float = DEADLINE) -> None:
        self.count += 1
        launch = make_launch(self.root / f"e{self.count}").dir
        for name, content in files.items():
            (launch / name).write_bytes(content)
        proc = start_pilot(self.box, launch, url, *ARGS, name=f"e{self.count}")
        label = f"example {self.count} ({example[:200]})"
        self.book.run()
        try:
            proc.wait(deadline)
        except subprocess.TimeoutExpired:
            self.book.check("finished_in_time", False, f"{label}: still running after {deadline} s (stopped)")
            proc.kill()
            proc.wait(30)
            return
        self.book.check("finished_in_time", True)
        check_pilot(self.book, proc, launch, label)
        self._rejections(launch, label)

    def _rejections(self, launch: Path, label: str) -> None:
        """A rejected job is reported failed with a PanDA error code."""
        for directory in launch.glob("Panda_Pilot_*"):
            log = directory / "transitions.jsonl"
            lines = log.read_text().splitlines() if log.exists() else []
            for record in (json.loads(line) for line in lines if line.endswith("}")):
                if record["event"] != "reject":
                    continue
                report = directory / f"final_update_{record['job_id']}.json"
                fields: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
                code = fields.get("pilotErrorCode")
                self.book.check("rejected_job_coded", fields.get("state") == "failed" and code in CODES and code != 0,
                                f"{label}: rejected job {record['job_id']} reported {fields.get('state')!r} "
                                f"with pilotErrorCode {code!r}")


def _campaign(tmp_path: Path, sandbox: Sandbox, book: Ledger) -> PilotFuzz:
    return PilotFuzz(sandbox, tmp_path / "examples", book)


def test_fuzzed_job_files_in_real_pilots(tmp_path: Path, sandbox: Sandbox, ledger: MakeLedger) -> None:
    book = ledger("fuzz: real pilots, job files", INVARIANTS)
    fuzz = _campaign(tmp_path, sandbox, book)
    harvester = fuzzvalues.job_definitions().map(lambda j: fuzzvalues.json_bytes({str(j.get("PandaID")): j}))
    documents = harvester | fuzzvalues.raw_documents()
    fuzzvalues.for_each_example(book.seed, EXAMPLES, documents,
                                lambda doc: fuzz.run({"pandaJobData.out": doc}, example=repr(doc)))
    book.finish()


def test_fuzzed_queuedata_in_real_pilots(tmp_path: Path, sandbox: Sandbox, ledger: MakeLedger) -> None:
    book = ledger("fuzz: real pilots, queuedata", INVARIANTS)
    fuzz = _campaign(tmp_path, sandbox, book)
    job = fuzzvalues.json_bytes({"1": job_def(1, "-c true")})
    documents = fuzzvalues.queuedata_documents().map(fuzzvalues.json_bytes) | fuzzvalues.raw_documents()
    fuzzvalues.for_each_example(book.seed, EXAMPLES, documents, lambda doc: fuzz.run(
        {"queuedata.json": doc, "pandaJobData.out": job}, example=repr(doc)))
    book.finish()


def test_fuzzed_server_replies_in_real_pilots(tmp_path: Path, sandbox: Sandbox, ledger: MakeLedger) -> None:
    book = ledger("fuzz: real pilots, server replies", INVARIANTS)
    fuzz = _campaign(tmp_path, sandbox, book)

    def one(replies: list[tuple[int, bytes]]) -> None:
        with StubServer(replies) as stub:
            fuzz.run({}, url=stub.url, example=repr(replies))

    fuzzvalues.for_each_example(book.seed, EXAMPLES, fuzzvalues.replies(), one)
    book.finish()


def test_a_huge_jobpars_does_not_stall_the_pilot(tmp_path: Path, sandbox: Sandbox,
                                                        ledger: MakeLedger) -> None:
    book = ledger("fuzz: real pilots, huge jobPars", INVARIANTS)
    fuzz = _campaign(tmp_path, sandbox, book)
    job = job_def(7, "-c true " + "a" * 1_500_000)
    # a bound on a hang: a linear split takes well under a second, shlex.split about a minute and a half
    fuzz.run({"pandaJobData.out": fuzzvalues.json_bytes({"7": job})}, example="jobPars of 1.5 MB", deadline=20)
    book.finish()
