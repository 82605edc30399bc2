"""What a failed copy means: a copytool's exit code and output mapped to a PanDA error code.

One table serves both directions. Each row is a kind of failure: the texts the
tools print for it (matched without regard to case), the exit codes that mean
it on their own, and its PanDA code at stage-in and at stage-out. Rows are
tried in order and the first match wins, so a "Connection timed out" is a
timeout, not an unreachable server. The texts are those xrdcp 5.5.3,
gfal-copy 1.8.0 (gfal2 2.21.3) and their Python bindings print against a real
XRootD server (tests/test_transfer_failures.py runs the tools and checks every
row it can provoke), plus Pilot 3's own (pilot/copytool/common.py
``resolve_common_transfer_errors``), kept so a site sees the codes it knows.

Exit codes are per tool family: gfal-copy and the gfal2 bindings exit with
the errno (2 ENOENT, 110 ETIMEDOUT, ...); xrdcp and the XRootD bindings with
XRootD's shell codes (52 operation expired, 53 checksum error; 51 fatal and
54 server error need the text to say more).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.transfer.child import shown

Direction = Literal["in", "out"]



def _texts(*texts: str) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(text) for text in texts), re.IGNORECASE)


@dataclass(frozen=True)
class Rule:
    """One kind of failure: how to recognise it and its code at stage-in and at stage-out."""

    kind: str
    texts: re.Pattern[str]
    stagein: PilotError
    stageout: PilotError
    #: tool family ("gfal", "xrootd") -> exit codes that mean this kind whatever the output says.
    exit_codes: Mapping[str, frozenset[int]] = field(default_factory=dict)

    def matches(self, family: str | None, code: int | None, output: str) -> bool:
        """Whether the exit code alone, or the output, says this kind of failure."""
        if family is not None and code in self.exit_codes.get(family, frozenset()):
            return True
        return self.texts.search(output) is not None


E = PilotError
RULES: tuple[Rule, ...] = (
    # the pilot's own bindings child (fsm_pilot/stageout/bindings.py) when its module is missing
    Rule("bindings import", _texts("fsm-pilot bindings: cannot import"), E.MIDDLEWAREIMPORTFAILURE,
         E.MIDDLEWAREIMPORTFAILURE),
    Rule("timeout", _texts("timeout", "timed out", "Operation expired", "[3034]", "[3035]"),
         E.STAGEINTIMEOUT, E.STAGEOUTTIMEOUT,
         # gfal2's xrootd plugin reports a stalled server as ESTALE ("Stale file handle")
         {"gfal": frozenset({errno.ETIMEDOUT, errno.ETIME, errno.ESTALE}), "xrootd": frozenset({52})}),
    Rule("checksum", _texts("CheckSum error", "CHECKSUM MISMATCH", "checksum do not match",
                            "checksums do not match",
                            "adler32 do not match", "failed xrdadler32", "does not match the checksum", "[3019]"),
         E.GETADMISMATCH, E.PUTADMISMATCH, {"gfal": frozenset({errno.EILSEQ}), "xrootd": frozenset({53})}),
    Rule("no proxy", _texts("Could not establish context"), E.NOPROXY, E.NOPROXY),
    Rule("missing", _texts("No such file or directory", "[3011]", "HTTP 404", "File not found"),
         E.MISSINGINPUTFILE, E.NOSUCHFILE, {"gfal": frozenset({errno.ENOENT})}),
    Rule("exists", _texts("File exists", "file already exists", "SRM_FILE_BUSY", "[3018]"),
         E.FILEEXISTS, E.FILEEXISTS, {"gfal": frozenset({errno.EEXIST})}),
    Rule("permission", _texts("Permission denied", "Permission refused", "[3010]", "HTTP 403", "HTTP 401",
                              "Cannot authenticate", "[3030]", "not authorized", "authentication failed"),
         E.STAGEINAUTHENTICATIONFAILURE, E.STAGEOUTAUTHENTICATIONFAILURE,
         {"gfal": frozenset({errno.EACCES})}),
    Rule("no space", _texts("No space left on device", "[3009]", "[3021]", "quota exceeded", "insufficient space"),
         E.NOLOCALSPACE, E.NOREMOTESPACE, {"gfal": frozenset({errno.ENOSPC, errno.EDQUOT})}),
    Rule("unreachable", _texts("Connection refused", "Connection error", "Could not connect", "Host is down",
                               "No route to host", "Network is unreachable", "Name or service not known",
                               "[3014]"),
         E.UNREACHABLENETWORK, E.UNREACHABLENETWORK,
         {"gfal": frozenset({errno.ECONNREFUSED, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENETUNREACH})}),
    Rule("service", _texts("service is not available at the moment"), E.SERVICENOTAVAILABLE,
         E.SERVICENOTAVAILABLE),
    Rule("checksum not supported", _texts("query chksum is not supported", "Unable to checksum",
                                          "checksum not supported", "checksum type not supported"),
         E.CHKSUMNOTSUP, E.CHKSUMNOTSUP),
)
_MD5 = {E.GETADMISMATCH: E.GETMD5MISMATCH, E.PUTADMISMATCH: E.PUTMD5MISMATCH}
_FAMILIES = (("gfal", "gfal"), ("xrd", "xrootd"), ("xrootd", "xrootd"))


def family(tool: str) -> str | None:
    """The exit-code family of a copytool or executable name (gfal, gfalcopy, gfal-copy, gfal2, xrdcp, xrootd)."""
    name = tool.rsplit("/", 1)[-1].lower()
    return next((fam for prefix, fam in _FAMILIES if name.startswith(prefix)), None)


def classify(tool: str, code: int | None, output: str, direction: Direction = "in") -> PilotError:
    """The PanDA code of a copy that failed with exit ``code`` after printing ``output``."""
    fam = family(tool)
    for rule in RULES:
        if rule.matches(fam, code, output):
            error = rule.stagein if direction == "in" else rule.stageout
            return _MD5.get(error, error) if "md5" in output.lower() else error
    return PilotError.STAGEINFAILED if direction == "in" else PilotError.STAGEOUTFAILED


def tool_failure(tool: str, code: int | None, output: str, direction: Direction = "in") -> PilotFailure:
    """The failure a tool's exit status and output stand for, with the end of its output as the diag."""
    status = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
    text = shown(output)
    return PilotFailure(classify(tool, code, output, direction), f"{tool} {status}" + (f": {text}" if text else ""))


def rules_markdown() -> str:
    """The table for the README: each kind of failure, what says it, and its codes."""
    rows = ["| kind | output containing (any case) | exit code alone | stage-in | stage-out |", "|---|---|---|---|---|"]
    for rule in RULES:
        texts = ", ".join(f"`{text.replace(chr(92), '')}`" for text in rule.texts.pattern.split("|"))
        codes = "; ".join(f"{fam}: {', '.join(str(c) for c in sorted(found))}"
                          for fam, found in sorted(rule.exit_codes.items()))
        rows.append(f"| {rule.kind} | {texts} | {codes} | {rule.stagein.name} {int(rule.stagein)} | "
                    f"{rule.stageout.name} {int(rule.stageout)} |")
    return "\n".join(rows) + "\n"
