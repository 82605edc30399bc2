"""The Slurm cluster of tests/slurm and what its pilot jobs run: started once, stopped by PID whatever happens."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from tests.deploy_env import bare_python, build_tarball, interpreters
from tests.slurm.batch import Site
from tests.slurm.cluster import Cluster, missing


@pytest.fixture(scope="package")
def slurm(request: pytest.FixtureRequest) -> Cluster:
    """A single-node Slurm 22.05 in a scratch dir under /tmp (munged must reach it); skipped where it cannot run.

    The finalizer is registered before the start, so a half-started cluster is stopped too. The scratch dir
    (its daemons' logs) is kept when a test failed.
    """
    why = missing()
    if why is not None:
        pytest.skip(why)
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="fsm-slurm-", dir="/tmp")))

    def stop() -> None:
        problems = cluster.stop()
        if problems or request.session.testsfailed:
            print(f"\nSlurm test cluster kept in {cluster.base}: {problems}", file=sys.stderr)
        else:
            cluster.remove()
        assert not problems, problems

    request.addfinalizer(stop)
    cluster.start()
    return cluster


@pytest.fixture(scope="package")
def site(slurm: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The deployable tarball and a stdlib-only python3 (the newest CPython here), as a worker node has them."""
    pythons = interpreters()
    newest = pythons[max(pythons, key=lambda v: tuple(int(p) for p in v.split(".")))]
    root = tmp_path_factory.mktemp("slurm-site")
    tarball = build_tarball(root / "pilot3.tar.gz")
    python = bare_python(newest, root / "node-python") / "python3"
    return Site(slurm, tarball, python, root / "pilots")
