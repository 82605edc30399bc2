"""Stage-out: outputs and the log to their storage endpoint, over file://, root:// or davs://."""

from fsm_pilot.stageout.destination import Destination, destination
from fsm_pilot.stageout.put import Copying, Interrupted, put, stageout_timeout

__all__ = ["Copying", "Destination", "Interrupted", "destination", "put", "stageout_timeout"]
