"""A pilot's life beyond one job against panda-server 1.0.4: draining a queue, and Harvester's worker status."""

from __future__ import annotations

from tests.pandaserver.cases import Case
from tests.pandaserver.stack import QUEUE

HARVESTER = "fsm-ci-harvester"
WORKER_ID = 4242


def test_multi_job_pilot_drains_ten_jobs(case: Case) -> None:
    ids = case.submit(*({"transformation": "bash", "jobPars": f"-c 'echo {n} > out{n}.txt'",
                         "outFiles": f"out{n}.txt", "scopeOut": "ci.outputs", "scopeLog": "ci.logs"}
                        for n in range(10)))
    launch = case.launch()
    run = case.run_pilot(launch, "--timefloor", "3600", timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    taken = [e for e in case.exchanges() if e["path"] == "/api/v1/pilot/acquire_jobs"]
    assert len(taken) == 11  # ten jobs, then "No jobs in PanDA" ends the pilot

    case.finalize(*ids)
    for panda_id in ids:
        assert case.archived(panda_id)["jobstatus"] == "finished"
        assert {row["status"] for row in case.files(panda_id).values()} == {"ready"}
    assert (launch / "pandaIDs.out").read_text().split() == [str(i) for i in ids]


def test_harvester_worker_status(case: Case) -> None:
    worker_id = WORKER_ID
    registered = case.v1("harvester/update_workers", {"harvester_id": HARVESTER, "workers": [
        {"workerID": worker_id, "batchID": "1", "queueName": QUEUE, "computingSite": QUEUE, "status": "submitted",
         "nCore": 1, "nJobs": 1, "jobType": "managed", "resourceType": "SCORE", "computingElement": "ce.local",
         "submissionHost": "localhost", "harvesterHost": "localhost", "syncLevel": 0}]})
    assert registered["success"], registered
    [panda_id] = case.submit({"transformation": "bash", "jobPars": "-c 'echo worker'", "scopeLog": "ci.logs"})
    launch = case.launch()
    run = case.run_pilot(launch, env={"HARVESTER_ID": HARVESTER, "HARVESTER_WORKER_ID": str(worker_id)})
    assert run.returncode == 0, run.stderr[-3000:]

    [worker] = case.rows(f"SELECT * FROM doma_panda.harvester_workers WHERE harvesterid = '{HARVESTER}' "
                         f"AND workerid = {worker_id}")
    assert worker["pilotstatus"] == "finished"
    assert worker["pilotstarttime"] is not None and worker["pilotendtime"] is not None
    assert worker["pilotstarttime"] <= worker["pilotendtime"]
    case.finalize(panda_id)
    assert case.archived(panda_id)["jobstatus"] == "finished"
