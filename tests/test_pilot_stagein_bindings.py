"""The XRootD and gfal2 Python bindings as copytools: real pilots under the system Python read the real SE.

Debian's python3-xrootd and python3-gfal2 import only under /usr/bin/python3,
so the pilot runs from a venv made by it with --system-site-packages (as a site
would run it); a .pth file adds this source tree and the test venv's
dependencies (same CPython minor version, so the same ABI). The pilot's copies
run child/bindings_copy.py with that interpreter.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

import fsm_pilot
from fsm_pilot.errors import PilotError, PilotFailure
from fsm_pilot.stagein import get_copytool
from fsm_pilot.storage import deterministic_path
from tests.se_helpers import adler32
from tests.test_pilot_stagein_se import BASE, SCOPE, Site, _staged, se_site
from tests.xrootd_se import StorageElement

SYSTEM_PYTHON = "/usr/bin/python3"
PROBE = "import sys, XRootD, gfal2; print('%d.%d' % sys.version_info[:2])"


def _system_python_problem() -> str | None:
    """Why the bindings cannot be tested here (one line), or None."""
    try:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return f"no {SYSTEM_PYTHON}: {exc}"
    if probe.returncode != 0:
        return f"{SYSTEM_PYTHON} cannot import XRootD and gfal2 (apt-get install python3-xrootd python3-gfal2)"
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if probe.stdout.strip() != mine:
        return f"{SYSTEM_PYTHON} is {probe.stdout.strip()}, the test dependencies are for {mine}"
    return None


@pytest.fixture(scope="module")
def system_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A venv of the system Python with its site packages, seeing this tree and the test venv's packages."""
    problem = _system_python_problem()
    if problem is not None:
        pytest.skip(problem)
    venv = tmp_path_factory.mktemp("sysvenv") / "venv"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    tree = Path(fsm_pilot.__file__).parent.parent
    Path(purelib, "fsm_pilot_tests.pth").write_text(f"{tree}\n{sysconfig.get_paths()['purelib']}\n")
    yield str(python)


@pytest.fixture
def site(tmp_path: Path, storage_element: StorageElement) -> Iterator[Site]:
    yield from se_site(tmp_path, storage_element)


def test_pilot_reads_root_and_davs_through_the_bindings(site: Site, system_python: str) -> None:
    """xrootd reads root://; it cannot read davs://, so gfal2 reads the other input."""
    a, b = b"alpha\n" * 1000, b"beta\n" * 3000
    panda_id = site.submit("-c 'cat a.dat b.dat > out.txt'", {
        "a.dat": (a, site.replica("a.dat", a), "SE_ROOT"), "b.dat": (b, site.replica("b.dat", b), "SE_DAVS")})
    code, err = site.run(["xrootd", "gfal2"], python=system_python)
    assert code == 0, err
    assert site.final(panda_id)["state"] == "finished", err
    assert _staged(err) == {"a.dat": f"xrootd {site.se.url('root')}{BASE}/{deterministic_path(SCOPE, 'a.dat')}",
                            "b.dat": f"gfal2 {site.se.url('davs')}{BASE}/{deterministic_path(SCOPE, 'b.dat')}"}


@pytest.mark.parametrize("reader", [("SE_ROOT", "xrootd"), ("SE_DAVS", "gfal2")])
@pytest.mark.parametrize(("case", "code"), [("missing", 1331), ("corrupt", 1171)])
def test_binding_failures_get_the_command_codes(site: Site, system_python: str, reader: tuple[str, str],
                                               case: str, code: int) -> None:
    """The bindings' own errors (their library checks the catalog adler32) map as the commands' do."""
    endpoint, copytool = reader
    data = b"input bytes\n" * 2000
    if case == "corrupt":
        site.replica("in.dat", data.replace(b"input", b"INPUT", 1))
    panda_id = site.submit("-c true", {"in.dat": (data, adler32(data), endpoint)})
    exit_code, err = site.run([copytool], python=system_python)
    assert exit_code == 0, err
    final = site.final(panda_id)
    assert (final["state"], final["pilot_error_code"]) == ("failed", code), final
    assert final["pilot_error_diag"].startswith(copytool), final


def test_command_names_fall_back_to_the_bindings(system_python: str, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """Queuedata says xrdcp/gfal: the command when installed, else the binding if the interpreter imports it."""
    show = "from fsm_pilot.stagein import get_copytool as g; print(g('xrdcp').name, g('gfal').name)"
    for path, names in ((None, "xrdcp gfal"), (str(tmp_path), "xrootd gfal2")):
        env = {"PATH": path} if path else None
        out = subprocess.run([system_python, "-c", show], capture_output=True, text=True, check=True, timeout=60,
                             env=env).stdout.split()
        assert " ".join(out) == names
    if importlib.util.find_spec("XRootD") is None:  # this interpreter has no bindings: nothing to fall back to
        monkeypatch.setenv("PATH", str(tmp_path))
        with pytest.raises(PilotFailure) as failure:
            get_copytool("xrdcp")
        assert failure.value.error == PilotError.NOTIMPLEMENTED
