"""The parts of the panda-server CI stack that need no server: the vendored schema, its two load-time
workarounds, and the driver's one-line skip where it cannot run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pandaserver import schema

ROOT = Path(__file__).resolve().parent.parent


def test_schema_copy_is_upstreams() -> None:
    schema.verify()  # every file against the sha256 in SOURCE.md


def test_workarounds_apply_while_loading_and_leave_the_files_alone() -> None:
    before = (schema.SQLS / "pg_PARTITION.sql").read_text()
    partition = schema.partition_sql()
    assert "p_type => 'range'" in before and "p_type => 'range'" not in partition
    assert partition.count("p_type => 'native'") == before.count("p_type => 'range'")
    table = schema.worker_node_queue()
    assert table.startswith("CREATE TABLE IF NOT EXISTS doma_panda.worker_node_queue")
    assert "MATERIALIZED VIEW" not in table  # only the table, not the rest of the patch
    schema.verify()


def test_driver_says_in_one_line_why_it_cannot_run() -> None:
    argv = [sys.executable, "-m", "tests.pandaserver"]
    if os.geteuid() == 0:  # as root it would run: become nobody, which is refused in one line
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) not installed")
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", *argv]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    if "Permission denied" in done.stderr:
        pytest.skip("the checkout is not readable by user nobody")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("panda-server tests skipped: needs ")
    assert done.stdout.count("\n") == 1
