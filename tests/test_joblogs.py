"""Each job's log tarball holds pilot.log's head and its own part, and only its own transition records."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from tests.pilotrun import Launch
from tests.pilotserver import Dispatcher, job_spec
from tests.test_pilot_server import finish, pilot


def _tarball(server: Dispatcher, panda_id: int) -> dict[str, list[dict[str, Any]]]:
    """pilot.log and transitions.jsonl of the job's stored log tarball, as records."""
    [(fields,)] = server.query("SELECT fields FROM job_history WHERE PandaID = ? AND state = 'finished'", panda_id)
    xml = json.loads(json.loads(fields)["job_output_report"])
    [entry] = xml.values()
    path = Path(entry["surl"].removeprefix("file://localhost"))
    out: dict[str, list[dict[str, Any]]] = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if name in ("pilot.log", "transitions.jsonl"):
                handle = tar.extractfile(member)
                assert handle is not None
                out[name] = [json.loads(line) for line in handle.read().splitlines()]
    return out


def test_each_log_tarball_holds_the_head_and_its_own_part(tmp_path: Path, dispatcher: Dispatcher) -> None:
    ids = dispatcher.submit(*[job_spec("", transformation="true") for _ in range(3)])
    launch = Launch(tmp_path / "pilot")
    launch.dir.mkdir(parents=True)
    code, err = finish(pilot(launch, dispatcher.url, "--timefloor", "600"))
    assert code == 0, err
    pilot_dir = launch.pilot_dir()
    assert pilot_dir is not None
    whole = [json.loads(line) for line in (pilot_dir / "pilot.log").read_text().splitlines()]
    seen: list[list[str]] = []
    for panda_id in ids:
        logs = _tarball(dispatcher, panda_id)
        assert {r["job_id"] for r in logs["transitions.jsonl"]} == {panda_id}
        assert [r["event"] for r in logs["transitions.jsonl"]] == ["got_job", "accept", "staged_in", "payload_done"]
        lines = logs["pilot.log"]
        assert lines[0] == whole[0]  # the pilot's start is in every job's log
        taken = [r["panda_id"] for r in lines if r["event"] == "job taken"]
        assert taken == [panda_id]  # its own job, no other
        seen.append([json.dumps(r) for r in lines])
    # after the head (up to the first job taken), each line is in one tarball only, in order: together they
    # are pilot.log up to the last tarball
    head = next(i for i, line in enumerate(seen[0]) if '"job taken"' in line)
    assert all(lines[:head] == seen[0][:head] for lines in seen)
    parts = seen[0] + [line for lines in seen[1:] for line in lines[head:]]
    assert parts == [json.dumps(r) for r in whole[:len(parts)]]
