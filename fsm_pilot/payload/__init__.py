"""Payload process control: start, wait, measure, and kill exactly the payload's tree."""

from fsm_pilot.payload.process import (
    KillReport,
    Payload,
    Usage,
    WaitResult,
    descendants,
    kill_tree,
    measure_tree,
    start_payload,
    wait_payload,
)
from fsm_pilot.payload.subreaper import become_subreaper, is_subreaper, reap_zombies

__all__ = [
    "KillReport",
    "Payload",
    "Usage",
    "WaitResult",
    "become_subreaper",
    "descendants",
    "is_subreaper",
    "kill_tree",
    "measure_tree",
    "reap_zombies",
    "start_payload",
    "wait_payload",
]
