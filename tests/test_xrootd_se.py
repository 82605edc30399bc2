"""The test storage element is real: the grid's own clients write to it, and it reports adler32 itself."""

from __future__ import annotations

import os
import subprocess
import zlib
from pathlib import Path

from tests.xrootd_se import StorageElement


def _run(se: StorageElement, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **se.client_env()}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_xrdcp_up_gfal_down_over_davs_and_the_server_checksum(storage_element: StorageElement,
                                                              tmp_path: Path) -> None:
    se = storage_element
    payload = os.urandom(300_000)
    source = tmp_path / "f.dat"
    source.write_bytes(payload)
    expected = f"{zlib.adler32(payload):08x}"
    up = _run(se, "xrdcp", "--nopbar", str(source), f"{se.url('root')}/test/a/f.dat")
    assert up.returncode == 0, up.stderr
    assert (se.data / "test" / "a" / "f.dat").read_bytes() == payload
    query = _run(se, "xrdfs", f"127.0.0.1:{se.port}", "query", "checksum", "/test/a/f.dat")
    assert query.stdout.split() == ["adler32", expected], query.stderr
    down = _run(se, "gfal-copy", "--force", "--checksum", f"adler32:{expected}", f"{se.url('davs')}/test/a/f.dat",
                f"file://{tmp_path / 'back.dat'}")
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "back.dat").read_bytes() == payload


def test_a_stopped_server_is_gone_by_pid(storage_element: StorageElement) -> None:
    se = storage_element
    assert se.proc is not None
    se.stop()
    assert se.proc.returncode is not None
