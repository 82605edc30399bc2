"""The code must run on CPython 3.9 to 3.13 (EL9 worker nodes have 3.9): checked with the real interpreters.

ruff and mypy check against 3.9, but neither runs the code. Here every .py of fsm_pilot, tests and bench is
compiled by each CPython 3.9..3.13 found under pyenv (``match`` and other new syntax fail there), and the
oldest one imports every fsm_pilot module (a module-level ``X | Y`` alias or ``dataclass(kw_only=True)``
fails there). A bare pyenv interpreter lacks the runtime dependencies: modules whose import stops at one are
left to the second import test, which then skips. FSM_PILOT_COMPAT_PYTHON may name an interpreter (a venv
with the runtime dependencies) to import-check instead of the oldest pyenv one.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))) / "versions"
SUPPORTED = [(3, minor) for minor in range(9, 14)]
TIMEOUT = 120  # a hang guard, not a measurement

#: Compiles every .py under the directories given; prints one line per file that does not compile.
COMPILE = """
import pathlib, sys, warnings
warnings.simplefilter("error", SyntaxWarning)
for top in sys.argv[1:]:
    for path in sorted(pathlib.Path(top).rglob("*.py")):
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            print(f"{path}:{exc.lineno}: {exc.msg}")
"""

#: Imports every fsm_pilot module from the checkout (argv[1]); a missing runtime dependency (argv[2:])
#: leaves the module unjudged. Prints {"imported": n, "failed": {module: error}, "unjudged": {module: dep}}.
IMPORT = """
import importlib, json, pathlib, sys, traceback
root = sys.argv[1]
sys.path.insert(0, root)
deps = set(sys.argv[2:])
result = {"imported": 0, "failed": {}, "unjudged": {}}
for path in sorted(pathlib.Path(root, "fsm_pilot").rglob("*.py")):
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__main__":
        continue  # importing it runs the program
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    try:
        module = importlib.import_module(name)
        assert module.__file__ is not None and module.__file__.startswith(root), module.__file__
        result["imported"] += 1
    except ModuleNotFoundError as exc:
        if exc.name in deps:
            result["unjudged"][name] = exc.name
        else:
            result["failed"][name] = traceback.format_exc(limit=-1)
    except Exception:
        result["failed"][name] = traceback.format_exc(limit=-1)
print(json.dumps(result))
"""


def _pyenv_pythons() -> dict[tuple[int, int], Path]:
    """The newest patch release of each supported minor version installed under pyenv."""
    found = []
    for path in PYENV_VERSIONS.glob("*/bin/python"):
        version = re.fullmatch(r"3\.(\d+)\.(\d+)", path.parent.parent.name)  # not 3.13.0t, not pypy
        if version:
            found.append(((3, int(version[1]), int(version[2])), path))
    return {(major, minor): path for (major, minor, _), path in sorted(found) if (major, minor) in SUPPORTED}


def _runtime_deps() -> list[str]:
    """Top-level names of the declared runtime dependencies (each imports under its distribution name)."""
    requires = importlib.metadata.requires("fsm-pilot") or []
    names = [re.split(r"[^A-Za-z0-9_.-]", req, maxsplit=1)[0] for req in requires if "extra ==" not in req]
    return sorted(name.lower().replace("-", "_") for name in names)


@pytest.mark.parametrize("minor", SUPPORTED, ids=lambda v: f"{v[0]}.{v[1]}")
def test_every_file_compiles(minor: tuple[int, int]) -> None:
    python = _pyenv_pythons().get(minor)
    if python is None:
        pytest.skip(f"no CPython {minor[0]}.{minor[1]} under {PYENV_VERSIONS}: not compile-checked")
    dirs = [str(ROOT / top) for top in ("fsm_pilot", "tests", "bench")]
    proc = subprocess.run([str(python), "-I", "-c", COMPILE, *dirs], capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == "", f"does not compile on {python}:\n{proc.stdout}"


@pytest.fixture(scope="module")
def imported() -> dict[str, Any]:
    """Every fsm_pilot module imported by FSM_PILOT_COMPAT_PYTHON, else by the oldest supported pyenv CPython."""
    chosen = os.environ.get("FSM_PILOT_COMPAT_PYTHON")
    pythons = _pyenv_pythons()
    python = Path(chosen) if chosen else pythons[min(pythons)] if pythons else None
    if python is None:
        pytest.skip(f"no supported CPython under {PYENV_VERSIONS} and no FSM_PILOT_COMPAT_PYTHON: not import-checked")
    proc = subprocess.run([str(python), "-I", "-c", IMPORT, str(ROOT), *_runtime_deps()], capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])  # a module might print
    result["python"] = str(python)
    return result


def test_modules_import_on_oldest_python(imported: dict[str, Any]) -> None:
    failed = "\n".join(f"{name}: {error}" for name, error in imported["failed"].items())
    assert not failed, f"fail to import on {imported['python']}:\n{failed}"
    assert imported["imported"] > 0


def test_modules_needing_dependencies_import_on_oldest_python(imported: dict[str, Any]) -> None:
    unjudged = imported["unjudged"]
    if unjudged:
        missing = ", ".join(sorted(set(unjudged.values())))
        pytest.skip(f"{imported['python']} lacks {missing}: {len(unjudged)} modules not import-checked "
                    "here (tests/test_dist.py imports them all from the tarball, vendored dependencies included)")
