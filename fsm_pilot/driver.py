"""The driver loop: run the current state's step, fire the trigger it returns, repeat.

It is the only caller of triggers, and it fires the next one only after the
current transition has completed, so transitions never nest and the
transition log is in order, each record written before its step's work
starts. Signals are acted on here, between steps (the safe points); a step
that blocks wakes up on the signal pipe and returns ``abort`` itself.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from fsm_pilot import endings, machine
from fsm_pilot.context import Context, Outcome
from fsm_pilot.errors import PilotError
from fsm_pilot.exitcodes import Reason, exit_code
from fsm_pilot.failpoints import failpoint
from fsm_pilot.guards import GUARDS, Thresholds
from fsm_pilot.jobstate import persist
from fsm_pilot.signals import name_of


class Pilot:
    """The model ``transitions`` drives: it holds the state and evaluates guards."""

    state: str
    trigger: Callable[[str], bool]

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def condition(self, name: str) -> Callable[[], bool]:
        """A condition callable for guard ``name``: decides from ``ctx.facts``, records evidence."""
        guard = GUARDS[name]

        def check() -> bool:
            if self.ctx.facts is None:
                raise RuntimeError(f"guard {name} evaluated before any facts were measured")
            decision = guard(self.ctx.facts, self.ctx.thresholds or Thresholds())
            self.ctx.decisions.append(decision)
            return decision.allowed

        return check


def _refusal(ctx: Context, reason: Reason) -> Reason:
    """A guard that refused decides the reason of a fallback edge (and so the exit code)."""
    refused = next((d for d in ctx.decisions if not d.allowed), None)
    if refused is None:
        return reason
    return Reason(f"{refused.guard} refused: {dict(refused.inputs)} vs {refused.threshold}", refused.error)


def run_step(ctx: Context, state: str) -> Outcome:
    """Run ``state``'s step; an exception becomes ``fail`` with UNKNOWNEXCEPTION, never a traceback."""
    spec = next(s for s in machine.STATES if s.name == state)
    step = machine.resolve_step(spec.step or "")
    if step is None:
        return "fail", Reason(f"state {state} has no step", PilotError.INTERNALPILOTPROBLEM)
    try:
        outcome: Outcome = step(ctx)
    except Exception as exc:  # the pilot must end in a terminal state, whatever happened
        ctx.log.error("step raised", state=state, error=repr(exc), traceback=traceback.format_exc())
        return "fail", Reason(f"exception in {state}: {exc!r}"[:500], PilotError.UNKNOWNEXCEPTION)
    return outcome


def _signal_outcome(ctx: Context) -> Outcome | None:
    signum = ctx.signals.take_new()
    if signum is None:
        return None
    first = ctx.signals.first
    also = "" if first is None or first == signum else f" (after {name_of(first)}, which decides the exit code)"
    return "abort", Reason(f"received {name_of(signum)}{also}", signal=first)


#: Outcomes a drain does not replace: a job just taken is held (and run), a failure keeps its code.
_KEPT_BY_DRAIN = frozenset({"got_job", "fail"})


def _drain_outcome(ctx: Context, state: str, outcome: Outcome | None) -> Outcome | None:
    """``drain`` where the pilot holds no job: before a setup step, or after one, or when a job is done.

    Before a step (``outcome`` None) only setup states drain; STAGEOUT drains once its
    step reported the job (``job_done``). The drain file is looked at before getJob
    and when a job is done: one stat each.
    """
    from fsm_pilot import drain

    on_warning = drain.on_warning(ctx)
    if state not in machine.DRAINABLE or (state == "STAGEOUT" and (outcome is None or outcome[0] != "job_done")):
        return None
    if outcome is not None and outcome[0] in _KEPT_BY_DRAIN:
        return None
    if ctx.drain is None and not on_warning and state in ("GETJOB", "STAGEOUT"):
        drain.check_file(ctx)
    return ("drain", Reason(f"drained: {ctx.drain}")) if ctx.drain is not None else None


def fire(ctx: Context, pilot: Pilot, outcome: Outcome) -> Reason:
    """Fire one trigger, log the attempt with its guard evidence; return the effective reason."""
    trigger, reason = outcome
    source = pilot.state
    ctx.decisions.clear()
    error = None
    try:
        ok = pilot.trigger(trigger)
    except Exception as exc:  # an undeclared trigger: a bug, recorded and turned into a failure
        ok, error = False, repr(exc)
    if ok:
        reason = _refusal(ctx, reason)
        ctx.state = pilot.state
        _persist(ctx)
    job_id = ctx.job.panda_id if ctx.job is not None else None
    ctx.translog.append(
        event=trigger, source=source, dest=pilot.state if ok else None, job_id=job_id,
        guards=[d.as_record() for d in ctx.decisions], reason=reason.as_record(), ok=ok, error=error)
    ctx.log.info("transition", trigger=trigger, source=source, dest=pilot.state, ok=ok,
                 reason=reason.text, error_code=int(reason.error) if reason.error else None)
    if not ok:
        return fire(ctx, pilot, ("fail", Reason(f"trigger {trigger} refused in {source}: {error}",
                                                PilotError.INTERNALPILOTPROBLEM)))
    return reason


def _persist(ctx: Context) -> None:
    """Save the held job's state; a full disk must not stop the machine (the job fails later, coded)."""
    try:
        persist(ctx)
    except OSError as exc:
        ctx.log.warning("job state not saved", error=repr(exc))


def _finish(ctx: Context) -> None:
    """After the terminal state: flush, tell Harvester the worker is done (server and files), close."""
    from fsm_pilot.outbox import ATTEMPT_SECONDS, flush
    from fsm_pilot.server import worker_status

    # told to stop: gone within a second; what is not delivered now waits on disk for the next pilot
    stopped = ctx.signals.first is not None
    flush(ctx, final=True, within=0.3 if stopped else ATTEMPT_SECONDS)
    worker_status(ctx, "finished", within=0.3 if stopped else 10.0)
    if ctx.client is not None:
        ctx.client.close()
    from fsm_pilot.harvester.worker import finished

    finished(ctx)  # kill_worker last: Harvester may end the worker as soon as it sees it


def run(ctx: Context) -> int:
    """Drive the machine from INIT to a terminal state; return the shell exit code."""
    pilot = Pilot(ctx)
    machine.build(pilot, pilot.condition)
    terminals = machine.terminal_states()
    reason = Reason("started")
    stopping = False
    while pilot.state not in terminals:
        # Once the pilot is stopping, a further signal (a batch system's group SIGTERM plus the wrapper's
        # forwarded one) must not skip ABORTING's step: that step is what reports the held job.
        state = pilot.state
        outcome = (None if stopping else _signal_outcome(ctx) or _drain_outcome(ctx, state, None)) \
            or run_step(ctx, state)
        # a signal that arrived during the step wins over what the step returned; then a drain
        outcome = (None if stopping else _signal_outcome(ctx) or _drain_outcome(ctx, state, outcome)) or outcome
        stopping = stopping or outcome[0] == "abort"
        reason = fire(ctx, pilot, outcome)
        ctx.arrived_by = (outcome[0], reason)
        failpoint(f"entered_{pilot.state}")
    ctx.translog.close()
    _finish(ctx)
    code = exit_code(pilot.state, reason)
    log = getattr(ctx.log, endings.level(code))
    log("pilot finished", state=pilot.state, reason=reason.text, exit_code=code, advice=endings.advice(code))
    return code
