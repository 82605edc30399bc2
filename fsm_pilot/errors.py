"""PanDA pilot error codes and the shell exit-code table.

The numbers are PanDA's (servers and monitors interpret them), so they are
kept exactly; the names follow Pilot 3 so operators can search for them.
"""

from __future__ import annotations

import enum


class PilotError(enum.IntEnum):
    """Error codes sent to the server as ``pilotErrorCode``."""

    GENERALERROR = 1008
    NOLOCALSPACE = 1098
    STAGEINFAILED = 1099
    REPLICANOTFOUND = 1100
    NOSUCHFILE = 1103
    USERDIRTOOLARGE = 1104
    STDOUTTOOBIG = 1106
    SETUPFAILURE = 1110
    QUEUEDATA = 1116
    QUEUEDATANOTOK = 1117
    OUTPUTFILETOOLARGE = 1124
    NOSTORAGE = 1133
    STAGEOUTFAILED = 1137
    PUTMD5MISMATCH = 1141
    PANDAKILL = 1144
    GETMD5MISMATCH = 1145
    TRFDOWNLOADFAILURE = 1149
    LOOPINGJOB = 1150
    STAGEINTIMEOUT = 1151
    STAGEOUTTIMEOUT = 1152
    NOPROXY = 1163
    MISSINGOUTPUTFILE = 1165
    GETADMISMATCH = 1171
    PUTADMISMATCH = 1172
    NOVOMSPROXY = 1177
    NOSOFTWAREDIR = 1186
    LFNTOOLONG = 1190
    ZEROFILESIZE = 1191
    MKDIR = 1199
    KILLSIGNAL = 1200
    SIGTERM = 1201
    SIGQUIT = 1202
    SIGSEGV = 1203
    SIGXCPU = 1204
    USERKILL = 1205
    SIGBUS = 1206
    SIGUSR1 = 1207
    SIGINT = 1208
    MISSINGINSTALLATION = 1211
    PAYLOADOUTOFMEMORY = 1212
    REACHEDMAXTIME = 1213
    UNKNOWNPAYLOADFAILURE = 1220
    FILEEXISTS = 1221
    PAYLOADEXCEEDMAXMEM = 1235
    CHKSUMNOTSUP = 1242
    NOTIMPLEMENTED = 1300
    UNKNOWNEXCEPTION = 1301
    CONVERSIONFAILURE = 1302
    FILEHANDLINGFAILURE = 1303
    PAYLOADEXECUTIONFAILURE = 1305
    PAYLOADEXECUTIONEXCEPTION = 1310
    NOTSAMELENGTH = 1312
    NOSTORAGEPROTOCOL = 1313
    UNKNOWNCHECKSUMTYPE = 1314
    COMMUNICATIONFAILURE = 1318
    INTERNALPILOTPROBLEM = 1319
    LOGFILECREATIONFAILURE = 1320
    UNKNOWNCOPYTOOL = 1323
    JSONRETRIEVALTIMEOUT = 1330
    MISSINGINPUTFILE = 1331
    BLACKHOLE = 1332
    NOREMOTESPACE = 1333
    BADQUEUECONFIGURATION = 1341
    MIDDLEWAREIMPORTFAILURE = 1342
    RESOURCEUNAVAILABLE = 1344
    TRANSFORMNOTFOUND = 1346
    EMPTYOUTPUTFILE = 1350
    PANDAQUEUENOTACTIVE = 1359
    KILLPAYLOAD = 1363
    CHECKSUMCALCFAILURE = 1366
    BADOUTPUTFILENAME = 1371
    CERTIFICATEHASEXPIRED = 1373
    LOGCREATIONTIMEOUT = 1376
    CVMFSISNOTALIVE = 1377
    PREEMPTION = 1379
    PROXYTOOSHORT = 1382
    STAGEOUTAUTHENTICATIONFAILURE = 1383
    NOJOBSINPANDA = 1385
    PANDAQUEUENOTONLINE = 1386


class PilotFailure(Exception):
    """A failure with a PanDA error code: raised by helpers, caught by steps.

    Steps turn it into a trigger with a reason; it never escapes the driver.
    """

    def __init__(self, error: PilotError, diag: str) -> None:
        super().__init__(f"{error.name} ({int(error)}): {diag}")
        self.error = error
        self.diag = diag


#: Signals the pilot handles, with the job error code each one sets (Pilot 3's; SIGHUP has no
#: code of its own there and gets the generic KILLSIGNAL, as any other signal does in Pilot 3).
SIGNAL_ERRORS: dict[str, PilotError] = {
    "SIGHUP": PilotError.KILLSIGNAL,
    "SIGINT": PilotError.SIGINT,
    "SIGQUIT": PilotError.SIGQUIT,
    "SIGBUS": PilotError.SIGBUS,
    "SIGUSR1": PilotError.SIGUSR1,
    "SIGSEGV": PilotError.SIGSEGV,
    "SIGTERM": PilotError.SIGTERM,
    "SIGXCPU": PilotError.SIGXCPU,
}
