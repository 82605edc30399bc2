"""The pilot's shell exit code: a pure function of its terminal state and reason.

Wrappers and Harvester act on these numbers (Harvester converts them back to
PanDA error codes), so the table is Pilot 3's, row for row.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from fsm_pilot.errors import SIGNAL_ERRORS, PilotError

SUCCESS = 0
#: Any error without a row of its own (Pilot 3 does the same).
UNMAPPED = 1

#: PanDA error code -> (shell exit code, meaning).
EXIT_TABLE: dict[PilotError, tuple[int, str]] = {
    PilotError.CVMFSISNOTALIVE: (64, "CVMFS is not responding (site offline)"),
    PilotError.GENERALERROR: (65, "General pilot error, consult batch log"),
    PilotError.MKDIR: (66, "Could not create directory"),
    PilotError.NOSUCHFILE: (67, "No such file or directory"),
    PilotError.NOVOMSPROXY: (68, "Voms proxy not valid"),
    PilotError.NOPROXY: (68, "Proxy not valid"),
    PilotError.CERTIFICATEHASEXPIRED: (68, "Proxy not valid"),
    PilotError.NOLOCALSPACE: (69, "No space left on local disk"),
    PilotError.UNKNOWNEXCEPTION: (70, "Exception caught by pilot"),
    PilotError.QUEUEDATA: (71, "Pilot could not download queuedata"),
    PilotError.QUEUEDATANOTOK: (72, "Pilot found non-valid queuedata"),
    PilotError.NOSOFTWAREDIR: (73, "Software directory does not exist"),
    PilotError.JSONRETRIEVALTIMEOUT: (74, "JSON retrieval timed out"),
    PilotError.BLACKHOLE: (75, "Black hole detected (jobs failing fast in a row)"),
    PilotError.MIDDLEWAREIMPORTFAILURE: (76, "Failed to import middleware module"),
    PilotError.MISSINGINPUTFILE: (77, "Missing input file in SE"),
    PilotError.PANDAQUEUENOTACTIVE: (78, "PanDA queue is not active"),
    PilotError.COMMUNICATIONFAILURE: (79, "PanDA server communication failure"),
    PilotError.PROXYTOOSHORT: (80, "Proxy too short"),
    PilotError.REACHEDMAXTIME: (81, "Reached maximum time limit"),
    PilotError.NOJOBSINPANDA: (82, "No jobs in PanDA"),
    PilotError.PANDAQUEUENOTONLINE: (83, "PanDA queue is not online"),
}

#: Terminal states of the machine (see fsm_pilot.machine).
EXIT, FAILED, ABORTED = "EXIT", "FAILED", "ABORTED"


@dataclass(frozen=True)
class Reason:
    """Why a trigger was returned: text for people, codes for machines."""

    text: str
    error: PilotError | None = None
    signal: int | None = None

    def as_record(self) -> dict[str, object]:
        """The reason as it appears in the transition log."""
        return {
            "text": self.text,
            "error": int(self.error) if self.error is not None else None,
            "error_name": self.error.name if self.error is not None else None,
            "signal": self.signal,
        }


def exit_code(terminal_state: str, reason: Reason) -> int:
    """The shell exit code of a pilot that ended in ``terminal_state``.

    ABORTED is 128 + the signal number (what a shell reports for a process
    killed by that signal); EXIT and FAILED look the error up in Pilot 3's
    table. A clean EXIT is 0; a FAILED pilot without an error code is 1.
    """
    if terminal_state == ABORTED:
        return 128 + (reason.signal if reason.signal is not None else signal.SIGKILL)
    if terminal_state not in (EXIT, FAILED):
        raise ValueError(f"not a terminal state: {terminal_state!r}")
    if reason.error is None:
        return SUCCESS if terminal_state == EXIT else UNMAPPED
    row = EXIT_TABLE.get(reason.error)
    return row[0] if row is not None else UNMAPPED


def exit_code_markdown() -> str:
    """The exit-code table as Markdown, for ``fsm-pilot exit-codes`` and the README."""
    lines = [
        "| exit code | when | PanDA error |",
        "|---:|---|---|",
        "| 0 | the pilot ended normally (a failed job alone does not fail the pilot) | |",
    ]
    for error, (code, meaning) in sorted(EXIT_TABLE.items(), key=lambda kv: (kv[1][0], kv[0])):
        lines.append(f"| {code} | {meaning} | {error.name} ({int(error)}) |")
    for name, error in sorted(SIGNAL_ERRORS.items(), key=lambda kv: int(getattr(signal, kv[0]))):
        num = int(getattr(signal, name))
        lines.append(f"| {128 + num} | stopped by {name} (128 + {num}) | {error.name} ({int(error)}) |")
    lines.append("| 1 | any other pilot failure (an error code without a row above) | |")
    return "\n".join(lines) + "\n"
