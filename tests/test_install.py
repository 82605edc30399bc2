"""The wheel: only the ``fsm_pilot`` name installed, and a job run by the installed console script.

Building the wheel and installing its dependencies use the package index
(as ``pip install`` at a site does).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fsm_pilot import __version__
from tests.deploy_env import ROOT
from tests.pilotrun import QUEUE, job_def, make_launch


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
                   check=True, stdout=subprocess.DEVNULL)
    [built] = out.glob("fsm_pilot-*.whl")
    return built


def test_the_wheel_installs_no_generic_top_level_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        assert "fsm_pilot/states/running.py" in archive.namelist()
    assert tops == {"fsm_pilot", f"fsm_pilot-{__version__}.dist-info"}


def test_the_installed_console_script_and_module_run_a_job(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], check=True,
                   stdout=subprocess.DEVNULL)
    shown = subprocess.run([str(venv / "bin" / "python"), "-m", "fsm_pilot", "--version"], capture_output=True,
                           text=True, check=True, cwd=tmp_path)
    assert shown.stdout.strip() == f"fsm-pilot {__version__}"
    launch = make_launch(tmp_path / "site", [job_def(4242, "-c 'echo done > out.txt'", ("out.txt",))],
                         timefloor=0)
    cmd = [str(venv / "bin" / "fsm-pilot"), "run", "-q", QUEUE, "-t", "-a", str(launch.dir), "--min-free-disk",
           "1000", "--harvester-submit-mode", "PUSH", "-z"]
    done = subprocess.run(cmd, cwd=launch.dir, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert launch.reports()[4242]["state"] == "finished"
    assert list(launch.storage.rglob("out.txt"))
