"""Build dist/pilot3.tar.gz: fsm-pilot as the production wrapper fetches and launches it.

The tarball holds one top directory, ``pilot3/``: the entry point ``pilot.py``,
``PILOTVERSION``, the ``fsm_pilot`` package and ``vendor/`` with every runtime
dependency unpacked from the wheels pinned in deploy/vendor.lock (sha256
checked; their licences travel inside their ``.dist-info``, indexed in
``pilot3/VENDORED.txt``). The same inputs give the same bytes: entries are
sorted, owners, modes and times are fixed, and gzip records no name or time.
Wheels are fetched once with ``pip download`` into a cache dir.

Usage: python deploy/build_tarball.py [--output dist/pilot3.tar.gz] [--wheels build/wheels]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "deploy" / "vendor.lock"
TOP = "pilot3"
#: Entry times when SOURCE_DATE_EPOCH is not set: 2026-01-01T00:00:00Z (tar warns about times near 1970).
DEFAULT_EPOCH = 1767225600
#: The oldest Python the tarball supports; pure wheels are fetched as for it.
PYTHON = "3.9"
LICENCE_NAMES = ("LICENSE", "LICENCE", "COPYING", "NOTICE")


@dataclass(frozen=True)
class Pin:
    """One vendored wheel: where it is unpacked (under pilot3/vendor/), its file name and sha256."""

    target: str
    wheel: str
    sha256: str

    @property
    def name(self) -> str:
        return self.wheel.split("-")[0]

    @property
    def version(self) -> str:
        return self.wheel.split("-")[1]


def read_lock(path: Path = LOCK) -> list[Pin]:
    """The pins, in file order; a malformed line is an error naming it."""
    pins = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3 or not fields[1].endswith(".whl") or len(fields[2]) != 64:
            raise SystemExit(f"{path}:{number}: expected '<dir> <wheel file> <sha256>', got {line!r}")
        pins.append(Pin(*fields))
    return pins


def sha256(path: Path) -> str:
    """The file's sha256 in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_args(pin: Pin) -> list[str]:
    """pip download options that select exactly this wheel file (its tags, read from its name)."""
    _name, _version, _python, abi, platforms = pin.wheel[: -len(".whl")].split("-")
    args = ["--no-deps", "--only-binary=:all:", "--python-version", PYTHON, "--implementation", "cp", "--abi", abi]
    for platform_tag in platforms.split("."):
        args += ["--platform", platform_tag]
    return [*args, f"{pin.name}=={pin.version}"]


def fetch(pin: Pin, cache: Path) -> Path:
    """The pinned wheel from ``cache``, downloaded there first if missing; its sha256 must match the lock."""
    wheel = cache / pin.wheel
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", tmp, *_download_args(pin)]
            subprocess.run(cmd, check=True)
            got = Path(tmp) / pin.wheel
            if not got.exists():
                raise SystemExit(f"pip did not fetch {pin.wheel}; it fetched {sorted(os.listdir(tmp))}")
            got.replace(wheel)
    found = sha256(wheel)
    if found != pin.sha256:
        wheel.unlink()
        raise SystemExit(f"{pin.wheel}: sha256 {found} is not the pinned {pin.sha256}; removed it")
    return wheel


@dataclass(frozen=True)
class Entry:
    """One file of the tarball: its path inside it, its bytes, and whether it is executable."""

    path: str
    data: bytes
    executable: bool = False


def wheel_entries(pin: Pin, wheel: Path) -> Iterator[Entry]:
    """The wheel's files under pilot3/vendor/<target>/ (its .dist-info too: metadata and licences)."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir() or "__pycache__" in info.filename or info.filename.endswith(".pyc"):
                continue
            executable = info.filename.endswith(".so")
            yield Entry(f"{TOP}/vendor/{pin.target}/{info.filename}", archive.read(info), executable)


def source_entries(root: Path = ROOT) -> Iterator[Entry]:
    """fsm_pilot's own files (no bytecode), the entry point and PILOTVERSION."""
    package = root / "fsm_pilot"
    for path in package.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield Entry(f"{TOP}/{path.relative_to(root).as_posix()}", path.read_bytes())
    yield Entry(f"{TOP}/pilot.py", (root / "deploy" / "pilot.py").read_bytes(), executable=True)
    yield Entry(f"{TOP}/PILOTVERSION", f"{_version(package)}\n".encode())


def _version(package: Path) -> str:
    """fsm_pilot.__version__, read from the source (the build must not import what it packs)."""
    for line in (package / "__init__.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise SystemExit("fsm_pilot/__init__.py has no __version__")


def vendored_index(pins: list[Pin], entries: list[Entry]) -> Entry:
    """pilot3/VENDORED.txt: each vendored distribution, its version, wheel, sha256 and licence files."""
    lines = ["# Vendored by deploy/build_tarball.py from deploy/vendor.lock; licences are the files listed.", ""]
    for pin in pins:
        prefix = f"{TOP}/vendor/{pin.target}/{pin.name}-{pin.version}.dist-info/"
        licences = sorted(e.path[len(TOP) + 1:] for e in entries
                          if e.path.startswith(prefix) and Path(e.path).name.upper().startswith(LICENCE_NAMES))
        if not licences:
            raise SystemExit(f"{pin.wheel} carries no licence file")
        lines.append(f"{pin.name} {pin.version} ({pin.target}) {pin.wheel} sha256:{pin.sha256}")
        lines += [f"    licence: {name}" for name in licences]
    return Entry(f"{TOP}/VENDORED.txt", ("\n".join(lines) + "\n").encode())


def _tarinfo(name: str, mtime: int, size: int = 0, mode: int = 0o644, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size, info.mode, info.mtime = size, mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tarball(entries: list[Entry], output: Path, mtime: int) -> None:
    """A gzip tarball of ``entries`` and their parent directories, byte-identical for the same input."""
    directories = sorted({str(parent) for e in entries for parent in Path(e.path).parents if str(parent) != "."})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in directories:
            tar.addfile(_tarinfo(name, mtime, mode=0o755, directory=True))
        for entry in sorted(entries, key=lambda e: e.path):
            info = _tarinfo(entry.path, mtime, len(entry.data), 0o755 if entry.executable else 0o644)
            tar.addfile(info, io.BytesIO(entry.data))
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with partial.open("wb") as handle, gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0,
                                                      compresslevel=9) as gz:
        gz.write(raw.getvalue())
    partial.replace(output)


def build(output: Path, cache: Path, root: Path = ROOT) -> list[Entry]:
    """Fetch the pinned wheels, collect every entry and write the tarball; returns the entries written."""
    pins = read_lock()
    entries = list(source_entries(root))
    for pin in pins:
        entries += wheel_entries(pin, fetch(pin, cache))
    entries.append(vendored_index(pins, entries))
    paths = [e.path for e in entries]
    if len(paths) != len(set(paths)):
        raise SystemExit(f"two inputs write the same path: {sorted(p for p in paths if paths.count(p) > 1)[:5]}")
    write_tarball(entries, output, int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH)))
    return entries


def main(argv: list[str] | None = None) -> int:
    """Build the tarball and print its path, size and sha256."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--output", type=Path, default=ROOT / "dist" / "pilot3.tar.gz")
    ap.add_argument("--wheels", type=Path, default=ROOT / "build" / "wheels", help="wheel cache dir")
    ns = ap.parse_args(argv)
    entries = build(ns.output, ns.wheels)
    size = ns.output.stat().st_size
    print(f"{ns.output}: {len(entries)} files, {size} bytes ({size / 2**20:.2f} MiB), sha256 {sha256(ns.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
