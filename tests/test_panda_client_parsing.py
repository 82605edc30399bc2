"""The PanDA client's pure parts: reply decoding, field translation, credentials from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.panda import PandaClient, StatusCode, auth_from_env, parse_reply, split_commands
from fsm_pilot.panda.fields import GETJOB_V1, UPDATE_V1, getjob_to_v1, to_legacy, update_to_v1
from fsm_pilot.panda.replies import status_of_message

#: ``update_job``'s and ``acquire_jobs``' keyword arguments in panda-server's pilot_api.py (v1):
#: v1 binds the body to them, so any other name fails the whole call.
UPDATE_JOB_ARGS = frozenset((
    "job_id", "job_status", "job_output_report", "node", "cpu_consumption_time", "cpu_consumption_unit",
    "scheduler_id", "pilot_id", "site_name", "pilot_log", "meta_data", "cpu_conversion_factor", "trans_exit_code",
    "pilot_error_code", "pilot_error_diag", "exe_error_code", "exe_error_diag", "pilot_timing", "start_time",
    "end_time", "n_events", "n_input_files", "batch_id", "attempt_nr", "job_metrics", "stdout", "job_sub_status",
    "core_count", "max_rss", "max_vmem", "max_swap", "max_pss", "avg_rss", "avg_vmem", "avg_swap", "avg_pss",
    "tot_rchar", "tot_wchar", "tot_rbytes", "tot_wbytes", "rate_rchar", "rate_wchar", "rate_rbytes", "rate_wbytes",
    "corrupted_files", "mean_core_count", "cpu_architecture_level", "grid", "source_site", "destination_site",
    "timeout",
))
ACQUIRE_JOBS_ARGS = frozenset((
    "site_name", "timeout", "memory", "disk_space", "prod_source_label", "node", "computing_element",
    "prod_user_id", "get_proxy_key", "task_id", "n_jobs", "background", "resource_type", "harvester_id",
    "worker_id", "scheduler_id", "job_type", "via_topic", "remaining_time", "target_architecture",
))


# --- replies ----------------------------------------------------------------------


def test_every_encoding_of_the_same_reply() -> None:
    legacy = parse_reply('{"StatusCode": 0, "command": "NULL"}')
    form = parse_reply(b"StatusCode=0&command=NULL")
    envelope = parse_reply('{"success": true, "message": "", "data": {"StatusCode": 0, "command": null}}')
    as_repr = parse_reply("{'success': True, 'message': '', 'data': {'StatusCode': 0, 'command': None}}")
    assert [r.encoding for r in (legacy, form, envelope, as_repr)] == ["json", "urlencoded", "v1", "v1-repr"]
    assert all(r.success and r.status == 0 for r in (legacy, form, envelope, as_repr))
    assert form.fields == {"StatusCode": "0", "command": "NULL"}
    assert as_repr.data == {"StatusCode": 0, "command": None}


def test_envelope_messages_and_data() -> None:
    no_jobs = parse_reply('{"success": false, "message": "No jobs in PanDA", "data": null}')
    assert (no_jobs.success, no_jobs.status, no_jobs.fields, no_jobs.data) == (False, 20, {}, None)
    listing = parse_reply('{"success": true, "message": "", "data": [{"job_id": 1}]}')
    assert (listing.status, listing.data) == (None, [{"job_id": 1}])
    diag = parse_reply('{"success": true, "message": "", "data": {"StatusCode": 30, "ErrorDiag": "db"}}')
    assert (diag.status, diag.message) == (30, "db")


def test_legacy_error_dialog_is_the_message() -> None:
    reply = parse_reply('{"StatusCode": 60, "errorDialog": "no production/pilot role"}')
    assert (reply.success, reply.status, reply.message) == (False, StatusCode.ROLE, "no production/pilot role")


@pytest.mark.parametrize("body", [
    "", "   \n", "ERROR : method getJob is forbidden", "<html><body>Bad Gateway</body></html>", "null", "[]",
    '"StatusCode=0"', "{broken", "{'a': open('/etc/passwd')}", "{1: 2}", '{"no": "status"}', "a=1&b=2",
    "StatusCode=zero", '{"StatusCode": true}', '{"StatusCode": "0x"}', '{"a":' * 50000, "{" + "[" * 50000,
    b"\xff\xfe\x00garbage",
])
def test_garbage_is_always_a_communication_failure(body: str | bytes) -> None:
    with pytest.raises(PilotFailure) as info:
        parse_reply(body)
    assert info.value.error == PilotError.COMMUNICATIONFAILURE
    assert len(info.value.diag) < 300


def test_repr_is_parsed_as_literals_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(PilotFailure):
        parse_reply(f"{{'success': True, 'data': __import__('pathlib').Path('{marker}').touch()}}")
    assert not marker.exists()


@pytest.mark.parametrize(("message", "code"), [
    ("No jobs in PanDA", 20), ("Timed out", 10), ("Database error", 30),
    ("production or pilot role required", 60), ("SSL secure connection is required", 70),
    ("Type error: 'job_id' must be of type int, got str.", 50), ("expecting POST, received GET", 50), ("??", None)])
def test_v1_messages_map_to_status_codes(message: str, code: int | None) -> None:
    assert status_of_message(message) == code


@pytest.mark.parametrize(("value", "commands"), [
    (None, ()), ("NULL", ()), ("", ()), ("tobekilled", ("tobekilled",)),
    ("debug,tobekilled", ("debug", "tobekilled")), (" softkill , NULL,", ("softkill",))])
def test_commands_are_split(value: str | None, commands: tuple[str, ...]) -> None:
    assert split_commands(value) == commands


# --- fields -----------------------------------------------------------------------


def test_v1_names_are_real_panda_server_arguments() -> None:
    assert {v1 for v1, _ in UPDATE_V1.values()} <= UPDATE_JOB_ARGS
    assert {v1 for v1, _ in GETJOB_V1.values()} <= ACQUIRE_JOBS_ARGS


def test_legacy_values_are_strings_like_pilot3_sends() -> None:
    form = to_legacy({"jobId": 4242, "attemptNr": 0, "startTime": 1795634546.0028293, "cpuConversionFactor": 1.0,
                      "allowOtherCountry": False, "metaData": {"a": 1}, "batchID": None, "pilotErrorDiag": ""})
    assert form == {"jobId": "4242", "attemptNr": "0", "startTime": "1795634546.0028293",
                    "cpuConversionFactor": "1.0", "allowOtherCountry": "False", "metaData": '{"a": 1}',
                    "pilotErrorDiag": ""}


def test_update_to_v1_types_and_names() -> None:
    translated = update_to_v1({
        "jobId": "4242", "state": "failed", "timestamp": "2026-11-25T19:22:28+00:00", "cpuConsumptionTime": "12.7",
        "cpuConversionFactor": "1.5", "maxRSS": "2048", "rateWBYTES": 10.5, "startTime": "1795634546.0028293",
        "endTime": "2026-11-25 19:22:28", "metaData": {"exitCode": 0}, "jobSubStatus": "NULL", "batchID": "",
        "pilotErrorCode": 1133, "coreCount": 8, "nEvents": "NULL"})
    assert translated.body == {
        "job_id": 4242, "job_status": "failed", "cpu_consumption_time": 12, "cpu_conversion_factor": 1.5,
        "max_rss": 2048, "rate_wbytes": 10.5, "start_time": "2026-11-25 19:22:26", "end_time": "2026-11-25 19:22:28",
        "meta_data": '{"exitCode": 0}', "pilot_error_code": 1133, "core_count": 8}
    assert translated.dropped == ()


def test_unknown_names_and_bad_values_are_dropped_and_reported() -> None:
    translated = update_to_v1({"jobId": 1, "state": "running", "coreCount": "many", "nEvents": float("nan"),
                               "newField": "x"})
    assert translated.body == {"job_id": 1, "job_status": "running"}
    assert set(translated.dropped) == {"coreCount", "nEvents", "newField"}


@pytest.mark.parametrize("fields", [{"state": "running"}, {"jobId": "NULL", "state": "running"},
                                    {"jobId": "abc", "state": "running"}, {"jobId": 1}])
def test_update_without_usable_id_or_state_is_an_internal_problem(fields: dict[str, object]) -> None:
    with pytest.raises(PilotFailure) as info:
        update_to_v1(fields)
    assert info.value.error == PilotError.INTERNALPILOTPROBLEM


def test_getjob_to_v1_types_flags_and_legacy_only_names() -> None:
    translated = getjob_to_v1({
        "siteName": "Q", "mem": "24105.55078125", "diskSpace": "10000", "cpu": "2596.15", "workingGroup": "",
        "allowOtherCountry": "False", "nJobs": "2", "worker_id": "17", "background": "False", "viaTopic": "True",
        "getProxyKey": "False", "harvester_id": "h1", "remaining_time": "3600", "taskID": "NULL"})
    assert translated.body == {"site_name": "Q", "memory": 24105, "disk_space": 10000, "n_jobs": 2, "worker_id": 17,
                               "background": False, "via_topic": True, "harvester_id": "h1", "remaining_time": 3600}
    assert getjob_to_v1({"getProxyKey": True}).body == {"get_proxy_key": "True"}
    assert json.dumps(translated.body)


# --- credentials ------------------------------------------------------------------


def test_auth_from_env_with_proxy_token_and_origin(tmp_path: Path) -> None:
    proxy = tmp_path / "x509up"
    proxy.write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "tok").write_text("sekrit-token\n")
    env = {"X509_USER_PROXY": str(proxy), "X509_CERT_DIR": "/etc/grid-security/certificates",
           "PANDA_AUTH_TOKEN": "tok", "PANDA_AUTH_DIR": str(tmp_path), "PANDA_AUTH_ORIGIN": "atlas.pilot"}
    auth = auth_from_env(env)
    assert (auth.cert, auth.verify, auth.origin) == (str(proxy), "/etc/grid-security/certificates", "atlas.pilot")
    assert auth.headers() == {"Authorization": "Bearer sekrit-token", "Origin": "atlas.pilot"}
    assert "sekrit" not in repr(auth) and "sekrit" not in str(auth)
    assert auth.redact("echo sekrit-token back") == "echo <redacted> back"


def test_auth_from_env_defaults_and_precedence(tmp_path: Path) -> None:
    missing = {"X509_USER_PROXY": str(tmp_path / "absent")}
    assert (auth_from_env(missing).cert, auth_from_env(missing).verify) == (None, True)  # never verify=False
    assert auth_from_env(missing).headers() == {}
    env = {**missing, "X509_CERT_DIR": "/certs"}
    assert auth_from_env(env, capath="/capath").verify == "/capath"
    assert auth_from_env(env, capath="/capath", cacert="/ca.pem").verify == "/ca.pem"
    (tmp_path / "oidc").write_text("oidc-token")
    oidc = auth_from_env({**missing, "OIDC_AUTH_TOKEN": "oidc", "OIDC_AUTH_DIR": str(tmp_path),
                          "OIDC_AUTH_ORIGIN": "vo"})
    assert oidc.headers() == {"Authorization": "Bearer oidc-token", "Origin": "vo"}


def test_inline_token_is_redacted_everywhere() -> None:
    jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJwaWxvdCJ9.c2ln"
    auth = auth_from_env({"X509_USER_PROXY": "/nonexistent", "PANDA_AUTH_TOKEN": jwt})
    assert auth.headers()["Authorization"] == f"Bearer {jwt}"
    client = PandaClient("https://panda.example:25443", auth=auth)
    assert jwt not in repr(auth) and jwt not in repr(client)


def test_bad_api_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, v1 or legacy"):
        PandaClient("http://127.0.0.1:1", api="v2")  # type: ignore[arg-type]
