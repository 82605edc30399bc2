"""The pilot keeps out of its memory what it never uses while it waits, and all of it still works when used.

- requests imports without its character detector, and still decodes.
- asyncio and importlib.metadata (imported by structlog and urllib3 for code a pilot never runs) are
  stand-ins until first used; then the real modules load, on every supported CPython.
- a real pilot watching a real payload has loaded none of the modules made lazy for that (observed
  from inside by a wrapper that records sys.modules when the pilot first waits on its payload).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pilotrun import Launch, started, wait_for
from tests.pilotserver import Dispatcher, job_spec
from tests.test_python_compat import SUPPORTED, _pyenv_pythons

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
from fsm_pilot.lean import skip_unused
skip_unused()
import sys, requests
assert "charset_normalizer" not in [m for m, v in sys.modules.items() if v is not None], "loaded"
reply = requests.Response()
reply._content = "caf\\u00e9".encode()
print(reply.apparent_encoding, reply.text)
"""


def test_requests_imports_without_a_charset_detector_and_says_nothing() -> None:
    # a fresh interpreter: this test process has requests (and its detector) loaded already
    done = subprocess.run([sys.executable, "-W", "default", "-c", CHECK], check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "utf-8 caf\u00e9"
    assert done.stderr == ""  # no RequestsDependencyWarning on the pilot's console


#: Standard library only (lean.py is): runs on a bare pyenv CPython. argv[1] is the checkout.
DEFERRED_THEN_USED = """
import sys
sys.path.insert(0, sys.argv[1])
from fsm_pilot.lean import defer
defer("asyncio")
defer("importlib.metadata", ("version",))
import asyncio, importlib, importlib.metadata
from importlib.metadata import version
stand_in = asyncio
assert "asyncio.events" not in sys.modules and "__file__" not in vars(asyncio), "asyncio was loaded"
assert "__file__" not in vars(importlib.metadata), "importlib.metadata was loaded"
async def three():
    return 3
assert asyncio.run(three()) == 3  # the first use loads the real asyncio, through the stand-in
assert sys.modules["asyncio"] is not stand_in and sys.modules["asyncio"].__file__
try:
    version("fsm-pilot-no-such-distribution")
except Exception as exc:  # the real function answered
    assert type(exc).__name__ == "PackageNotFoundError", repr(exc)
assert importlib.metadata is sys.modules["importlib.metadata"] and "__file__" in vars(importlib.metadata)
print("ok")
"""

#: A submodule imported before its package is used: loaded once, and the package is the real one.
SUBMODULE_FIRST = """
import sys
sys.path.insert(0, sys.argv[1])
from fsm_pilot.lean import defer
defer("asyncio")
import asyncio.events
events = sys.modules["asyncio.events"]
assert asyncio is sys.modules["asyncio"] and asyncio.__file__
assert asyncio.events is events and asyncio.get_event_loop_policy is events.get_event_loop_policy  # one copy
print("ok")
"""


@pytest.mark.parametrize("script", [DEFERRED_THEN_USED, SUBMODULE_FIRST], ids=["used", "submodule_first"])
@pytest.mark.parametrize("minor", SUPPORTED, ids=lambda v: f"{v[0]}.{v[1]}")
def test_a_deferred_module_is_real_once_used(minor: tuple[int, int], script: str) -> None:
    python = _pyenv_pythons().get(minor)
    if python is None:
        pytest.skip(f"no CPython {minor[0]}.{minor[1]} under pyenv")
    done = subprocess.run([str(python), "-I", "-c", script, str(ROOT)], check=False, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "ok\n")


#: Runs the pilot (argv[2:]) as ``python -m fsm_pilot`` does; when fsm_pilot.watch is loaded, its
#: wait_payload is wrapped to write {module: its file or None} to argv[1] the first time the pilot waits.
OBSERVED_PILOT = """
import json, os, runpy, sys
from importlib.machinery import PathFinder

out = sys.argv[1]


class Observer:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "fsm_pilot.watch":
            return None
        spec = PathFinder.find_spec(name, path)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            wait = module.wait_payload

            def observed(*args, **kwargs):
                if not os.path.exists(out):
                    modules = {n: vars(m).get("__file__") for n, m in list(sys.modules.items()) if m is not None}
                    with open(out + ".tmp", "w") as f:
                        json.dump(modules, f)
                    os.replace(out + ".tmp", out)
                return wait(*args, **kwargs)

            module.wait_payload = observed

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, Observer)
sys.argv = ["fsm_pilot", *sys.argv[2:]]
runpy.run_module("fsm_pilot", run_name="__main__", alter_sys=True)
"""

#: Loaded while a payload runs, they would cost memory for nothing: operator tools, other job sources,
#: failure paths, stage-out, and what the pilot's libraries import for code it never runs.
NOT_WHILE_WATCHING = (
    "asyncio", "concurrent.futures", "importlib.metadata", "charset_normalizer", "chardet",
    "fsm_pilot.jobfile", "fsm_pilot.harvester.jobrequest", "fsm_pilot.harvester.files",
    "fsm_pilot.logtail", "fsm_pilot.flightrecord", "fsm_pilot.finish", "fsm_pilot.stageout",
    "fsm_pilot.dispatcher", "fsm_pilot.replay", "fsm_pilot.diagram", "fsm_pilot.docs",
)


def test_a_watching_pilot_has_not_loaded_what_it_does_not_need(dispatcher: Dispatcher, tmp_path: Path) -> None:
    [panda_id] = dispatcher.submit(job_spec("-c 'exec sleep 300'"))
    launch = Launch(tmp_path / "pilot")
    launch.dir.mkdir(parents=True)
    dump = tmp_path / "modules.json"
    proc = started(subprocess.Popen(
        [sys.executable, "-c", OBSERVED_PILOT, str(dump), "run", "-q", "TEST_QUEUE", "-j", "managed", "-t",
         "-a", str(launch.dir), "--url", dispatcher.url, "--timefloor", "0", "--min-free-disk", "1000"],
        cwd=launch.dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    wait_for(dump.exists, timeout=60, what="the pilot watching its payload")
    assert dispatcher.status(panda_id)[panda_id] in ("starting", "running")
    modules: dict[str, str | None] = json.loads(dump.read_text())
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert modules.get("fsm_pilot.watch") and modules.get("structlog") and modules.get("requests")  # it is a pilot
    # a deferred module may be there as its stand-in (no file): never as the real one
    assert [name for name in NOT_WHILE_WATCHING if modules.get(name)] == []
    assert not [name for name in modules if name.startswith("asyncio.")]
