"""Pilots drain jobs from the dispatcher through a proxy that breaks 31 % of the requests.

The proxy (``chaosproxy``) resets connections before or after the dispatcher saw the
request, answers 200 with an empty or garbage body, cuts bodies short, answers 502/503
and delays. Invariants: no job ran twice, every job reached a final state on the
dispatcher, and every pilot kept the pilot invariants (``invariants``).
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.reliability.chaosproxy import ChaosProxy
from tests.reliability.cluster import can_requeue, start_dispatcher
from tests.reliability.conftest import MakeLedger
from tests.reliability.invariants import PILOT_INVARIANTS
from tests.reliability.sandbox import Sandbox
from tests.reliability.scale import seconds, size
from tests.reliability.waves import JOB_INVARIANTS, Fleet, marker_job

INVARIANTS = (*JOB_INVARIANTS, "dispatcher_clean", *PILOT_INVARIANTS)
JOBS = size(20, 320)
PILOTS = size(3, 8)
DEADLINE = seconds(120, 1800)
SENT_TIMEOUT = 2.0
#: Each pilot takes jobs until the server has none; calls are retried within 30 s.
PILOT_ARGS = ("--timefloor", "3600", "-v", "2", "--getjob-wait", "0.5", "--update-timeout", "30")


def test_pilots_drain_jobs_through_a_chaos_proxy(tmp_path: Path, sandbox: Sandbox, seed: int,
                                                 ledger: MakeLedger) -> None:
    book = ledger("chaos proxy", INVARIANTS)
    server = start_dispatcher(sandbox, tmp_path / "dispatcher", sent_timeout=SENT_TIMEOUT)
    markers = tmp_path / "markers"
    markers.mkdir()
    ids = server.submit(*[marker_job(markers) for _ in range(JOBS)])
    proxy = ChaosProxy(("127.0.0.1", server.port), seed).start()
    fleet = Fleet(sandbox, server, tmp_path / "nodes", book, size=PILOTS, url=proxy.url, args=PILOT_ARGS,
                  sent_timeout=SENT_TIMEOUT)
    try:
        fleet.drain(time.monotonic() + DEADLINE)
    finally:
        proxy.stop()
    book.facts.update(jobs=JOBS, pilots_per_wave=PILOTS, waves=fleet.waves, requests=proxy.requests,
                      faults=dict(proxy.faults), dispatcher_requeues=can_requeue())
    fleet.check_jobs(ids, markers)
    server.stop()
    book.check("dispatcher_clean", "Traceback" not in server.stderr_text(), server.stderr_text()[-1500:])
    book.finish()
