"""The built-in copytools for file:// endpoints: ``cp``, ``symlink``, and ``mv`` (which links).

``cp`` runs /bin/cp as a child (see process.py): a read from a hung shared file
system, or from a FIFO, then blocks the child, never the pilot. ``symlink``
links the job dir to the replica; it reads nothing, so it runs in-process.

``mv`` follows Pilot 3 (pilot/copytool/mv.py): at stage-in its ``copy_in``
defaults to ``copy_type="symlink"`` and the data API never passes another, so
Pilot 3's ``mv`` links ``ln -s <realpath of the replica> <job dir>/<lfn>`` and
never moves an input. Moving a replica off storage would destroy it for every
other job, so ``mv`` here links too, to the replica's real path.

A replica's real path (every symlink on storage resolved) must stay inside the
endpoint's path: a link planted on storage must not hand the payload any file
of the node.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.stagein.process import Finished

if TYPE_CHECKING:
    from fsm_pilot.stagein.resolve import Replica

LOCAL_SCHEMES = frozenset({"file"})


def _failed(diag: str) -> PilotFailure:
    return PilotFailure(PilotError.STAGEINFAILED, diag)


def _real_root(replica: Replica) -> Path:
    root = replica.endpoint.local_root()
    try:
        return root.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop (Python < 3.13)
        raise PilotFailure(
            PilotError.MISSINGINPUTFILE,
            f"replica {replica.url}: endpoint {replica.endpoint.name} path {root} is not accessible: {exc}",
        ) from exc


def local_source(replica: Replica) -> Path:
    """The replica's real path; refuses a missing replica and one that resolves outside the endpoint."""
    root = _real_root(replica)
    path = replica.local_path()
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError as exc:
        raise PilotFailure(PilotError.MISSINGINPUTFILE, f"replica {replica.url} does not exist ({path})") from exc
    except (OSError, RuntimeError) as exc:
        raise _failed(f"cannot access replica {path}: {exc}") from exc
    if not real.is_relative_to(root):
        raise _failed(f"replica {path} resolves to {real}, outside the endpoint path {root}")
    return real


def _require_regular(path: Path) -> None:
    """A link must point at a regular file: a FIFO or device would hand the payload something else."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise _failed(f"cannot access replica {path}: {exc}") from exc
    if not stat.S_ISREG(mode):
        raise _failed(f"replica {path} is not a regular file")


def cp_argv(executable: str, replica: Replica, dest: Path, timeout: float) -> list[str]:
    """``cp -- <real replica path> <dest>``; the caller's deadline bounds it."""
    return [executable, "--", str(local_source(replica)), str(dest)]


@dataclass(frozen=True)
class LinkTool:
    """Symlink the replica's real path into the job dir (``symlink``, and ``mv`` as in Pilot 3)."""

    name: str
    schemes: frozenset[str] | None = field(default=LOCAL_SCHEMES)

    def available(self) -> bool:
        """Always: it needs nothing but the file system."""
        return True

    def start(self, replica: Replica, dest: Path, *, log_path: Path, timeout: float) -> Finished:
        """Make the link now; it reads no data, so nothing can block."""
        source = local_source(replica)
        _require_regular(source)
        try:
            os.symlink(source, dest)
        except OSError as exc:
            raise _failed(f"cannot link {dest} to {source}: {exc}") from exc
        return Finished()
