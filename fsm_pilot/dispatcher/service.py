"""What both dialects share: the store plus the queues and storage endpoints it serves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fsm_pilot.dispatcher import jobspec, jobwire
from fsm_pilot.dispatcher.store import Builder, Store

#: Most jobs one request may submit (panda-server drops the rest) or take.
MAX_SUBMIT = 5000
MAX_NJOBS = 1000


class SubmitRefused(Exception):
    """A submission panda-server would not store: the envelope's message."""


@dataclass
class Service:
    """The dispatcher's state as the request handlers see it."""

    store: Store
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, store: Store) -> Service:
        return cls(store, store.queues(), store.endpoints())

    def queues_for(self, *names: str | None) -> list[str]:
        """Queues a getJob may take from: named by nickname, or by panda_resource (siteName)."""
        found: list[str] = []
        for name in names:
            if not name:
                continue
            for nick, data in self.queues.items():
                if name in (nick, data.get("panda_resource")) and nick not in found:
                    found.append(nick)
        return found

    def acquire(self, site: str, ce: str | None, count: int, pilot: str,
                fields: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self.store.claim(self.queues_for(site, ce), min(count, MAX_NJOBS), pilot, fields)

    def submit(self, text: str) -> tuple[list[list[Any]], str]:
        """Store the jobs of a ``jobs`` string; per job [PandaID, jobDefinitionID, jobName], and a note.

        As panda-server: a job its database would not take is answered with PandaID
        ``"NULL"`` while the others are stored, and a job for a queue nobody serves is stored
        and never handed out; the note (panda-server's message is empty) says why, per job.
        Analysis and pilot-test jobs get ``{"jobsetID": N}`` in place of the name; their
        jobsetID (and an analysis job's jobDefinitionID) is the first PandaID of the
        submission, where panda-server counts per user.
        """
        try:
            jobs = jobwire.decode(text)[:MAX_SUBMIT]
        except jobwire.WireError as exc:
            raise SubmitRefused(f"Failed to deserialize jobs: {exc}") from exc
        if not jobs:
            raise SubmitRefused("No jobs were submitted")
        for job in jobs:
            label = job.columns.get("job_label")
            if label not in (None, "", jobwire.NULL) and label not in jobspec.JOB_LABELS:
                raise SubmitRefused(f"job_label={label} is not valid")
        notes: list[str] = []
        kept = [self._kept(index, job, notes) for index, job in enumerate(jobs)]
        first: list[int] = []
        ready = [(str(k.columns.get("computingSite")), jobspec.initial_status(k),
                  self._builder(k, self.queues.get(str(k.columns.get("computingSite")), {}), first))
                 for k in kept if k is not None]
        stored = iter(self.store.submit(ready))
        rows = [_reply(next(stored) if k is not None else _unstored(job)) for job, k in zip(jobs, kept)]
        return rows, "; ".join(notes)

    def _kept(self, index: int, job: jobwire.WireJob, notes: list[str]) -> jobwire.WireJob | None:
        """The job as its database would keep it, or None (with a note) where the insert would fail."""
        try:
            kept = jobspec.stored(job)
        except jobspec.SpecError as exc:
            notes.append(f"job #{index} not stored: {exc}")
            return None
        queue = kept.columns.get("computingSite")
        if queue not in self.queues:
            notes.append(f"job #{index}: computingSite {queue!r} is not a queue of this dispatcher "
                         f"(served: {', '.join(self.queues)}): no pilot will get it")
        return kept

    @staticmethod
    def _builder(job: jobwire.WireJob, queuedata: Mapping[str, Any], first: list[int]) -> Builder:
        def build(panda_id: int) -> dict[str, Any]:
            first.append(panda_id)
            return jobspec.serve(jobspec.numbered(job, panda_id, first[0]), queuedata)
        return build


def _unstored(job: jobwire.WireJob) -> dict[str, Any]:
    """A job that was not stored, as panda-server answers for it: no PandaID, its other columns as given."""
    c = job.columns
    return {"PandaID": jobwire.NULL, "jobDefinitionID": c.get("jobDefinitionID", jobwire.NULL),
            "prodSourceLabel": c.get("prodSourceLabel"), "jobsetID": c.get("jobsetID"), "jobName": c.get("jobName")}


def _reply(served: Mapping[str, Any]) -> list[Any]:
    """[PandaID, jobDefinitionID, name]: the jobsetID for analysis and pilot-test labels, else the job name."""
    if served["prodSourceLabel"] in jobspec.ANALYSIS_LABELS | jobspec.PTEST_LABELS:
        return [served["PandaID"], served["jobDefinitionID"], {"jobsetID": served["jobsetID"]}]
    return [served["PandaID"], served["jobDefinitionID"], served["jobName"]]
