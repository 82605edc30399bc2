"""Start-up: load the queues and storage endpoints, open the store, serve until told to stop."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from fsm_pilot.dispatcher.app import make_handler
from fsm_pilot.dispatcher.expiry import Policy
from fsm_pilot.dispatcher.httpserver import Server
from fsm_pilot.dispatcher.service import Service
from fsm_pilot.dispatcher.store import Store

#: Where the bundled endpoint list puts the storage directory.
STORAGE_PLACEHOLDER = "@STORAGE_DIR@"


class ConfigError(Exception):
    """A queuedata or storage file that cannot be served."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def queues_from(doc: Any, origin: str) -> dict[str, dict[str, Any]]:
    """A queue object (named by its nickname) or a ``{nickname: queue}`` map, as CRIC lists them."""
    if isinstance(doc, dict) and isinstance(doc.get("nickname"), str):
        return {doc["nickname"]: doc}
    if isinstance(doc, dict) and doc and all(isinstance(q, dict) and q.get("nickname") == k for k, q in doc.items()):
        return dict(doc)
    raise ConfigError(f"{origin}: not a queue with a nickname, nor a map of them")


def endpoints_from(doc: Any, origin: str) -> dict[str, dict[str, Any]]:
    if isinstance(doc, dict) and doc and all(isinstance(e, dict) for e in doc.values()):
        return dict(doc)
    raise ConfigError(f"{origin}: not a map of storage endpoints ({{name: {{arprotocols: ...}}}})")


def _bundled(package: str, name: str) -> Any:
    return json.loads(resources.files(package).joinpath(name).read_text())


def _fill_storage_dir(value: Any, storage_dir: Path) -> Any:
    """The bundled endpoints' file:// path is the storage directory, chosen at start-up."""
    if isinstance(value, dict):
        return {k: _fill_storage_dir(v, storage_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_storage_dir(v, storage_dir) for v in value]
    return str(storage_dir) if value == STORAGE_PLACEHOLDER else value


def load_config(store: Store, queuedata: Sequence[Path], storagedata: Path | None, storage_dir: Path) -> None:
    """Given files replace what the store has; with none given, an empty store gets the bundled example."""
    queues: dict[str, dict[str, Any]] = {}
    for path in queuedata:
        queues.update(queues_from(_read_json(path), str(path)))
    if not queues and not store.queues():
        queues = queues_from(_bundled("fsm_pilot.demo", "queuedata.json"), "bundled queuedata")
    endpoints: Mapping[str, dict[str, Any]] = {}
    if storagedata is not None:
        endpoints = endpoints_from(_read_json(storagedata), str(storagedata))
    elif not store.endpoints():
        storage_dir.mkdir(parents=True, exist_ok=True)
        endpoints = _fill_storage_dir(_bundled("fsm_pilot.dispatcher", "ddmendpoints.json"), storage_dir.resolve())
    if queues:
        store.put_queues(queues)
    if endpoints:
        store.put_endpoints(endpoints)


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


SQLITE_MAGIC = b"SQLite format 3\x00"


def db_problem(db: Path) -> str | None:
    """Why ``db`` cannot be the dispatcher's database (its directory must exist; a file must be SQLite)."""
    if db.is_dir():
        return f"--db {db} is a directory: give a file name in it"
    if not db.parent.is_dir():
        return f"--db {db}: directory {db.parent} does not exist (create it first)"
    if db.exists():
        try:
            with db.open("rb") as handle:
                head = handle.read(len(SQLITE_MAGIC))
        except OSError as exc:
            return f"--db {db} cannot be read: {exc.strerror}"
        if head and head != SQLITE_MAGIC:
            return f"--db {db} is not an SQLite database"
    return None


def _remove_created(db: Path, storage_dir: Path, had_storage_dir: bool) -> None:
    """After a failed start: remove the database files and storage dir this start created (nothing else)."""
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)
    if not had_storage_dir and storage_dir.is_dir() and not any(storage_dir.iterdir()):
        storage_dir.rmdir()


def run(db: Path, host: str, port: int, *, queuedata: Sequence[Path], storagedata: Path | None,
        storage_dir: Path, policy: Policy | None = None) -> int:
    """Serve until SIGTERM/SIGINT; 0 on a clean stop, 1 when it cannot start (having created nothing)."""
    problem = db_problem(db)
    if problem is not None:
        print(f"dispatcher: {problem}", file=sys.stderr)
        return 1
    new_db, had_storage_dir = not db.exists(), storage_dir.exists()
    store: Store | None = None
    try:
        store = Store(db, policy)
        load_config(store, queuedata, storagedata, storage_dir)
        server = Server(host, port, make_handler(Service.open(store)), tick=store.expire,
                        tick_interval=store.policy.check_interval)
    except (ConfigError, OSError, sqlite3.Error) as exc:
        print(f"dispatcher: {exc}", file=sys.stderr)
        if store is not None:
            store.close()
        if new_db:
            _remove_created(db, storage_dir, had_storage_dir)
        return 1
    try:
        server.install_signals()
        print(f"listening on {url_of(*server.address)}", flush=True)
        server.serve_forever()
    finally:
        store.close()
    return 0
