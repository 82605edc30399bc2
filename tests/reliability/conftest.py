"""Fixtures of the reliability campaign: a sandbox per test, a seed per test, ledgers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.ledger import Ledger
from tests.reliability.sandbox import Sandbox, pidns_problem
from tests.reliability.scale import SCALE, new_seed

#: Why the sandboxes ran without a PID namespace (said once, at the end of the run).
_NOTED: list[str] = []

MakeLedger = Callable[[str, tuple[str, ...]], Ledger]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_pidns: the test provokes kill-scope bugs; it runs only in a "
                                       "private PID namespace (root and unshare)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("needs_pidns")]
    problem = pidns_problem() if marked else None
    if problem:
        skip = pytest.mark.skip(reason=f"needs a private PID namespace (root + unshare), not here: {problem}")
        for item in marked:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _NOTED:
        terminalreporter.write_line(f"reliability: no private PID namespace ({_NOTED[0]}): pilots ran without one")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """The test's processes, in a private PID namespace where this machine allows one."""
    problem = pidns_problem()
    if problem and not _NOTED:
        _NOTED.append(problem)
    box = Sandbox(tmp_path / "box", namespaced=problem is None)
    yield box
    box.close()


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """This test's seed (FSM_RELIABILITY_SEED replays one), shown in the report and assertion messages."""
    value = new_seed()
    request.node.user_properties.append(("seed", value))
    print(f"{request.node.nodeid}: seed {value} (scale {SCALE})")
    return value


@pytest.fixture
def ledger(request: pytest.FixtureRequest, seed: int) -> Iterator[MakeLedger]:
    """Make the test's ledgers; one the test did not finish (it crashed) is still written, as incomplete."""
    made: list[Ledger] = []

    def make(klass: str, invariants: tuple[str, ...]) -> Ledger:
        book = Ledger(klass, request.node.nodeid, seed, invariants)
        made.append(book)
        return book

    yield make
    for book in made:
        book.write(complete=False)
