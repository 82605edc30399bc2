"""Job definition files and job parsing, exercised through real files in tmp_path."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.job import Checksum, FileSpec, Job, JobIdentity, job_identity, parse_job
from fsm_pilot.jobfile import MAX_JOB_FILE_BYTES, read_job_records

FIXTURES = Path(__file__).parent / "fixtures"
E = PilotError
INPUT_COLUMNS = [
    *("GUID", "fsize", "checksum", "scopeIn", "realDatasetsIn", "ddmEndPointIn"),
    *("dispatchDBlockToken", "prodDBlockToken"),
]
OUTPUT_COLUMNS = [
    *("scopeOut", "realDatasets", "ddmEndPointOut", "destinationDblock", "fileDestinationSE"),
    *("destinationDBlockToken", "dispatchDBlockTokenForOut"),
]
NUMERIC_FIELDS = [
    *("taskID", "jobsetID", "jobDefinitionID", "attemptNr", "coreCount"),
    *("maxCpuCount", "maxDiskCount", "minRamCount", "maxWalltime"),
]
Changes = Mapping[str, object]
NONE_SPELLINGS: tuple[object, ...] = ("NULL", "None", "", None, "  NULL ", " ")


def adler(value: str) -> Checksum:
    return Checksum(kind="adler32", value=value)


def fixture_record(name: str) -> dict[str, object]:
    records = read_job_records(FIXTURES / name)
    assert len(records) == 1
    return records[0]


def write(tmp_path: Path, content: str | bytes, name: str = "job.def") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def job_file(tmp_path: Path, changes: Changes | None = None, drop: Sequence[str] = ()) -> Path:
    """The pandaJobData.out job with *changes*, written as a JSON job file."""
    fields = {**fixture_record("pandaJobData.out"), **(changes or {})}
    for key in drop:
        del fields[key]
    return write(tmp_path, json.dumps(fields), "job.json")


def load(tmp_path: Path, changes: Changes | None = None, drop: Sequence[str] = ()) -> Job:
    (record,) = read_job_records(job_file(tmp_path, changes, drop))
    return parse_job(record)


def failure(call: Callable[[], object], error: PilotError) -> str:
    """Assert *call* fails with exactly *error* and a diag that fits PanDA's column."""
    with pytest.raises(PilotFailure) as info:
        call()
    assert info.value.error is error, info.value.diag
    assert len(info.value.diag) <= 500
    return info.value.diag


def rejected(tmp_path: Path, error: PilotError, changes: Changes, drop: Sequence[str] = ()) -> str:
    return failure(lambda: load(tmp_path, changes, drop), error)


def _clear_lists(key: str) -> dict[str, object]:
    """Blank the attribute lists aligned with *key* so only the names are judged."""
    return dict.fromkeys(INPUT_COLUMNS if key == "inFiles" else OUTPUT_COLUMNS, None)


# --- the fixtures ---------------------------------------------------------------------------------


def test_urlencoded_fixture_parses_completely() -> None:
    record = fixture_record("pandaJobData.out")
    job = parse_job(record)
    assert (job.panda_id, job.attempt_nr, job.job_name) == (1234567, 1, "testjob")
    assert (job.task_id, job.jobset_id) == (99, 1)
    assert (job.job_definition_id, job.prod_source_label, job.transformation) == (1, "managed", "run.sh")
    assert (job.job_pars, job.core_count, job.max_cpu_count, job.max_disk_count) == ("arg1 arg2", 1, 0, 0)
    assert (job.min_ram_count, job.max_walltime, job.looping_check, job.debug) == (0, None, True, False)
    first = FileSpec(lfn="input.txt", scope="test", guid="aaaa-1", fsize=11, role="input")
    first = dataclasses.replace(first, dataset="ds.in", ddm_endpoint="LOCAL_DISK", checksum=adler("00000001"))
    second = dataclasses.replace(first, lfn="run.sh", guid="aaaa-2", fsize=80, checksum=adler("00000002"))
    assert job.inputs == (first, second)
    output = FileSpec(lfn="out.txt", scope="test", dataset="ds.out", ddm_endpoint="LOCAL_DISK", role="output")
    assert job.outputs == (output,)
    log = FileSpec(lfn="job.log.tgz", scope="test", guid="bbbb-1", role="log")
    assert job_identity(record) == JobIdentity(panda_id=1234567, attempt_nr=1, log=log)
    assert job.log == dataclasses.replace(log, dataset="ds.log", ddm_endpoint="LOCAL_DISK")
    assert job.identity == JobIdentity(panda_id=1234567, attempt_nr=1, log=job.log)
    assert job.fields["cloud"] == "US" and job.fields["jobPars"] == "arg1 arg2"
    assert "swRelease" not in job.fields and "maxWalltime" not in job.fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.panda_id = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        job.fields["PandaID"] = "2"  # type: ignore[index]


TASK = "c4a3b2e1f0d9c8b7a6958473625140fe"
PILOT3_JOBS = {  # input (lfn, fsize, adler32, scope), output lfn, output/log scope, endpoint
    "pilot3_test_production_job.json": (
        ("HITS.06828093._000096.pool.root.1", 94834717, "5d000974", "mc15_13TeV"),
        *(f"RDO_{TASK}.root", "panda", "UTA_SWT2_DATADISK"),
    ),
    "pilot3_test_user_job.json": (
        ("AOD.07709524._000050.pool.root.1", 1564780952, "b11f45a7", "data15_13TeV"),
        *(f"{TASK}.root", "user.gangarbt", "SWT2_CPB_SCRATCHDISK"),
    ),
}


@pytest.mark.parametrize("name", PILOT3_JOBS)
def test_pilot3_fixtures(tmp_path: Path, name: str) -> None:
    (lfn_in, size, checksum, scope_in), lfn_out, scope_out, endpoint = PILOT3_JOBS[name]
    record = fixture_record(name)
    # Pilot 3's test jobs carry PandaID "0", which cannot identify a real job.
    assert "PandaID=0" in failure(lambda: parse_job(record), E.CONVERSIONFAILURE)
    failure(lambda: job_identity(record), E.CONVERSIONFAILURE)
    (fixed,) = read_job_records(write(tmp_path, json.dumps({**record, "PandaID": 42}), "fixed.json"))
    job = parse_job(fixed)
    assert (job.panda_id, job.attempt_nr, job.core_count) == (42, 0, 1)
    assert (job.task_id, job.jobset_id) == (None, None)
    assert job.transformation == record["transformation"]  # a script name or a URL
    (inp,) = job.inputs
    assert (inp.lfn, inp.fsize, inp.checksum, inp.scope) == (lfn_in, size, adler(checksum), scope_in)
    assert (inp.guid, inp.ddm_endpoint) == ("0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9", endpoint)
    # realDatasets lists only the output: aligned with outFiles minus the log.
    output = FileSpec(lfn=lfn_out, scope=scope_out, dataset=TASK, ddm_endpoint=endpoint, role="output")
    assert job.outputs == (output,)
    log = FileSpec(lfn=f"{TASK}.job.log.tgz", scope=scope_out, ddm_endpoint=endpoint, role="log")
    assert job.log == dataclasses.replace(log, guid="1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9")


def test_panda_server_envelope_fixture() -> None:
    job = parse_job(fixture_record("panda-server-1.0.4_acquire_jobs_response.json"))
    assert (job.panda_id, job.transformation, job.job_pars) == (4, "echo", "hello")
    assert job.job_definition_id == 4120 and job.inputs == () and job.outputs == ()
    lfn = "local_test_ba0b22bc-0cab-46ed-afc2-633e4b950e7a.job.log.tgz"
    log = FileSpec(lfn=lfn, scope="test", role="log")
    dataset = "panda.destDB.8df296ea-1005-4558-858c-3122a3bacc75"
    assert job.log == dataclasses.replace(log, guid="bef246d7-fd7a-4989-b2b3-86a19c84397c", dataset=dataset)
    assert "ioIntensity" not in job.fields


# --- job definition file formats ------------------------------------------------------------------


def _job(panda_id: int) -> dict[str, object]:
    return {"PandaID": panda_id, "transformation": "run.sh", "logFile": f"{panda_id}.log.tgz"}


JSON_SHAPES = [(_job(5), [5]), ([_job(5), _job(3)], [5, 3]), ({"jobs": [_job(8), _job(9)]}, [8, 9])]
JSON_SHAPES += [({"30": _job(30), "10": _job(10), "20": _job(20)}, [30, 10, 20])]  # Harvester: file order
JSON_SHAPES += [({"success": True, "message": "", "data": {"StatusCode": 0, "jobs": [_job(11)]}}, [11])]


@pytest.mark.parametrize(("document", "expected"), JSON_SHAPES)
def test_json_shapes(tmp_path: Path, document: object, expected: list[int]) -> None:
    records = read_job_records(write(tmp_path, json.dumps(document, indent=1)))
    assert [parse_job(record).panda_id for record in records] == expected
    assert [job_identity(record).log.lfn for record in records] == [f"{n}.log.tgz" for n in expected]


def test_urlencoded_file_keeps_blank_values_and_strings(tmp_path: Path) -> None:
    fields = {"PandaID": "17", "jobPars": "a b&c=d", "GUID": "", "debug": "True"}
    (record,) = read_job_records(write(tmp_path, urllib.parse.urlencode(fields) + "\n"))
    assert record == fields


# fmt: off
GARBAGE = [
    (b"", "empty"), (b" \n\t\n", "empty"), ("PandaID=1".encode("utf-16"), "not UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8", "not UTF-8"), (b"\x00\x01\x02garbage", "urlencoded"),
    (b"just some words", "urlencoded"), (b"PandaID=1&&x=2", "urlencoded"),
    (b"jobName=x&transformation=run.sh", "no PandaID"), (b"PandaID=1&PandaID=2", "more than once"),
    (b'{"PandaID": 1', "invalid JSON"), (b'{"PandaID": NaN}', "invalid JSON"), (b"[1, 2]", "not an object"),
    (b"[42]", "job #0 is a JSON int"), (b"[]", "no jobs"), (b"{}", "neither a job"),
    (b'{"name": "x", "id": 3}', "neither a job"), (b'{"1": {"jobName": "x"}}', "no PandaID"),
    (b'[{"jobName": "x"}]', "no PandaID"), (b'{"jobs": []}', "no jobs"),
    (b'{"jobs": {"PandaID": 1}}', "no 'jobs' list"), (b'"PandaID"', "neither a JSON object/list"),
    (b'{"success": false, "message": "none"}', "reports failure"),
    (b'{"success": true, "data": {"StatusCode": 0}}', "no 'jobs' list"),
]
# fmt: on


@pytest.mark.parametrize(("content", "reason"), GARBAGE)
def test_unparseable_files(tmp_path: Path, content: bytes, reason: str) -> None:
    path = write(tmp_path, content)
    diag = failure(lambda: read_job_records(path), E.CONVERSIONFAILURE)
    assert str(path) in diag and reason in diag


def test_missing_file_is_left_to_the_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_job_records(tmp_path / "absent.json")


def test_directory_is_not_a_job_file(tmp_path: Path) -> None:
    assert "not a regular file" in failure(lambda: read_job_records(tmp_path), E.FILEHANDLINGFAILURE)


def test_size_limit(tmp_path: Path) -> None:
    body = b"PandaID=1&jobPars=" + b"x" * (MAX_JOB_FILE_BYTES - 18)
    assert read_job_records(write(tmp_path, body, "max"))[0]["jobPars"] == "x" * (MAX_JOB_FILE_BYTES - 18)
    big = write(tmp_path, body + b"x", "big")
    assert "byte limit" in failure(lambda: read_job_records(big), E.CONVERSIONFAILURE)


def test_file_diag_is_clipped(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d" * 200] * 3)
    deep.mkdir(parents=True)
    path = write(deep, b"nonsense")
    assert failure(lambda: read_job_records(path), E.CONVERSIONFAILURE).startswith("job definition file")


# --- scalar fields --------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", NONE_SPELLINGS)
def test_none_spellings(tmp_path: Path, spelling: object) -> None:
    keys = ("taskID", "jobsetID", "maxWalltime", "coreCount", "maxCpuCount", "GUID", "prodSourceLabel")
    job = load(tmp_path, dict.fromkeys((*keys, "jobPars", "loopingCheck"), spelling))
    assert (job.task_id, job.jobset_id, job.max_walltime) == (None, None, None)
    assert (job.core_count, job.max_cpu_count) == (1, 0)
    assert (job.prod_source_label, job.job_pars, job.looping_check) == (None, "", True)
    assert [f.guid for f in job.inputs] == [None, None]
    assert not {"taskID", "GUID", "prodSourceLabel", "jobPars"} & set(job.fields)


@pytest.mark.parametrize("value", ["8", 8, "8.0", 8.0, " 8 ", "+8", "08"])
def test_numbers_as_strings_ints_and_integral_floats(tmp_path: Path, value: object) -> None:
    job = load(tmp_path, dict.fromkeys(NUMERIC_FIELDS, value))
    assert (job.task_id, job.jobset_id, job.job_definition_id, job.attempt_nr, job.core_count) == (8,) * 5
    assert (job.max_cpu_count, job.max_disk_count, job.min_ram_count, job.max_walltime) == (8,) * 4
    assert job.fields["coreCount"] == (value.strip() if isinstance(value, str) else "8")


def test_zero_core_count_means_one(tmp_path: Path) -> None:
    assert load(tmp_path, {"coreCount": 0}).core_count == 1


BAD_NUMBERS = ["eight", "8.5", 8.5, "1e3", "0x10", "-1", -1, True, "9" * 30, "inf", "nan", "1,2"]


@pytest.mark.parametrize("key", NUMERIC_FIELDS)
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_numbers(tmp_path: Path, key: str, value: object) -> None:
    assert key in rejected(tmp_path, E.CONVERSIONFAILURE, {key: value})


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e300])
def test_non_json_floats_in_fields(value: float) -> None:
    fields = {**fixture_record("pandaJobData.out"), "maxCpuCount": value}
    assert "maxCpuCount" in failure(lambda: parse_job(fields), E.CONVERSIONFAILURE)


@pytest.mark.parametrize("value", ["False", "false", False, "0", 0, "no", "True", "true", True, "1"])
def test_boolean_fields(tmp_path: Path, value: object) -> None:
    expected = str(value).lower() in {"true", "1"}
    job = load(tmp_path, {"loopingCheck": value, "debug": value})
    assert (job.looping_check, job.debug) == (expected, expected)


@pytest.mark.parametrize("key", ["loopingCheck", "debug"])
def test_bad_boolean(tmp_path: Path, key: str) -> None:
    assert rejected(tmp_path, E.CONVERSIONFAILURE, {key: "maybe"}) == f"{key}='maybe' is not a boolean"


@pytest.mark.parametrize("value", [None, "NULL", "abc", "0", 0, "-3", "1.5", "", [1]])
def test_unidentifiable_job(tmp_path: Path, value: object) -> None:
    (record,) = read_job_records(job_file(tmp_path, {"PandaID": value}))
    assert "PandaID" in failure(lambda: job_identity(record), E.CONVERSIONFAILURE)
    assert "PandaID" in failure(lambda: parse_job(record), E.CONVERSIONFAILURE)
    diag = failure(lambda: job_identity({"jobName": "x"}), E.CONVERSIONFAILURE)
    assert diag == "job definition has no PandaID"


@pytest.mark.parametrize("spelling", NONE_SPELLINGS)
def test_missing_transformation(tmp_path: Path, spelling: object) -> None:
    diag = rejected(tmp_path, E.TRANSFORMNOTFOUND, {"transformation": spelling})
    assert diag == "job definition has no transformation"
    assert "transformation" in rejected(tmp_path, E.TRANSFORMNOTFOUND, {}, drop=["transformation"])


@pytest.mark.parametrize("key", ["transformation", "jobName"])
@pytest.mark.parametrize("bad", ["run\x00.sh", "run\n.sh", "run\x1b[2J.sh", "run\x7f"])
def test_control_characters_in_text(tmp_path: Path, key: str, bad: str) -> None:
    assert repr(bad) in rejected(tmp_path, E.CONVERSIONFAILURE, {key: bad})


def test_lone_surrogates(tmp_path: Path) -> None:
    head = '{"PandaID": 3, "transformation": "t", '
    (record,) = read_job_records(write(tmp_path, head + '"jobName": "a\\ud800"}'))
    assert "jobName" in failure(lambda: parse_job(record), E.CONVERSIONFAILURE)
    (record,) = read_job_records(write(tmp_path, head + '"logFile": "\\udcff"}'))
    failure(lambda: parse_job(record), E.CONVERSIONFAILURE)
    assert job_identity(record).log.lfn == "panda.3.job.log.tgz"


# --- files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", INPUT_COLUMNS)
def test_input_lists_must_align(tmp_path: Path, key: str) -> None:
    diag = rejected(tmp_path, E.NOTSAMELENGTH, {key: "a,b,c"})
    assert diag == f"{key} has 3 entries but inFiles has 2"


@pytest.mark.parametrize("key", OUTPUT_COLUMNS)
def test_output_lists_must_align(tmp_path: Path, key: str) -> None:
    diag = rejected(tmp_path, E.NOTSAMELENGTH, {key: "a,b,c"})
    assert diag == f"{key} has 3 entries but outFiles has 2 (1 without the log)"
    changes = {"outFiles": "a,b", "logFile": "c.tgz", **_clear_lists("outFiles"), key: "x"}
    assert rejected(tmp_path, E.NOTSAMELENGTH, changes) == f"{key} has 1 entries but outFiles has 2"


def test_entry_wise_none_and_list_alignment(tmp_path: Path) -> None:
    changes = {"GUID": "NULL,g2", "fsize": ",5", "checksum": "None,md:" + "A" * 32, "scopeIn": "NULL,NULL"}
    job = load(tmp_path, {**changes, "prodDBlockToken": "tokA,NULL", "dispatchDBlockToken": "tokD,tokB"})
    summary = [(f.guid, f.fsize, f.scope, f.storage_token) for f in job.inputs]
    assert summary == [(None, None, None, "tokA"), ("g2", 5, None, "tokB")]
    assert [f.checksum for f in job.inputs] == [None, Checksum(kind="md5", value="a" * 32)]


def test_scope_out_may_cover_the_log(tmp_path: Path) -> None:
    changes = {"scopeOut": "s.out,s.log", "destinationDBlockToken": "NULL,tokL"}
    job = load(tmp_path, changes, drop=["scopeLog"])
    assert (job.outputs[0].scope, job.log.scope, job.log.storage_token) == ("s.out", "s.log", "tokL")
    assert load(tmp_path, {"scopeOut": "s.out,s.log"}).log.scope == "test"  # scopeLog wins


def test_log_first_in_outfiles(tmp_path: Path) -> None:
    values = ["sa,sb", "dl,da,db", "E1,E2,E3", "x,y,z", "S,S,S", "t,u,v", "N,N,N"]
    assert len(values) == len(OUTPUT_COLUMNS)
    lists = dict(zip(OUTPUT_COLUMNS, values))
    job = load(tmp_path, {"outFiles": "job.log.tgz,a.root,b.root", **lists})
    summary = [(f.lfn, f.scope, f.dataset, f.ddm_endpoint, f.storage_token, f.guid) for f in job.outputs]
    assert summary == [("a.root", "sa", "da", "E2", "u", None), ("b.root", "sb", "db", "E3", "v", None)]
    log = (job.log.lfn, job.log.dataset, job.log.ddm_endpoint, job.log.guid, job.log.storage_token)
    assert log == ("job.log.tgz", "dl", "E1", "bbbb-1", "t")


def test_log_not_in_outfiles(tmp_path: Path) -> None:
    job = load(tmp_path, {"outFiles": "out.txt,extra.txt", "logFile": "other.tgz", "scopeOut": "s1,s2"})
    assert [(f.lfn, f.scope) for f in job.outputs] == [("out.txt", "s1"), ("extra.txt", "s2")]
    assert job.log == FileSpec(lfn="other.tgz", scope="test", guid="bbbb-1", role="log")


def test_fallback_log_name(tmp_path: Path) -> None:
    job = load(tmp_path, {"scopeOut": "test,test"}, drop=["logFile"])
    assert job.log.lfn == job.identity.log.lfn == "panda.1234567.job.log.tgz"
    assert [f.lfn for f in job.outputs] == ["out.txt", "job.log.tgz"]  # nothing marks it as the log now


@pytest.mark.parametrize("log_file", [None, "NULL", "../../etc/passwd", "-x.tgz", "a\x00b", "l" * 256])
def test_identity_survives_a_bad_definition(tmp_path: Path, log_file: object) -> None:
    changes = {"logFile": log_file, "attemptNr": "two", "logGUID": "None"}
    (record,) = read_job_records(job_file(tmp_path, changes))
    log = FileSpec(lfn="panda.1234567.job.log.tgz", guid=None, scope="test", role="log")
    assert job_identity(record) == JobIdentity(panda_id=1234567, attempt_nr=None, log=log,
                                               attempt_problem="attemptNr='two' is not an integer")


@pytest.mark.parametrize(("given", "kept"), [("-5", -5), ("0", 0), ("7", 7), ("+2", 2), ("3.0", 3), (None, 0)])
def test_identity_keeps_the_attempt_nr_the_job_gave(tmp_path: Path, given: str | None, kept: int) -> None:
    """The server matches reports on attemptNr: even one the definition check rejects is reported as given."""
    (record,) = read_job_records(job_file(tmp_path, {"attemptNr": given}))
    assert job_identity(record).attempt_nr == kept and job_identity(record).attempt_problem is None


UNSAFE_NAMES = ["a/b", "/abs", "..", ".", "a\\b", "-rf", "--help"]
UNSAFE_NAMES += ["a\x00b", "a\nb", "a\tb", "a\x7fb", "a\x85b"]
PLACES: list[Callable[[str], dict[str, object]]] = [
    lambda n: {"inFiles": f"input.txt,{n}"},
    lambda n: {"outFiles": f"{n},job.log.tgz"},
    lambda n: {"logFile": n, "outFiles": f"out.txt,{n}"},
    lambda n: {"logFile": n},
]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
@pytest.mark.parametrize("place", PLACES, ids=["input", "output", "log-in-outFiles", "log"])
def test_unsafe_file_names(tmp_path: Path, name: str, place: Callable[[str], dict[str, object]]) -> None:
    assert repr(name) in rejected(tmp_path, E.BADOUTPUTFILENAME, place(name))


BAD_LISTS = [("inFiles", "input.txt,,"), ("inFiles", "a,NULL"), ("outFiles", ",job.log.tgz")]
BAD_LISTS += [("inFiles", "same,same"), ("outFiles", "o,o,job.log.tgz")]
BAD_LISTS += [("outFiles", "o,job.log.tgz,job.log.tgz")]


@pytest.mark.parametrize(("key", "names"), BAD_LISTS)
def test_empty_and_duplicate_names(tmp_path: Path, key: str, names: str) -> None:
    rejected(tmp_path, E.BADOUTPUTFILENAME, {**_clear_lists(key), key: names})


@pytest.mark.parametrize("where", ["inFiles", "outFiles", "logFile"])
def test_name_length_limit(tmp_path: Path, where: str) -> None:
    blank = _clear_lists(where)
    assert load(tmp_path, {where: "n" * 255, **blank}).fields[where] == "n" * 255
    assert "256 bytes" in rejected(tmp_path, E.LFNTOOLONG, {where: "n" * 256, **blank})
    assert "256 bytes" in rejected(tmp_path, E.LFNTOOLONG, {where: "é" * 128, **blank})


def test_long_unsafe_name_is_truncated_in_diag(tmp_path: Path) -> None:
    name = "/" + "x" * 5000
    diag = rejected(tmp_path, E.BADOUTPUTFILENAME, {"logFile": name})
    assert diag == f"log file name {repr(name)[:97]}... contains a path separator"


# --- checksums ------------------------------------------------------------------------------------

# fmt: off
CHECKSUMS = [
    ("ad:0a1b2c3d", adler("0a1b2c3d")), ("AD:0A1B2C3D", adler("0a1b2c3d")), ("ad:1", adler("00000001")),
    (" ad:5d000974 ", adler("5d000974")), ("5D000974", adler("5d000974")), ("ad:000000ff", adler("000000ff")),
    ("md:" + "F" * 32, Checksum(kind="md5", value="f" * 32)),
    ("0123456789abcdefABCDEF0123456789", Checksum(kind="md5", value="0123456789abcdefabcdef0123456789")),
]
BAD_CHECKSUMS = [
    "", "ad:", "ad:123456789", "ad:0000000g", "ad:-1", "md:abc", "md:" + "0" * 33, "sha1:" + "0" * 40,
    "zz:00000001", "1234567", "0" * 10, "0" * 31, "adler32:00000001", "ad:0000 001",
]
# fmt: on


@pytest.mark.parametrize(("text", "expected"), CHECKSUMS)
def test_checksum_parse(text: str, expected: Checksum) -> None:
    assert Checksum.parse(text) == expected


@pytest.mark.parametrize("text", BAD_CHECKSUMS)
def test_checksum_rejects(text: str) -> None:
    failure(lambda: Checksum.parse(text), E.UNKNOWNCHECKSUMTYPE)


def test_checksum_value_invariant() -> None:
    failure(lambda: Checksum(kind="adler32", value="ABCDEF01"), E.UNKNOWNCHECKSUMTYPE)
    failure(lambda: Checksum(kind="md5", value="abcdef01"), E.UNKNOWNCHECKSUMTYPE)


def test_bad_checksum_in_job_names_the_file(tmp_path: Path) -> None:
    diag = rejected(tmp_path, E.UNKNOWNCHECKSUMTYPE, {"checksum": "ad:00000001,sha256:ff"})
    assert diag.startswith("checksum of 'run.sh': unrecognised checksum 'sha256:ff'")
