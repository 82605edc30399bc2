"""Usage accounting: a real payload that allocates and writes, and the arithmetic on fake samples."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsm_pilot.monitor import Sample, UsageAccumulator, cpu_fields, job_metrics, sample_tree
from fsm_pilot.monitor.usage import Series, format_job_metrics
from fsm_pilot.payload import Payload, Usage, kill_tree, start_payload, wait_payload

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only pilot")

DEADLINE = 30.0
MIB = 1 << 20
ALLOCATED = 50 * MIB
WRITTEN = 4 * MIB
#: Holds 50 MiB of touched memory, writes 4 MiB, says "ready", then waits for "stop" (60 s at most).
PAYLOAD = f"""
import time
from pathlib import Path
block = b"\\x01" * {ALLOCATED}
with open("written.dat", "wb") as out:
    for _ in range({WRITTEN // MIB}):
        out.write(b"y" * {MIB})
Path("ready").write_text(str(len(block)))
deadline = time.monotonic() + 60
while not Path("stop").exists() and time.monotonic() < deadline:
    time.sleep(0.02)
"""


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.fixture
def hog(tmp_path: Path) -> Iterator[Payload]:
    """The payload under a shell that stays its parent, so the tree has two processes."""
    argv = ["sh", "-c", '"$0" -c "$1"; echo done', sys.executable, PAYLOAD]
    payload = start_payload(argv, tmp_path, tmp_path / "payload.stdout", tmp_path / "payload.stderr",
                            {"PATH": os.environ.get("PATH", os.defpath)})
    yield payload
    kill_tree(payload, 0.5)
    payload.close()


def test_a_real_payload_is_accounted(hog: Payload, tmp_path: Path) -> None:
    wait_for(tmp_path / "ready")
    sample = sample_tree(hog, time.monotonic())
    assert sample.usage.nprocs >= 2
    assert sample.usage.rss_kb >= ALLOCATED // 1024
    assert sample.usage.pss_kb is None or sample.usage.pss_kb >= ALLOCATED // 1024
    assert sample.vmem_kb >= sample.usage.rss_kb and sample.swap_kb is not None
    assert sample.io["wchar"] >= WRITTEN

    acc = UsageAccumulator(started=hog.start_monotonic)
    acc.add(sample)
    (tmp_path / "stop").touch()
    assert wait_payload(hog, None, DEADLINE) == "exited" and hog.returncode == 0

    fields = acc.update_fields()
    assert fields["maxRSS"] >= ALLOCATED // 1024 and fields["avgRSS"] == fields["maxRSS"]
    if sample.usage.pss_kb is not None:
        assert fields["maxPSS"] >= ALLOCATED // 1024
    assert fields["maxVMEM"] >= fields["maxRSS"] and "maxSWAP" in fields
    assert fields["totWCHAR"] >= WRITTEN and fields["rateWCHAR"] >= 1
    assert {"totRCHAR", "totRBYTES", "totWBYTES", "rateRCHAR", "rateRBYTES", "rateWBYTES"} <= fields.keys()


def test_series_is_time_weighted() -> None:
    series = Series()
    assert series.mean() is None
    series.add(0.0, 0.0)
    assert series.mean() == 0.0
    series.add(1.0, 100.0)  # 1 s ramping 0 -> 100: area 50
    series.add(11.0, 100.0)  # 10 s at 100: area 1000
    assert series.peak == 100.0 and series.mean() == pytest.approx(1050 / 11)


def sample(mono: float, rss: int, pss: int | None = None, io: int = 0, cpu: float = 0.0) -> Sample:
    counters = {"rchar": io, "wchar": 2 * io, "read_bytes": io // 2, "write_bytes": io}
    return Sample(mono, Usage(rss, pss, 1, cpu), vmem_kb=3 * rss, swap_kb=0, io=counters)


def test_accumulator_keeps_maxima_when_processes_exit() -> None:
    acc = UsageAccumulator(started=100.0)
    acc.add(sample(110.0, 1000, pss=900, io=5000, cpu=8.0))
    acc.add(sample(130.0, 3000, pss=None, io=1000, cpu=2.0))  # a child exited: its counters left the sum
    fields = acc.update_fields()
    assert fields["maxRSS"] == 3000 and fields["avgRSS"] == 2000
    assert fields["maxVMEM"] == 9000 and fields["maxSWAP"] == 0
    assert fields["maxPSS"] == 900 and fields["avgPSS"] == 900  # only the sample that had PSS counts
    assert fields["totRCHAR"] == 5000 and fields["totWCHAR"] == 10000 and fields["totRBYTES"] == 2500
    assert fields["rateRCHAR"] == round(5000 / 30) == 167 and fields["rateWBYTES"] == round(5000 / 30)
    assert acc.cpu_seconds == 8.0
    acc.note_cpu(9.5)
    acc.note_cpu(1.0)
    assert acc.cpu_seconds == 9.5


def test_nothing_measured_means_no_fields() -> None:
    acc = UsageAccumulator(started=0.0)
    assert acc.update_fields() == {}
    assert job_metrics(acc, state="finished") == ""


def test_job_metrics_from_measurements() -> None:
    acc = UsageAccumulator(started=0.0)
    acc.add(sample(100.0, 10, io=4000, cpu=390.0))
    acc.note_workdir(5000)
    acc.note_workdir(3000)
    running = job_metrics(acc, state="running", n_events=10, input_bytes=1000)
    assert running == "actualCoreCount=4 nEvents=10 readbyterate=2.00"
    final = job_metrics(acc, state="failed", n_events_w=3, extra={"lsetup_time": 5})
    assert final == "actualCoreCount=4 nEventsW=3 workDirSize=5000 lsetup_time=5"


def test_job_metrics_fit_in_500_characters_by_whole_entries() -> None:
    text = format_job_metrics([(f"key{index}", "v" * 40) for index in range(20)])
    assert len(text) <= 500 and text.endswith("v" * 40) and text.count("=") == len(text.split())
    assert format_job_metrics([("a", 1), ("empty", ""), ("b", 2)]) == "a=1 b=2"


@pytest.mark.parametrize(("seconds", "model", "expected"), [
    (12.4, "AMD EPYC", {"cpuConsumptionTime": 12, "cpuConsumptionUnit": "s+AMD EPYC", "cpuConversionFactor": 1.0}),
    (0.2, "", {"cpuConsumptionUnit": "s", "cpuConversionFactor": 1.0}),
    (2e9, "", {"cpuConsumptionUnit": "s", "cpuConversionFactor": 1.0}),
])
def test_cpu_fields(seconds: float, model: str, expected: dict[str, object]) -> None:
    assert cpu_fields(seconds, model) == expected
