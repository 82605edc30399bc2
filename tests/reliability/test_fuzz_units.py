"""Fuzzing the pilot's parsers in-process: anything hostile ends in PilotFailure, nothing else.

The cheap half of the fuzzer: thousands of examples a second, no subprocess. Each
property feeds one parser what a server, Harvester or CRIC could send and accepts
only a PilotFailure with a PanDA error code (which the pilot turns into a coded
failure) or a result; any other exception would reach the pilot's last line of
defence as UNKNOWNEXCEPTION with a traceback in its log.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from fsm_pilot.command import check_transformation, split_job_pars
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.job import parse_job
from fsm_pilot.jobfile import read_job_records
from fsm_pilot.panda.replies import parse_reply
from fsm_pilot.queuedata import load_json, queuedata_of, storagedata_of
from tests.reliability import fuzzvalues
from tests.reliability.conftest import MakeLedger
from tests.reliability.ledger import Ledger
from tests.reliability.scale import size

INVARIANTS = ("only_pilot_failure",)
EXAMPLES = size(150, 1000)


def _fuzz(book: Ledger, strategy: st.SearchStrategy[Any], prop: Callable[[Any], object]) -> None:
    """Run ``prop`` on EXAMPLES drawn values; anything but PilotFailure is a violation."""
    def each(value: Any) -> None:
        book.run()
        try:
            prop(value)
        except PilotFailure as exc:
            book.check("only_pilot_failure", isinstance(exc.error, PilotError), f"uncoded failure {exc!r}")
            return
        except Exception as exc:  # the point: any other exception is the violation
            book.check("only_pilot_failure", False, f"{type(exc).__name__}: {str(exc)[:200]} on {repr(value)[:200]}")
            return
        book.check("only_pilot_failure", True)

    fuzzvalues.for_each_example(book.seed, EXAMPLES, strategy, each)
    book.facts["examples"] = book.runs
    book.finish()


def _validate(fields: Any) -> None:
    """What VALIDATE does with a definition (less the job dir and the core count)."""
    job = parse_job(fields)
    split_job_pars(job.job_pars)
    check_transformation(job.transformation, {f.lfn for f in job.inputs}, [], os.defpath)


def test_parse_job_raises_nothing_but_pilot_failure(ledger: MakeLedger) -> None:
    _fuzz(ledger("fuzz: parse_job", INVARIANTS), fuzzvalues.job_definitions(), parse_job)


def test_validation_raises_nothing_but_pilot_failure(ledger: MakeLedger) -> None:
    transformations = fuzzvalues.job_definitions().flatmap(
        lambda job: st.sampled_from([*fuzzvalues.HOSTILE_NAMES, "a" * 5000, "/" + "d/" * 3000, "x" * 256])
        .map(lambda name: {**job, "transformation": name}))
    _fuzz(ledger("fuzz: validation", INVARIANTS), st.one_of(fuzzvalues.job_definitions(), transformations),
          _validate)


def _queuedata_file(tmp: Path) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        path = tmp / "queuedata.json"
        path.write_bytes(value if isinstance(value, bytes) else fuzzvalues.json_bytes(value))
        data = load_json(str(path), "queuedata")
        queuedata_of(data, "TEST_QUEUE")
        storagedata_of(data)
    return check


def test_queuedata_loading_raises_nothing_but_pilot_failure(tmp_path: Path, ledger: MakeLedger) -> None:
    documents = st.one_of(fuzzvalues.queuedata_documents(), fuzzvalues.raw_documents())
    _fuzz(ledger("fuzz: queuedata", INVARIANTS), documents, _queuedata_file(tmp_path))


def test_job_file_reading_raises_nothing_but_pilot_failure(tmp_path: Path, ledger: MakeLedger) -> None:
    def check(value: Any) -> None:
        path = tmp_path / "pandaJobData.out"
        path.write_bytes(value if isinstance(value, bytes) else fuzzvalues.json_bytes(value))
        read_job_records(path)

    documents = st.one_of(fuzzvalues.job_definitions().map(lambda j: {str(j.get("PandaID")): j}),
                          fuzzvalues.job_definitions(), fuzzvalues.raw_documents())
    _fuzz(ledger("fuzz: job file", INVARIANTS), documents, check)


def test_server_reply_parsing_raises_nothing_but_pilot_failure(ledger: MakeLedger) -> None:
    _fuzz(ledger("fuzz: server replies", INVARIANTS), fuzzvalues.getjob_replies(), parse_reply)
