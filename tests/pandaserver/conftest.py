"""Fixtures of the cases against a real panda-server: the stack the driver started, one dir per case.

A failed case leaves its artifacts under $FSM_PANDASERVER_ARTIFACTS/<case>: every request and reply
exchanged with the server while it ran (exchanges.jsonl, written by the server's WSGI middleware), the pilots'
dirs (pilot.log, transitions.jsonl, final updates) and their console output.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pandaserver.cases import Case
from tests.pandaserver.stack import Stack
from tests.pilotrun import stop_leftovers

FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember on the item whether any phase failed (the case fixture keeps artifacts then)."""
    report = yield
    if report.failed:  # type: ignore[attr-defined]
        item.stash[FAILED] = True
    return report


@pytest.fixture(scope="session")
def stack() -> Stack:
    where = os.environ.get("FSM_PANDASERVER_STACK")
    if not where:
        pytest.skip("needs a running panda-server: run `make panda-server-test` (python -m tests.pandaserver)")
    return Stack.load(Path(where))


@pytest.fixture
def case(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Case]:
    name = request.node.name.replace("/", "_")
    directory = stack.scratch / "cases" / name
    directory.mkdir(parents=True)
    record = stack.server.record
    current = Case(stack, directory, f"fsmci-{secrets.token_hex(6)}",
                   record_start=record.stat().st_size if record.exists() else 0)
    current.cancel_pending()  # what an earlier failed case may have left queued
    yield current
    stop_leftovers()  # the case's pilots end (and write their last words) before anything is kept
    current.cleanup()
    if request.node.stash.get(FAILED, False):
        keep(current, Path(os.environ.get("FSM_PANDASERVER_ARTIFACTS", stack.scratch / "artifacts")) / name)
    shutil.rmtree(directory, ignore_errors=True)


def keep(case: Case, target: Path) -> None:
    """The case's exchange with the server and its pilots' dirs, for the CI log to point at."""
    target.mkdir(parents=True, exist_ok=True)
    with (target / "exchanges.jsonl").open("w") as out:
        for entry in case.exchanges():
            out.write(json.dumps(entry) + "\n")
    for launch in case.pilots:
        if launch.exists():
            shutil.copytree(launch, target / launch.name, dirs_exist_ok=True, symlinks=True,
                            ignore_dangling_symlinks=True)
