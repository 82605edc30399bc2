"""Stage-in: fetch a job's input files from storage into its work dir, verified.

``stage_in`` is what the STAGEIN step calls; the copytool interface, its
registry and the replica resolution are exposed for tests and other callers.
"""

from fsm_pilot.stagein.copytools import COPYTOOLS, Copytool, Transfer, check_scheme, get_copytool
from fsm_pilot.stagein.resolve import Replica, copytool_names, resolve_inputs, resolve_replica
from fsm_pilot.stagein.stagein import (
    LOG_NAME,
    Interrupted,
    StagedInput,
    StageInReport,
    stage_in,
    stagein_timeout,
)

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
