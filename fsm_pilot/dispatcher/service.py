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

    def _queue_of(self, columns: Mapping[str, Any]) -> str:
        """The job's queue: computingSite must name one this dispatcher serves."""
        queue = columns.get("computingSite")
        if not isinstance(queue, str) or queue not in self.queues:
            raise jobspec.SpecError(f"computingSite {queue!r} is not a queue of this dispatcher "
                                    f"(served: {', '.join(self.queues)})")
        return queue

    def submit(self, text: str) -> list[list[Any]]:
        """Store the jobs of a ``jobs`` string all at once; per job [PandaID, jobDefinitionID, jobName].

        Analysis and pilot-test jobs get ``{"jobsetID": N}`` in place of the name, as from
        panda-server; their jobsetID (and an analysis job's jobDefinitionID) is the first
        PandaID of the submission, where panda-server counts per user.
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
        ready: list[tuple[str, str, Builder]] = []
        first: list[int] = []
        for index, job in enumerate(jobs):
            try:
                queue, kept = self._queue_of(job.columns), jobspec.stored(job)
                ready.append((queue, jobspec.initial_status(kept), self._builder(kept, self.queues[queue], first)))
            except jobspec.SpecError as exc:
                raise SubmitRefused(f"job #{index}: {exc}") from exc
        return [[d["PandaID"], d["jobDefinitionID"], _name(d)] for d in self.store.submit(ready)]

    @staticmethod
    def _builder(job: jobwire.WireJob, queuedata: Mapping[str, Any], first: list[int]) -> Builder:
        def build(panda_id: int) -> dict[str, Any]:
            first.append(panda_id)
            return jobspec.serve(jobspec.numbered(job, panda_id, first[0]), queuedata)
        return build


def _name(served: Mapping[str, Any]) -> Any:
    """What panda-server's reply names a job by: the jobsetID for analysis and pilot-test labels."""
    if served["prodSourceLabel"] in jobspec.ANALYSIS_LABELS | jobspec.PTEST_LABELS:
        return {"jobsetID": served["jobsetID"]}
    return served["jobName"]
