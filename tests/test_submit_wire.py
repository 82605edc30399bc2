"""``fsm-pilot submit``'s encoding: job files -> panda-server JobSpecs -> the ``jobs`` string, and back.

The checks against panda-server's own code (JobUtils.load_jobs_json / dump_jobs_json, and the served job
from jobdispatcher/Protocol.py) run where panda-server 1.0.4 is importable: by this interpreter, or by the
one FSM_PILOT_PANDA_SERVER_PYTHON names (the real-server CI's venv).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from fsm_pilot.dispatcher import jobspec
from fsm_pilot.dispatcher.jobwire import FILE_COLUMNS, JOB_COLUMNS, NULL, WireError, WireJob, decode, encode
from fsm_pilot.dispatcher.submitspec import SpecError, to_wire

#: Runs under panda-server's interpreter: reads a ``jobs`` string, answers what panda-server makes of it.
REAL_CHECK = r'''
import json, sys
from pandaserver.taskbuffer import JobUtils
from pandaserver.jobdispatcher import Protocol

# no site catalogue here: every storage endpoint lookup answers "" (a site panda-server does not know)
Protocol.Response.getDdmEndpoint = lambda self, *args: ""
out = []
for text in json.load(sys.stdin):
    try:
        jobs = JobUtils.load_jobs_json(text)
    except Exception as exc:
        out.append({"refused": repr(exc)})
        continue
    done = {"redump": JobUtils.dump_jobs_json(jobs), "jobs": []}
    for n, job in enumerate(jobs):
        columns = {a: getattr(job, a) for a in job._attributes}
        files = [{a: getattr(f, a) for a in f._attributes} for f in job.Files]
        # what its insert leaves in the database (insertNewJob without a user, a site or resource types)
        params, kept = job.jobParameters, job.valuesMap()
        for a in job._attributes:
            object.__setattr__(job, a, kept[":" + a])
        object.__setattr__(job, "jobParameters", " " if params in ("", "NULL", None) else params)
        object.__setattr__(job, "PandaID", 100 + n)
        if job.assignedPriority not in (None, "NULL", 0):
            object.__setattr__(job, "currentPriority", job.assignedPriority)
        if job.resource_type in (None, "NULL", ""):
            object.__setattr__(job, "resource_type", "Undefined")
        for f in job.Files:
            kept = f.valuesMap()
            for a in f._attributes:
                if a != "PandaID":
                    object.__setattr__(f, a, kept[":" + a])
        served = Protocol.Response(0)
        served.appendJob(job)
        done["jobs"].append({"columns": columns, "files": files, "served": served.data})
    out.append(done)
json.dump(out, sys.stdout)
'''

SAMPLE = {"transformation": "bash", "jobPars": "-c 'cat a.txt b.txt > o.txt'", "jobName": "sample.1",
          "inFiles": "a.txt,b.txt", "fsize": "3,4", "checksum": "ad:00000001,md:" + "f" * 32, "scopeIn": "s1,s2",
          "GUID": "11111111-2222-4333-8444-555555555555,66666666-7777-4888-9999-000000000000",
          "realDatasetsIn": "ds.in,ds.in", "outFiles": "o.txt,p.txt", "scopeOut": "out,out", "scopeLog": "logs",
          "realDatasets": "ds.out,ds.out,ds.log", "destinationDBlockToken": "dst:LOCAL_DISK,NULL",
          "coreCount": "4", "maxCpuCount": 600, "attemptNr": "1", "swRelease": "Atlas-1.0", "debug": "True",
          "loopingCheck": False, "currentPriority": 200, "cloud": "WORLD"}


def _panda_python() -> str | None:
    """An interpreter that imports panda-server 1.0.4, or None."""
    for candidate in (sys.executable, os.environ.get("FSM_PILOT_PANDA_SERVER_PYTHON")):
        if candidate and subprocess.run([candidate, "-c", "import pandaserver.taskbuffer.JobUtils"],
                                        capture_output=True, check=False).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def panda_python() -> str:
    python = _panda_python()
    if python is None:
        pytest.skip("panda-server 1.0.4 is not importable here (set FSM_PILOT_PANDA_SERVER_PYTHON to its python)")
    return python


def _real(python: str, texts: list[str]) -> list[dict[str, Any]]:
    done = subprocess.run([python, "-c", REAL_CHECK], input=json.dumps(texts), capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    answer: list[dict[str, Any]] = json.loads(done.stdout)
    return answer


# --- the encoding ---------------------------------------------------------------------------------------


def test_a_job_is_its_column_values_in_order_then_its_files() -> None:
    text = encode([to_wire({**SAMPLE, "VO": "local"}, "Q")])
    (state,) = json.loads(text)
    assert isinstance(text, str) and len(state) == len(JOB_COLUMNS) + 1 and len(JOB_COLUMNS) == 126
    column = dict(zip(JOB_COLUMNS, state))
    assert column["PandaID"] == NULL and column["jobParameters"] == SAMPLE["jobPars"]
    assert (column["computingSite"], column["VO"], column["coreCount"], column["attemptNr"]) == ("Q", "local", 4, 1)
    assert (column["AtlasRelease"], column["specialHandling"], column["jobDefinitionID"]) == ("Atlas-1.0", "dm,lc", 0)
    files = state[-1]
    assert [len(f) for f in files] == [len(FILE_COLUMNS) + 1] * 5 and all(f[-1] is None for f in files)
    kinds = [dict(zip(FILE_COLUMNS, f)) for f in files]
    assert [(f["type"], f["lfn"]) for f in kinds] == [("input", "a.txt"), ("input", "b.txt"), ("output", "o.txt"),
                                                      ("output", "p.txt"), ("log", "sample.1.job.log.tgz")]
    assert [f["fsize"] for f in kinds[:2]] == [3, 4] and {f["status"] for f in kinds[:2]} == {"ready"}
    assert [f["scope"] for f in kinds] == ["s1", "s2", "out", "out", "logs"]
    assert [f["dataset"] for f in kinds] == ["ds.in", "ds.in", "ds.out", "ds.out", "ds.log"]
    assert [f["destinationDBlockToken"] for f in kinds[2:]] == ["dst:LOCAL_DISK", NULL, NULL]
    log_guid = kinds[-1]["GUID"]
    assert log_guid == log_guid.lower() and len(log_guid) == 36  # uuid4, lower case, as panda-server makes them


def test_jobspec_columns_with_files_are_taken_as_given() -> None:
    raw = {"transformation": "x", "jobParameters": "p", "computingSite": "Q", "jobDefinitionID": 5,
           "Files": [{"lfn": "in.dat", "type": "input", "GUID": "g"}, {"lfn": "j.log", "type": "log", "GUID": "L"}]}
    job = to_wire(raw)
    assert job.columns["jobParameters"] == "p" and job.columns["jobDefinitionID"] == 5
    assert job.files == [{"status": "ready", "lfn": "in.dat", "type": "input", "GUID": "g"},
                         {"lfn": "j.log", "type": "log", "GUID": "L"}]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"transformation": "x", "colour": "red"}, "not panda-server job fields: colour"),
        ({"transformation": "x", "ddmEndPointOut": "SE"}, "ddmEndPointOut: the server picks storage endpoints"),
        ({"transformation": "x", "inFiles": "a,b", "fsize": "1"}, "fsize has 1 entries for 2 inFiles"),
        ({"transformation": "x", "outFiles": "o", "realDatasets": "a,b,c"}, "realDatasets has 3 entries for 1 outputs"),
        ({"transformation": "x", "inFiles": "a", "Files": []}, "Files and the per-file fields inFiles cannot"),
        ({"transformation": "x", "Files": [{"lfn": "a"}]}, r"Files\[0\] needs an lfn and a type"),
        ({"transformation": "x", "Files": [{"lfn": "a", "type": "input", "size": 1}]}, "not FileSpec columns: size"),
        ({"jobPars": "x"}, "transformation is required"),
        ({"transformation": "x", "attemptNr": "two"}, "attemptNr must be an integer, got 'two'"),
        ({"transformation": "x", "inFiles": "a", "fsize": "big"}, "fsize must be an integer, got 'big'"),
    ],
)
def test_job_files_panda_server_would_misread_are_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        to_wire(raw, "Q")
    with pytest.raises(SpecError, match="no queue: give --queue or computingSite"):
        to_wire({"transformation": "x"})


def test_decode_reads_what_load_jobs_json_reads() -> None:
    """Short lists leave the trailing columns NULL, long ones are read up to the known columns."""
    short = json.dumps([["NULL", 7, "sched", [["NULL", "NULL", "g", "f.txt", "input", None]]]])
    (job,) = decode(short)
    assert job.columns["jobDefinitionID"] == 7 and job.columns["schedulerID"] == "sched"
    assert job.columns["pilotID"] == NULL and len(job.columns) == len(JOB_COLUMNS)
    assert (job.files[0]["GUID"], job.files[0]["lfn"], job.files[0]["dataset"]) == ("g", "f.txt", NULL)
    marked: list[Any] = [0] * len(JOB_COLUMNS) + ["extra", []]
    marked[JOB_COLUMNS.index("creationTime")] = {"_datetime_object": "2025-01-02 03:04:05.000000"}
    (job,) = decode(json.dumps([marked]))
    assert job.columns["creationTime"] == "2025-01-02 03:04:05.000000" and job.columns["outputFileType"] == 0
    round_trip = WireJob({"jobName": "n", "attemptNr": 0}, [{"lfn": "l", "type": "log"}])
    (back,) = decode(encode([round_trip]))
    assert back.columns["jobName"] == "n" and back.files[0]["lfn"] == "l" and back.files[0]["fsize"] == NULL


REFUSED = ['[{"transformation": "echo"}]', "[not json", '[["NULL", "not a file list"]]', "[[]]",
           '[["NULL", [{"lfn": "a"}]]]', '{"a": 1}']


@pytest.mark.parametrize("text", REFUSED)
def test_decode_refuses_what_load_jobs_json_refuses(text: str) -> None:
    with pytest.raises(WireError):
        decode(text)


# --- against panda-server's own code --------------------------------------------------------------------


def test_the_encoding_is_what_panda_servers_dump_jobs_json_writes(panda_python: str) -> None:
    jobs = [to_wire({**SAMPLE, "VO": "local"}, "Q"),
            to_wire({"transformation": "echo", "jobPars": "", "prodSourceLabel": "managed", "jobName": "bare"}, "Q"),
            to_wire({"transformation": "x", "computingSite": "Q", "Files": [{"lfn": "in", "type": "input"}]})]
    text = encode(jobs)
    (real,) = _real(panda_python, [text])
    assert real["redump"] == text  # loaded and dumped again by panda-server: byte for byte the same
    ours = decode(text)
    assert [j.columns for j in ours] == [j["columns"] for j in real["jobs"]]
    assert [j.files for j in ours] == [j["files"] for j in real["jobs"]]


def test_the_served_job_is_what_panda_servers_protocol_builds(panda_python: str) -> None:
    """The definition acquire_jobs hands out, from the same stored job (storage endpoints aside: no site here)."""
    text = encode([to_wire(SAMPLE, "Q"), to_wire({"transformation": "e", "assignedPriority": 900}, "Q")])
    (real,) = _real(panda_python, [text])
    for n, (job, theirs) in enumerate(zip(decode(text), real["jobs"])):
        ours = jobspec.serve(jobspec.numbered(jobspec.stored(job), 100 + n, 100), {})
        served = {k: v for k, v in theirs["served"].items() if k != "StatusCode"}
        assert list(ours) == list(served) and ours == served


def test_what_panda_server_cannot_load_is_refused_here_too(panda_python: str) -> None:
    assert all("refused" in answer for answer in _real(panda_python, REFUSED))
