"""Stage-in: fetch a job's input files from storage into its work dir, verified.

``stage_in`` is what the STAGEIN step calls; the copytool interface, its
registry and the replica resolution are exposed for tests and other callers.

Its names are imported on first use: a pilot whose job has no inputs, and stage-out's use of
fsm_pilot.stagein.failures, never load the copytools and their machinery (time and memory).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fsm_pilot.stagein.copytools import COPYTOOLS, Copytool, Transfer, check_scheme, get_copytool
    from fsm_pilot.stagein.resolve import Replica, copytool_names, resolve_inputs, resolve_replica
    from fsm_pilot.stagein.stagein import LOG_NAME, Interrupted, StagedInput, StageInReport, stage_in, stagein_timeout

_WHERE = {
    "COPYTOOLS": "fsm_pilot.stagein.copytools",
    "Copytool": "fsm_pilot.stagein.copytools",
    "Transfer": "fsm_pilot.stagein.copytools",
    "check_scheme": "fsm_pilot.stagein.copytools",
    "get_copytool": "fsm_pilot.stagein.copytools",
    "Replica": "fsm_pilot.stagein.resolve",
    "copytool_names": "fsm_pilot.stagein.resolve",
    "resolve_inputs": "fsm_pilot.stagein.resolve",
    "resolve_replica": "fsm_pilot.stagein.resolve",
    "Interrupted": "fsm_pilot.stagein.stagein",
    "LOG_NAME": "fsm_pilot.stagein.stagein",
    "StageInReport": "fsm_pilot.stagein.stagein",
    "StagedInput": "fsm_pilot.stagein.stagein",
    "stage_in": "fsm_pilot.stagein.stagein",
    "stagein_timeout": "fsm_pilot.stagein.stagein",
}

__all__ = [
    "COPYTOOLS",
    "LOG_NAME",
    "Copytool",
    "Interrupted",
    "Replica",
    "StageInReport",
    "StagedInput",
    "Transfer",
    "check_scheme",
    "copytool_names",
    "get_copytool",
    "resolve_inputs",
    "resolve_replica",
    "stage_in",
    "stagein_timeout",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use (PEP 562)."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
