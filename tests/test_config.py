"""Settings resolve in one order: CLI > environment > queuedata > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsm_pilot.config import precedence_markdown, resolve
from fsm_pilot.docs import render
from fsm_pilot.errors import PilotError, PilotFailure


def test_each_layer_wins_over_the_ones_below() -> None:
    qd = {"maxtime": 3600, "timefloor": 5}
    env = {"FSM_PILOT_LIFETIME": "1800", "FSM_PILOT_KILL_GRACE": "3"}
    got = resolve({"lifetime": 900.0}, env, qd)
    assert (got["lifetime"].value, got["lifetime"].source) == (900.0, "cli")
    got = resolve({}, env, qd)
    assert (got["lifetime"].value, got["lifetime"].source) == (1800.0, "env")
    got = resolve({}, {}, qd)
    assert (got["lifetime"].value, got["lifetime"].source) == (3600.0, "queuedata")
    assert (got["timefloor"].value, got["timefloor"].source) == (300.0, "queuedata")  # minutes -> s
    got = resolve({}, {}, {})
    assert (got["lifetime"].value, got["lifetime"].source) == (324000.0, "default")
    assert (got["kill_grace"].value, got["signal_grace"].value) == (10.0, 0.5)


def test_queuedata_zero_maxtime_means_not_set() -> None:
    assert resolve({}, {}, {"maxtime": 0})["lifetime"].source == "default"


def test_bad_values_are_coded_failures() -> None:
    with pytest.raises(PilotFailure) as env_error:
        resolve({}, {"FSM_PILOT_KILL_GRACE": "soon"}, {})
    assert env_error.value.error == PilotError.GENERALERROR
    with pytest.raises(PilotFailure) as qd_error:
        resolve({}, {}, {"maxtime": "a lot"})
    assert qd_error.value.error == PilotError.QUEUEDATANOTOK


def test_readme_generated_sections_match_the_code() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert precedence_markdown() in readme
    assert render(readme) == readme, "README is stale: run `python -m fsm_pilot.docs` and commit it"


def test_docs_tables_cover_every_state_and_guard() -> None:
    from fsm_pilot.docs import guards_markdown, states_markdown
    from fsm_pilot.guards import GUARDS
    from fsm_pilot.machine import STATES

    states, guards = states_markdown(), guards_markdown()
    assert all(f"| {s.name} |" in states for s in STATES)
    assert all(f"| `{g}` |" in guards for g in GUARDS)
