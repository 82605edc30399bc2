"""How the pilot's end is logged: a normal end at info, a stop by signal as a warning, a fatal one as an error.

A fatal ending (an exit code a wrapper or Harvester reads as a failure) is
logged at error level with its code and what an operator can do about it,
so that the last line of a failed pilot's log is the one to act on.
"""

from __future__ import annotations

#: Exit codes that end a pilot normally: 0, and 82 (no jobs in PanDA).
NORMAL = frozenset({0, 82})

#: Exit code -> what to check or do.
ADVICE: dict[int, str] = {
    1: "an error without an exit code of its own: see the error above",
    64: "CVMFS does not answer: check the mounts the queue needs, or run with --nocvmfs where none is needed",
    65: "see the errors above in this log",
    66: "a directory could not be created: check that -a (the work dir) is writable and not full",
    67: "a file the pilot needs is missing: see the path in the error above",
    68: "the proxy or token is missing, unreadable or expired: renew it (X509_USER_PROXY, PANDA_AUTH_TOKEN)",
    69: "the work dir's disk is full: free space or point -a at a larger disk",
    70: "an unexpected error: keep pilot.log and the transition log and report it",
    71: "queuedata could not be fetched: check --url or --queuedata-url, or place queuedata.json in the launch dir",
    72: "queuedata is not valid for this queue: check the queue name (-q) and its queuedata",
    73: "the software directory is missing: check the queue's software area",
    74: "fetching JSON timed out: check the server's or CRIC's reachability",
    75: "jobs failed fast one after another: check the node (black hole) before it takes more jobs",
    76: "a module could not be imported: check the pilot's installation (python3 pilot3/pilot.py --help)",
    77: "an input file is missing on the storage element: see the job's error in PanDA",
    78: "the PanDA queue is not active: ask the queue's operators (CRIC state)",
    79: "the PanDA server could not be reached: check --url, the network and the server (curl its is_alive)",
    80: "the proxy is too short-lived for a job: renew it with a longer lifetime",
    81: "the pilot reached its time limit (-l / queuedata maxtime)",
    83: "the PanDA queue is not online: ask the queue's operators",
}


def level(code: int) -> str:
    """info for a normal end, warning for a stop by a signal (128 + N), error for anything else."""
    if code in NORMAL:
        return "info"
    return "warning" if code > 128 else "error"


def advice(code: int) -> str | None:
    """What to do about a fatal exit code, if it is one."""
    return ADVICE.get(code) if level(code) == "error" else None
