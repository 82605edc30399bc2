"""dist/pilot3.tar.gz: reproducible, within budget, self-contained, and runnable by a bare python3.

Building needs the pinned wheels: the first build downloads them from PyPI into
build/wheels (about 1 MB); later builds reuse them.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from deploy import build_tarball as builder
from deploy import pilot as entry
from fsm_pilot import __version__
from tests.deploy_env import (
    PYENV,
    REQUIRED,
    ROOT,
    WRAPPER,
    WRAPPER_SHA256,
    bare_python,
    build_tarball,
    interpreters,
)

BUDGET = 2 * 2**20
#: Every fsm_pilot module (but the __main__ ones, which run), imported from the tarball's paths.
IMPORT_ALL = """
import importlib, pkgutil, platform, sys
sys.path[:0] = ['pilot3', 'pilot3/vendor/lib', 'pilot3/vendor/psutil-' + platform.machine()]
import fsm_pilot, psutil
names = [m.name for m in pkgutil.walk_packages(fsm_pilot.__path__, 'fsm_pilot.') if not m.name.endswith('__main__')]
for name in names:
    importlib.import_module(name)
print(len(names), psutil.__file__)
"""
#: ELF e_machine of each psutil build (the ELF header's bytes 18-19, little-endian).
ELF_MACHINES = {"x86_64": 62, "aarch64": 183}


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tarball(tmp_path_factory.mktemp("dist") / "pilot3.tar.gz")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_inputs_give_the_same_bytes_wherever_and_whenever_built(tarball: Path, tmp_path: Path) -> None:
    copy = tmp_path / "checkout"
    (copy / "deploy").mkdir(parents=True)
    shutil.copytree(ROOT / "fsm_pilot", copy / "fsm_pilot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "deploy" / "pilot.py", copy / "deploy" / "pilot.py")  # new mtimes, another path
    again = tmp_path / "again.tar.gz"
    builder.build(again, ROOT / "build" / "wheels", root=copy)
    assert _digest(again) == _digest(tarball)
    (copy / "fsm_pilot" / "__init__.py").write_text('__version__ = "9.9.9"\n')
    builder.build(again, ROOT / "build" / "wheels", root=copy)
    assert _digest(again) != _digest(tarball), "a changed input must change the tarball"


def test_one_top_directory_entry_point_version_and_budget(tarball: Path) -> None:
    assert tarball.stat().st_size <= BUDGET
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        assert {n.split("/")[0] for n in names} == {"pilot3"}
        pilotversion = tar.extractfile("pilot3/PILOTVERSION")
        assert pilotversion is not None and pilotversion.read().decode().strip() == __version__
        members = tar.getmembers()
    assert "pilot3/pilot.py" in names and "pilot3/fsm_pilot/states/running.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, builder.DEFAULT_EPOCH)}


def test_every_pin_is_vendored_with_its_licence(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        index_file = tar.extractfile("pilot3/VENDORED.txt")
        assert index_file is not None
        index = index_file.read().decode()
    for pin in builder.read_lock():
        assert f"{pin.name} {pin.version} ({pin.target}) {pin.wheel} sha256:{pin.sha256}" in index
        dist_info = f"pilot3/vendor/{pin.target}/{pin.name}-{pin.version}.dist-info/"
        assert any(n.startswith(dist_info) and "LICEN" in n.upper() for n in names), pin.wheel
    for line in index.splitlines():
        if line.strip().startswith("licence: "):
            assert f"pilot3/{line.split(': ', 1)[1]}" in names


def test_psutil_is_built_for_the_machine_whose_directory_it_is_in(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        for machine, elf_machine in ELF_MACHINES.items():
            [so] = [m for m in tar.getmembers()
                    if m.name.startswith(f"pilot3/vendor/psutil-{machine}/psutil/_psutil_linux")]
            handle = tar.extractfile(so)
            assert handle is not None
            header = handle.read(20)
            assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == elf_machine
            assert so.mode & 0o111, "a shared object must be executable where noexec is not in force"


def test_vendor_paths_take_psutil_only_for_a_glibc_node_with_its_build(tmp_path: Path) -> None:
    (tmp_path / "vendor" / "psutil-x86_64").mkdir(parents=True)
    here, lib = str(tmp_path), str(tmp_path / "vendor" / "lib")
    assert entry.vendor_paths(here, "x86_64", "glibc") == [here, lib, str(tmp_path / "vendor" / "psutil-x86_64")]
    assert entry.vendor_paths(here, "x86_64", "") == [here, lib]  # musl: the manylinux build cannot load
    assert entry.vendor_paths(here, "riscv64", "glibc") == [here, lib]  # no wheel for this machine
    assert entry.libc() == "glibc"


def test_the_pythons_this_run_must_test_are_here() -> None:
    missing = [minor for minor in REQUIRED if minor not in interpreters()]
    assert not missing, f"FSM_PILOT_REQUIRE_PYTHONS names {missing}, not found under {PYENV}"


def test_the_tarball_imports_everything_with_only_the_standard_library(tarball: Path, tmp_path: Path) -> None:
    found = interpreters()
    for minor, interpreter in sorted(found.items()):
        node = tmp_path / minor
        node.mkdir()
        python = bare_python(interpreter, node / "python") / "python3"
        with tarfile.open(tarball) as tar:
            tar.extractall(node, filter="data")
        bare = subprocess.run([str(python), "-c", "import requests"], capture_output=True, text=True, check=False)
        assert bare.returncode != 0, f"python {minor} is not bare: it imports requests by itself"
        probe = ("import runpy, sys; sys.argv = ['pilot.py', '--help']; "
                 "runpy.run_path('pilot3/pilot.py', run_name='__main__')")
        shown = subprocess.run([str(python), "-c", probe], cwd=node, capture_output=True, text=True, check=False)
        assert shown.returncode == 0 and "--harvester-submit-mode" in shown.stdout, (minor, shown.stderr[-2000:])
        loaded = subprocess.run([str(python), "-c", IMPORT_ALL], cwd=node, capture_output=True, text=True,
                                check=False)
        assert loaded.returncode == 0, (minor, loaded.stderr[-2000:])
        modules, psutil_file = loaded.stdout.split()
        assert int(modules) > 100 and "pilot3/vendor/psutil-" in psutil_file


def test_a_python_too_old_for_the_pilot_gets_a_clear_message_and_65(tmp_path: Path) -> None:
    olds = sorted(PYENV.glob("3.[678].*/bin/python3"))
    if not olds:
        pytest.skip("no Python older than 3.9 on this machine (pyenv 3.6-3.8): nothing to refuse")
    for old in olds:
        done = subprocess.run([str(old), str(ROOT / "deploy" / "pilot.py"), "-q", "Q"], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 65, (old, done.stderr)
        assert "fsm-pilot needs Python 3.9 or newer" in done.stderr


def test_the_wrapper_kept_for_the_tests_is_the_unmodified_one() -> None:
    assert _digest(WRAPPER) == WRAPPER_SHA256
