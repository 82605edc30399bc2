"""What both dialects share: the store plus the queues and storage endpoints it serves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fsm_pilot.dispatcher import jobspec
from fsm_pilot.dispatcher.store import Store

#: Most jobs one request may submit or take, as panda-server caps them.
MAX_SUBMIT = 5000
MAX_NJOBS = 1000


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

    def _queue_of(self, raw: Mapping[str, Any]) -> str:
        queue = raw.get(jobspec.QUEUE_FIELD)
        if queue in (None, "", "NULL"):
            if len(self.queues) != 1:
                raise jobspec.SpecError(f"{jobspec.QUEUE_FIELD} is required: this dispatcher serves "
                                        f"{len(self.queues)} queues ({', '.join(self.queues)})")
            return next(iter(self.queues))
        if not isinstance(queue, str) or queue not in self.queues:
            raise jobspec.SpecError(f"unknown queue {queue!r} (served: {', '.join(self.queues)})")
        return queue

    def submit(self, specs: Any) -> list[int]:
        """Validate every spec first, then store them all in one transaction."""
        if not isinstance(specs, list) or not specs:
            raise jobspec.SpecError("jobs must be a non-empty list of job definitions")
        if len(specs) > MAX_SUBMIT:
            raise jobspec.SpecError(f"at most {MAX_SUBMIT} jobs per submission, got {len(specs)}")
        ready: list[tuple[str, dict[str, Any]]] = []
        for index, raw in enumerate(specs):
            if not isinstance(raw, dict):
                raise jobspec.SpecError(f"job #{index} is not a JSON object")
            try:
                queue = self._queue_of(raw)
                ready.append((queue, jobspec.complete(raw, queue, self.queues[queue])))
            except jobspec.SpecError as exc:
                raise jobspec.SpecError(f"job #{index}: {exc}") from exc
        return self.store.submit(ready)
