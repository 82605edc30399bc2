"""Fixtures shared by several test modules."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from fsm_pilot.logsetup import LOGGER_NAME
from tests.pilotrun import stop_leftovers
from tests.pilotserver import Dispatcher
from tests.storage_helpers import Storage, load
from tests.xrootd_se import StorageElement

#: The cases against a real panda-server (tests/pandaserver) need the server that `make panda-server-test`
#: (python -m tests.pandaserver) starts and names in FSM_PANDASERVER_STACK; `make test` does not collect them.
collect_ignore = [] if os.environ.get("FSM_PANDASERVER_STACK") else ["pandaserver"]


@pytest.fixture(autouse=True)
def _no_leftover_pilots() -> Iterator[None]:
    """Stop any pilot a test started and did not finish (a failing test must not leave one running)."""
    yield
    stop_leftovers()


@pytest.fixture(autouse=True)
def _pilot_logger_restored() -> Iterator[None]:
    """Undo an in-process logsetup.configure(): it stops fsm_pilot records reaching the root logger, where
    caplog listens under pytest 8 (the newest release on 3.9; pytest 9 also hooks non-propagating loggers)."""
    base = logging.getLogger(LOGGER_NAME)
    propagate, level, handlers = base.propagate, base.level, list(base.handlers)
    yield
    base.propagate = propagate
    base.setLevel(level)
    base.handlers[:] = handlers


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    """Queuedata and CRIC endpoints from the fixtures, the storage path moved into tmp_path."""
    queuedata = load("queuedata_TEST_QUEUE.json")
    ddm = load("cric_ddmendpoints.json")
    se = tmp_path / "se"
    for protocols in ddm["LOCAL_DISK"]["arprotocols"].values():
        protocols[0]["path"] = str(se)
    return queuedata, ddm, se


@pytest.fixture
def launch(tmp_path: Path) -> Path:
    """An empty launch dir (the cleanup tests)."""
    path = tmp_path.resolve() / "launch"
    path.mkdir()
    return path


@pytest.fixture
def now() -> float:
    """The time the cleanup tests hand to cleanup()."""
    return time.time()


@pytest.fixture
def dispatcher(tmp_path: Path) -> Iterator[Dispatcher]:
    """The embedded dispatcher as a real process on 127.0.0.1, stopped at teardown."""
    server = Dispatcher(tmp_path / "dispatcher").start()
    yield server
    server.stop()


@pytest.fixture
def cleanup() -> Iterator[list[psutil.Process]]:
    """Processes to SIGKILL at teardown if a failing test left them alive."""
    from tests.pilotrun import all_gone

    procs: list[psutil.Process] = []
    yield procs
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and not all_gone([proc.pid]):
                proc.kill()


@pytest.fixture
def storage_element() -> Iterator[StorageElement]:
    """A real XRootD storage element on 127.0.0.1 (root://, davs://, ...), stopped by PID at teardown."""
    from tests import xrootd_se

    why = xrootd_se.missing()
    if why is not None:
        pytest.skip(why)
    se = xrootd_se.start(xrootd_se.traversable_base())
    yield se
    se.stop()
    shutil.rmtree(se.root, ignore_errors=True)
