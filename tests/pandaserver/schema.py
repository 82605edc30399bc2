"""panda-database's schema (tests/third_party/panda-database, unmodified) loaded into a private cluster.

The order is upstream's ``panda_db_init.sh``. Two workarounds are applied while loading, never by editing a
file (PANDA_SERVER.md): ``doma_panda.worker_node_queue``, which ``pg_PANDA_SCHEDULER_JOBS.sql`` needs and only
``patches/0.0.31.patch.sql`` creates, is created from that patch's first CREATE TABLE right after
``pg_PANDA_TABLE.sql``; and Debian's pg_partman 4.7 knows no ``'range'`` partitioning type, so
``pg_PARTITION.sql`` is fed to psql with ``p_type => 'native'`` (4.x's name for the same thing).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tests.pandaserver.postgres import Cluster

SCHEMA = Path(__file__).parent.parent / "third_party" / "panda-database"
SQLS = SCHEMA / "postgres" / "sqls"
COMPONENTS = ("PANDA", "PANDAMETA", "PANDAARCH", "PANDABIGMON", "DEFT", "PARTITION")
PARTS = ("TABLE", "VIEW", "TYPE", "SEQUENCE", "FUNCTION", "TRIGGER", "SCHEDULER_JOBS", "PROCEDURE")
WORKER_NODE_QUEUE = re.compile(r"CREATE TABLE IF NOT EXISTS doma_panda\.worker_node_queue\b[^;]*;", re.S)


def verify() -> None:
    """Every file matches the sha256 recorded in SOURCE.md (a copy edited by mistake fails loudly)."""
    listed = re.findall(r"^([0-9a-f]{64})  (\S+)$", (SCHEMA / "SOURCE.md").read_text(), re.M)
    if not listed:
        raise RuntimeError("no sha256 sums in tests/third_party/panda-database/SOURCE.md")
    for digest, name in listed:
        if hashlib.sha256((SCHEMA / name).read_bytes()).hexdigest() != digest:
            raise RuntimeError(f"tests/third_party/panda-database/{name} differs from upstream (sha256)")


def worker_node_queue() -> str:
    """Workaround 1: the patch's CREATE TABLE for the table the 0.1.6 files use without creating it."""
    found = WORKER_NODE_QUEUE.search((SQLS / "patches" / "0.0.31.patch.sql").read_text())
    if found is None:
        raise RuntimeError("patches/0.0.31.patch.sql no longer creates doma_panda.worker_node_queue")
    return found.group(0) + "\nALTER TABLE doma_panda.worker_node_queue OWNER TO panda;\n"


def partition_sql() -> str:
    """Workaround 2: pg_PARTITION.sql as pg_partman 4.7 understands it."""
    text = (SQLS / "pg_PARTITION.sql").read_text()
    if "p_type => 'range'" not in text:
        raise RuntimeError("pg_PARTITION.sql no longer says p_type => 'range': check the pg_partman workaround")
    return text.replace("p_type => 'range'", "p_type => 'native'")


def load(cluster: Cluster, password: str) -> None:
    """Create panda_db, role ``panda`` and every object of the schema, as panda_db_init.sh does."""
    verify()
    init = (SQLS / "init_step.sql").read_text().replace("${PANDA_DB_PASSWORD}", password)
    cluster.run_sql(init, database="postgres")
    for component in COMPONENTS:
        names = [f"pg_{component}.sql", *(f"pg_{component}_{part}.sql" for part in PARTS)]
        for name in names:
            path = SQLS / name
            if not path.exists():
                continue
            cluster.run_sql(partition_sql() if name == "pg_PARTITION.sql" else path.read_text())
            if name == "pg_PANDA_TABLE.sql":
                cluster.run_sql(worker_node_queue())
    major, minor, patch = (SCHEMA / "postgres" / "version").read_text().strip().split(".")
    cluster.run_sql("INSERT INTO doma_panda.pandadb_version (component, major, minor, patch) "
                    f"VALUES ('PanDA', '{major}', '{minor}', '{patch}')")
    cluster.run_sql((SQLS / "post_step_panda.sql").read_text())
    cluster.run_sql((SQLS / "post_step_cron.sql").read_text(), database="postgres")


def add_queue(cluster: Cluster, queue: dict[str, Any]) -> None:
    """The queue as CRIC would publish it: one row of doma_panda.schedconfig_json."""
    name = str(queue["nickname"])
    data = json.dumps(queue).replace("'", "''")
    cluster.run_sql("INSERT INTO doma_panda.schedconfig_json (panda_queue, data, last_update) "
                    f"VALUES ('{name}', '{data}', now())")
