"""Outputs for Harvester to stage out: copied into the access point and listed in ``event_status.dump.json``.

When Harvester reports for the pilot (``-z``), Harvester also stores the job's
files: Pilot 3's ``mv`` copytool leaves them in the access point and the final
update lists them, the log first, as
``{"<PandaID>": [{"type": "log"|"output", "path", "guid", "fsize", "chksum"}]}``
(``chksum``: the adler32 value). Harvester renames the file to ``.read`` when it
takes it; entries of other jobs it has not taken yet are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fsm_pilot.context import Context, JobRun
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.harvester.files import EVENT_STATUS, RESERVED, directory, write_json
from fsm_pilot.storage import StagedFile, check_lfn
from fsm_pilot.storage.local import put_path

#: An unread event_status.dump.json larger than this is not ours to merge: it is replaced.
_MAX_UNREAD_BYTES = 16 * 1024 * 1024


def put(ctx: Context, src: Path, lfn: str, guid: str, *, ddm_endpoint: str, within: Path | None) -> StagedFile:
    """Copy one file to ``<access point>/<lfn>``, verified, as Harvester will find it.

    A name of one of the exchanged files is refused: an output must not replace them.
    """
    if check_lfn(lfn) in RESERVED:
        raise PilotFailure(PilotError.BADOUTPUTFILENAME, f"refusing file name {lfn!r}: Harvester's own file")
    dest = directory(ctx) / lfn
    fsize, adler32 = put_path(src, dest, within=within)
    return StagedFile(lfn=lfn, scope="", guid=guid, surl=dest.as_uri(), path=dest, fsize=fsize, adler32=adler32,
                      endpoint=ddm_endpoint)


def _local_path(surl: object) -> str | None:
    """The file's path when ``surl`` is a file:// URL on this host."""
    if not isinstance(surl, str):
        return None
    split = urlsplit(surl)
    return unquote(split.path) if split.scheme == "file" and split.netloc in ("", "localhost") else None


def stageout_list(run: JobRun) -> list[dict[str, object]]:
    """The job's stored files as Harvester's entries: the log first, then the outputs, in job order."""
    log = run.job.log if run.job is not None else run.identity.log
    named = [(log.lfn, "log")] + [(spec.lfn, "output") for spec in (run.job.outputs if run.job else ())]
    entries: list[dict[str, object]] = []
    for lfn, kind in named:
        stored = run.xml.get(lfn)
        path = _local_path(stored.get("surl")) if stored else None
        if stored and path:
            entries.append({"type": kind, "path": path, "guid": stored.get("guid"), "fsize": stored.get("fsize"),
                            "chksum": stored.get("adler32")})
    return entries


def _unread(path: Path) -> dict[str, object]:
    """Other jobs' entries Harvester has not taken yet (anything unreadable is dropped)."""
    try:
        if not path.is_file() or path.stat().st_size > _MAX_UNREAD_BYTES:
            return {}
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {key: value for key, value in document.items() if isinstance(value, list)}


def publish_outputs(ctx: Context, run: JobRun) -> None:
    """Write the job's entries to ``event_status.dump.json`` (nothing when no file was stored)."""
    entries = stageout_list(run)
    if not entries:
        return
    path = directory(ctx) / EVENT_STATUS
    document = _unread(path)
    document[str(run.panda_id)] = entries
    write_json(path, document)
    ctx.log.info("outputs declared to Harvester", path=str(path), files=len(entries))
