"""The operator page's section on the clock, the time budget, drain and the flight record.

Generated from the constants and option defaults the code uses, so the numbers
on the page are the ones the pilot applies.
"""

from __future__ import annotations

from fsm_pilot.batchclock import CONDOR_LIMITS, SQUEUE_TIMEOUT
from fsm_pilot.config import OPTIONS
from fsm_pilot.drain import DRAIN_FILE
from fsm_pilot.finish import FINAL_UPDATE_SECONDS, STOPPING_COPY_SECONDS
from fsm_pilot.flightrecord import SERVER_LIMIT, TRANSITIONS


def _default(name: str) -> float:
    return next(o.default for o in OPTIONS if o.name == name)


def budget_markdown() -> str:
    """The rules, with the numbers."""
    margin, rate, grace = _default("lifetime_margin"), _default("stageout_rate"), _default("kill_grace")
    condor = ", ".join(f"`{name}`" for name, _ in CONDOR_LIMITS)
    after = STOPPING_COPY_SECONDS + FINAL_UPDATE_SECONDS
    rows = [
        ("GETJOB", "no new job unless `L` > `--lifetime-margin` (`pilot_lifetime` guard)", f"{margin:g} s"),
        ("RUNNING", "the payload is stopped (kill grace, then SIGKILL) and the job failed REACHEDMAXTIME (1213) "
         "when `L` reaches the reserve: `--lifetime-margin` (as Pilot 3, not before the margin has passed) + the "
         "bytes of the outputs present / `--stageout-rate` (re-measured at each outputs check: a payload that "
         "could no longer store what it wrote is stopped at once)",
         f"{margin:g} s + size / {rate / 1e6:g} MB/s; kill grace {grace:g} s"),
        ("STAGEOUT", f"an output is copied only if `L` covers its size / `--stageout-rate` + the log "
         f"({STOPPING_COPY_SECONDS:g} s) + the final update ({FINAL_UPDATE_SECONDS:g} s); else the job fails "
         f"REACHEDMAXTIME saying how many outputs are stored; a copy in flight is cut {after:g} s before the end, "
         f"the log's {FINAL_UPDATE_SECONDS:g} s before", f"{after:g} s + size / {rate / 1e6:g} MB/s"),
        ("after a stop signal", f"the log gets {STOPPING_COPY_SECONDS:g} s, the final update "
         f"{FINAL_UPDATE_SECONDS:g} s, then it waits on disk for the next pilot", "within Slurm's KillWait (30 s)"),
    ]
    table = "\n".join(["| state | rule | numbers (defaults) |", "|---|---|---|",
                       *(f"| {a} | {b} | {c} |" for a, b, c in rows)])
    return f"""**The clock.** Read once when the queuedata is loaded (and again on SIGUSR1), never per tick.
First found: Slurm's `SLURM_JOB_END_TIME` (Slurm 23.02+; 22.05 does not set it), else
`squeue -h -j $SLURM_JOB_ID -o %L` ({SQUEUE_TIMEOUT:g} s timeout); HTCondor's job ad (`$_CONDOR_JOB_AD`:
{condor}, from `JobCurrentStartDate`); PBS's `PBS_WALLTIME`; an explicit lifetime (queuedata `maxtime`, `-l`)
wins when it ends earlier. Without any, the default lifetime ({_default("lifetime"):g} s) is used and the clock
counts as unknown. The source is in the QUEUEDATA transition's reason and the `clock` line of pilot.log; the
`pilot_lifetime` guard and the payload's deadline use this clock.

**The time budget, by state.** With `L` seconds left of the slot:

{table}

**Drain.** A file `{DRAIN_FILE}` in the launch dir (DIRAC's agents stop on a file of that name), or the path given by
`--drain-file` / `FSM_PILOT_DRAIN_FILE`, checked (one stat) before each getJob and when a job ends: the pilot
finishes and reports the job in hand, takes no more, and exits 0; its last transition is `drain` with the
reason `drained: drain file <path>`. SIGUSR1 (Slurm's `--signal=B:USR1@N`) is a warning when the clock is known:
no new job; a running payload goes on until the reserve above is reached; outside a job the pilot exits 0 at the
next step boundary (`drained: SIGUSR1`); the clock is read again. With no known clock SIGUSR1 stops the pilot as
any other signal (job error SIGUSR1 1207, exit 138), as Pilot 3 does. The other signals are unchanged.

**Flight record.** A failed job's final update, and any job's when the pilot was stopped by a signal, carries in
`pilotLog` the last {TRANSITIONS} transitions (UTC time, state -trigger-> state, seconds spent in the state left,
reason, error) and then the tail of pilot.log (warnings and errors first), within {SERVER_LIMIT} bytes: what
panda-server keeps (`pandalog.message`, varchar({SERVER_LIMIT}), clipped on insert); the transitions take at most
half.
"""
