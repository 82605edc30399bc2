"""What the server's reply to a job's final update means: taken, worth sending again, or refused for good.

StatusCode 0 alone does not mean the report was taken. panda-server answers
a report it cannot apply (a job it does not hold for this pilot, another
attemptNr) with the command ``tobekilled`` (older servers: ``badattemptnr``),
and a report after the final one with ``alreadydone``. But ``tobekilled`` is
also a pending operator command, sent back with an accepted report, so before
calling the report refused the pilot asks the server for the job's state: a
job in a final state there has its report. A refused report is logged at
error level with the server's answer and never as sent; it is not sent again
(the server would refuse the same report), and the refusal is kept with the
job. An error StatusCode is a refusal worth retrying: the job stays in the
outbox. ``alreadydone`` means the server has a final report: nothing to send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fsm_pilot.context import Context, JobRun
from fsm_pilot.errors import PilotFailure
from fsm_pilot.server import deadline

if TYPE_CHECKING:
    from fsm_pilot.panda import UpdateResult

#: Answers that say the server did not apply the report it was sent.
NOT_APPLIED = ("tobekilled", "badattemptnr")
ALREADY_DONE = "alreadydone"
#: Server-side states that hold a final report (panda-server parks finished jobs as holding/transferring).
SETTLED = frozenset({"finished", "failed", "holding", "transferring", "merging", "cancelled", "closed"})


def judge(ctx: Context, run: JobRun, result: UpdateResult, within: float | None, seconds: float) -> bool:
    """True when the final report is taken; a refusal is logged loudly and marked on ``run``."""
    common = {"panda_id": run.panda_id, "state": run.state, "attempt_nr": run.identity.attempt_nr,
              "status": result.status, "answer": ",".join(result.commands) or result.message, "seconds": seconds}
    if not result.ok:
        ctx.log.warning("final update refused", **common, message=result.message,
                        outcome="kept in the outbox, to be sent again")
        return False
    if ALREADY_DONE in result.commands:
        run.stop_reporting = True
        ctx.log.warning("final update refused", **common,
                        outcome="the server already has this job's final report: nothing more to send")
        return False
    refusal = next((command for command in result.commands if command in NOT_APPLIED), None)
    if refusal is None:
        ctx.log.info("update sent", **common, ok=True)
        return True
    return _confirm(ctx, run, refusal, within, common)


def _confirm(ctx: Context, run: JobRun, refusal: str, within: float | None, common: dict[str, object]) -> bool:
    """Ask the server whether the job has its final state: a pending kill, or a refused report."""
    from fsm_pilot.panda import Interrupted

    try:
        there = ctx.client.get_status([run.panda_id], deadline=deadline(ctx, within)).get(run.panda_id)
    except (PilotFailure, Interrupted) as exc:
        ctx.log.warning("final update answered with a refusal, unconfirmed", **common, error=repr(exc),
                        outcome="kept in the outbox, to be sent again")
        return False
    if there in SETTLED:
        ctx.log.info("update sent", **common, ok=True, server_state=there)
        return True
    run.refused = refusal
    run.stop_reporting = True
    ctx.log.error("final update refused", **common, server_state=there,
                  outcome="given up: the server refuses this report (the job's attemptNr or PandaID is not "
                          "what it holds); sending it again cannot help")
    return False
