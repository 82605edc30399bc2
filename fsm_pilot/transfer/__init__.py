"""Transfers as child processes: each copytool step in its own session, its whole tree killable."""

from fsm_pilot.transfer.child import Child, start_child

__all__ = ["Child", "start_child"]
