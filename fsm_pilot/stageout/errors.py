"""What a failed stage-out step's exit status and output mean, as PanDA error codes.

The texts are the ones the real tools print (xrdcp/xrdfs 5.5, gfal-copy 1.8 on
gfal2 2.21, the XRootD and gfal2 Python bindings), seen against a real XRootD
storage element; Pilot 3's table (pilot/copytool/common.py) matches texts
(``failed xrdadler32``, ``does not match the checksum``) none of them prints. The
first rule that matches wins, in Pilot 3's order of precedence: timeout, then
checksum, then the rest. Anything unknown is STAGEOUTFAILED, the generic code
PanDA treats as worth retrying the job for.
"""

from __future__ import annotations

import errno
import re

from fsm_pilot.errors import PilotError

#: Exit codes that mean the tool gave up on a deadline (gfal-copy exits with the errno).
_TIMEOUT_CODES = frozenset({errno.ETIMEDOUT, errno.ETIME})
_PERMISSION_CODES = frozenset({errno.EACCES})  # not EPERM: 1 is every tool's generic failure
_SPACE_CODES = frozenset({errno.ENOSPC, errno.EDQUOT})

#: (pattern, code), tried in order on the tool's output (case-insensitive).
RULES: tuple[tuple[str, PilotError], ...] = (
    (r"fsm-pilot bindings: cannot import", PilotError.MIDDLEWAREIMPORTFAILURE),
    (r"operation expired|timed out|timeout", PilotError.STAGEOUTTIMEOUT),
    (r"checksum error|checksum mismatch|adler32 do not match|checksums? do not match", PilotError.PUTADMISMATCH),
    (r"query chksum is not supported|unable to checksum|checksum (type )?not supported", PilotError.CHKSUMNOTSUP),
    (r"no space left on device|\[3009\]|disk quota exceeded|insufficient space", PilotError.NOREMOTESPACE),
    (r"could not establish context", PilotError.NOPROXY),
    (r"permission denied|not authorized|\[3010\]|cannot authenticate|auth(entication)? failed",
     PilotError.STAGEOUTAUTHENTICATIONFAILURE),
    (r"file exists", PilotError.FILEEXISTS),
)
_COMPILED = tuple((re.compile(pattern, re.IGNORECASE), code) for pattern, code in RULES)


def classify(code: int | None, output: str) -> PilotError:
    """The PanDA code for a stage-out step that exited with ``code`` after printing ``output``."""
    if code in _TIMEOUT_CODES:
        return PilotError.STAGEOUTTIMEOUT
    for pattern, error in _COMPILED:
        if pattern.search(output):
            return error
    if code in _SPACE_CODES:
        return PilotError.NOREMOTESPACE
    if code in _PERMISSION_CODES:
        return PilotError.STAGEOUTAUTHENTICATIONFAILURE
    return PilotError.STAGEOUTFAILED
