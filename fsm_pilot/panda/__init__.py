"""The pilot side of the PanDA server protocol: both dialects, retries, auth, reply parsing."""

from fsm_pilot.panda.auth import Auth, auth_from_env
from fsm_pilot.panda.client import PandaClient, user_agent
from fsm_pilot.panda.replies import Reply, StatusCode, parse_reply
from fsm_pilot.panda.results import GetJobResult, UpdateResult, split_commands
from fsm_pilot.panda.transport import Interrupted, RetryPolicy

__all__ = [
    "Auth",
    "GetJobResult",
    "Interrupted",
    "PandaClient",
    "Reply",
    "RetryPolicy",
    "StatusCode",
    "UpdateResult",
    "auth_from_env",
    "parse_reply",
    "split_commands",
    "user_agent",
]
