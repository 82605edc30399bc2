"""The transport encodes request bodies itself: the bytes and Content-Type must be requests' own."""

from __future__ import annotations

import pytest
import requests

from fsm_pilot.panda.transport import Call, _body

FORMS = [
    {"jobId": "1", "state": "finished", "pilotLog": "a b&c=d\n+é→%", "xml": '<a b="c"/>'},
    {"node": "wn 1", "empty": "", "none": None},  # requests drops a None value
]
JSONS = [
    {"job_id": 1, "state": "running", "log": "é→ \"q\"", "metrics": {"a": [1, 2.5, None, True]}},
    {"nested": {"x": {"y": []}}, "big": 10**30},
]


def _requests_own(**kw: object) -> tuple[object, str | None]:
    prepared = requests.Request("POST", "http://127.0.0.1:1/x", **kw).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    return body, prepared.headers.get("Content-Type")


@pytest.mark.parametrize("form", FORMS)
def test_a_form_body_is_what_requests_sends(form: dict[str, str]) -> None:
    headers: dict[str, str] = {}
    assert (_body(Call("x", "legacy", "POST", "u", form=form), headers), headers["Content-Type"]) \
        == _requests_own(data=form)


@pytest.mark.parametrize("body", JSONS)
def test_a_json_body_is_what_requests_sends(body: dict[str, object]) -> None:
    headers: dict[str, str] = {}
    assert (_body(Call("x", "v1", "POST", "u", json=body), headers), headers["Content-Type"]) \
        == _requests_own(json=body)


def test_no_body_for_a_get() -> None:
    headers: dict[str, str] = {}
    assert _body(Call("x", "plain", "GET", "u"), headers) is None and headers == {}


def test_a_nan_is_refused_as_requests_refuses_it() -> None:
    with pytest.raises(ValueError):
        _body(Call("x", "v1", "POST", "u", json={"cpu": float("nan")}), {})
    with pytest.raises(requests.RequestException):  # the transport fails both the same way (_fatal)
        _requests_own(json={"cpu": float("nan")})
