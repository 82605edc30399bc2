"""Shared pieces of the storage tests: fixtures copied from the reference, storage in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from fsm_pilot.errors import PilotError, PilotFailure

FIXTURES = Path(__file__).parent / "fixtures"
Storage = tuple[dict[str, Any], dict[str, Any], Path]


def load(name: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((FIXTURES / name).read_text()))


def pilot3_report() -> dict[str, dict[str, Any]]:
    """The per-file report Pilot 3 sent in its final update (the ``xml`` field)."""
    return cast(dict[str, dict[str, Any]], json.loads(load("pilot3_final_update_finished.json")["xml"]))


def code(excinfo: pytest.ExceptionInfo[PilotFailure]) -> PilotError:
    return excinfo.value.error


