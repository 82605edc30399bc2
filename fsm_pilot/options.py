"""``fsm-pilot run`` options: Pilot 3's, so wrappers and Harvester launch us unchanged.

Options this pilot does not use yet are accepted and logged as ignored;
a bad value is a clear message and exit 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fsm_pilot.config import OPTIONS
from fsm_pilot.context import RunArgs

RESOURCE_TYPES = ("SCORE", "MCORE", "SCORE_HIMEM", "MCORE_HIMEM")
WORKFLOWS = ("generic", "generic_hpc", "production", "production_hpc", "analysis", "analysis_hpc",
             "eventservice_hpc", "stager", "payload_stageout")

#: Accepted for compatibility; logged as ignored when given.
IGNORED_VALUED = (
    "--pilot-user", "-r/--resource", "-s/--site", "-L/--leasetime",
    "--country-group", "--allow-other-country",
    "--allow-same-user", "--use-https", "--cleanup", "--redirect-stdout", "--rucio-host",
    "--input-dir", "--input-destination-dir", "--use-rucio-traces", "--hpc-resource",
    "--hpc-mode", "--es-executor-type", "--realtime-logging-server", "--realtime-logname",
)
IGNORED_FLAGS = ("-u/--verifypayloadproxy", "-y", "-k", "--subscribe-to-msgsvc", "--pod",
                 "--use-realtime-logging", "--no-pilot-log")


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
        return value
    return parse


def _flags(spec: str) -> list[str]:
    return spec.split("/")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Pilot 3's options, plus the tunables of :mod:`fsm_pilot.config`."""
    add = parser.add_argument
    add("-q", "--queue", required=True, help="PanDA queue name")
    add("-j", "--joblabel", default="ptest", help="prodSourceLabel for getJob (default ptest)")
    add("-a", "--workdir", default="", help="parent dir of the pilot dir (default: current dir)")
    add("-t", "--noproxyverification", action="store_true", help="skip proxy lifetime checks")
    add("-z", "--noserverupdate", action="store_true", help="no server calls")
    add("-b", "--nocvmfs", action="store_true", help="skip the CVMFS check")
    add("-d", "--debug", action="store_true", help="debug logging")
    add("-i", "--versiontag", default="PR", help="version tag sent in pilotID (PR or RC)")
    add("-w", "--workflow", default="generic", choices=WORKFLOWS, help="Pilot 3 workflow (accepted)")
    add("--resource-type", default="", choices=("", *RESOURCE_TYPES), help="getJob resourceType")
    add("--job-type", default="", help="getJob jobType (managed, user)")
    add("--working-group", default="", help="getJob workingGroup")
    add("--url", default="", help="PanDA server URL (no default: a pilot never guesses its server)")
    add("-p", "--port", type=_positive(int), default=25443, help="server port when --url has none (25443)")
    add("--api", default="auto", choices=("auto", "v1", "legacy"),
        help="server dialect: REST v1, legacy /server/panda, or auto (v1, then legacy on 403/404)")
    add("--harvester-submit-mode", default="PULL", type=str.upper, choices=("PULL", "PUSH"),
        help="PULL: ask the server for jobs; PUSH: jobs are pre-placed (pandaJobData.out)")
    add("--capath", default="", help="CA certificates dir for TLS (default X509_CERT_DIR, else the system's)")
    add("--cacert", default="", help="CA certificate file for TLS")
    add("-g", "--baseurls", default="",
        help="comma-separated base URLs URL transformations may come from (also PANDA_BASE_URLS)")
    add("--output-dir", default="", help="ARC/NorduGrid: write output.list (lfn surl:checksum) here")
    add("--queuedata-url", default="", help="queuedata JSON: path or file:// URL ({pandaqueue} replaced)")
    add("--storagedata-url", default="", help="storage endpoints JSON: path or file:// URL")
    add("--harvester-workdir", default="", help="Harvester's access point: the files are exchanged here")
    add("--harvester-datadir", default="", help="where Harvester places pandaJobData.out")
    add("--harvester-eventstatusdump", default="", help="as in Pilot 3: with -z, only switches Harvester mode on")
    add("--harvester-workerattributes", default="", help="as in Pilot 3: with -z, only switches Harvester mode on")
    add("--job-file", default="", help="pre-placed job definition (default: pandaJobData.out)")
    add("--jobid-file", default="", help="append each job's PandaID here (default pandaIDs.out in the launch dir; "
        "pilot3/pilot.py gives pilot3/pandaIDs.out, where the production wrapper reads it)")
    add("--drain-file", default="", help="a file whose presence makes the pilot finish its job and take no more "
        "(also FSM_PILOT_DRAIN_FILE; stop_agent in the launch dir always counts)")
    for option in OPTIONS:
        add(*option.cli, dest=option.name, type=_positive(float), default=None,
            help=f"{option.doc} (env {option.env}, default {option.default:g})")
    for spec in IGNORED_VALUED:
        add(*_flags(spec), default=None, help=argparse.SUPPRESS)
    for spec in IGNORED_FLAGS:
        add(*_flags(spec), action="store_true", default=None, help=argparse.SUPPRESS)


def _ignored(ns: argparse.Namespace) -> dict[str, Any]:
    names = [_flags(s)[-1].lstrip("-").replace("-", "_") for s in IGNORED_VALUED + IGNORED_FLAGS]
    found = {n: getattr(ns, n) for n in names if getattr(ns, n, None) is not None}
    if ns.workflow != "generic":
        found["workflow"] = ns.workflow
    return found


def _server_url(url: str, port: int) -> str | None:
    """``--url`` with ``-p`` added when the URL names no port (Pilot 3's rule)."""
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.port is not None:
        return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    return f"{parts.scheme}://{parts.hostname}:{port}{parts.path}".rstrip("/")


def _base_urls(given: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """-g/--baseurls, else PANDA_BASE_URLS: comma-separated."""
    raw = given or env.get("PANDA_BASE_URLS", "")
    return tuple(u.strip() for u in raw.split(",") if u.strip())


def _drain_file(given: str, env: Mapping[str, str]) -> Path | None:
    """--drain-file, else FSM_PILOT_DRAIN_FILE (CLI over environment, as every setting)."""
    raw = given or env.get("FSM_PILOT_DRAIN_FILE", "")
    return Path(raw).absolute() if raw.strip() else None


def run_args(ns: argparse.Namespace, cwd: Path | None = None) -> RunArgs:
    """The parsed command line as :class:`RunArgs`."""
    launch = cwd or Path(os.getcwd())
    settings: dict[str, float | None] = {o.name: getattr(ns, o.name) for o in OPTIONS}
    return RunArgs(
        queue=ns.queue,
        workdir=Path(ns.workdir).absolute() if ns.workdir else launch,
        launch_dir=launch,
        job_label=ns.joblabel,
        url=_server_url(ns.url, ns.port),
        api=ns.api,
        push=ns.harvester_submit_mode == "PUSH",
        capath=ns.capath or None,
        cacert=ns.cacert or None,
        resource_type=ns.resource_type,
        job_type=ns.job_type,
        working_group=ns.working_group,
        base_urls=_base_urls(ns.baseurls, os.environ),
        output_dir=Path(ns.output_dir).absolute() if ns.output_dir else None,
        queuedata_url=ns.queuedata_url or None,
        storagedata_url=ns.storagedata_url or None,
        job_file=Path(ns.job_file).absolute() if ns.job_file else None,
        jobid_file=Path(ns.jobid_file).absolute() if ns.jobid_file else launch / "pandaIDs.out",
        drain_file=_drain_file(ns.drain_file, os.environ),
        harvester_workdir=Path(ns.harvester_workdir).absolute() if ns.harvester_workdir else None,
        harvester_datadir=Path(ns.harvester_datadir).absolute() if ns.harvester_datadir else None,
        harvester_eventstatusdump=ns.harvester_eventstatusdump,
        harvester_workerattributes=ns.harvester_workerattributes,
        no_proxy_check=ns.noproxyverification,
        no_cvmfs_check=ns.nocvmfs,
        no_server_update=ns.noserverupdate,
        debug=ns.debug,
        version_tag=ns.versiontag,
        settings=settings,
        ignored=_ignored(ns),
    )
