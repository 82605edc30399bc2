"""Start-up: load the queues and storage endpoints, open the store, serve until told to stop."""

from __future__ import annotations

import json
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


def run(db: Path, host: str, port: int, *, queuedata: Sequence[Path], storagedata: Path | None,
        storage_dir: Path, policy: Policy | None = None) -> int:
    """Serve until SIGTERM/SIGINT; 0 on a clean stop, 1 when it cannot start."""
    store = Store(db, policy)
    try:
        load_config(store, queuedata, storagedata, storage_dir)
        server = Server(host, port, make_handler(Service.open(store)), tick=store.expire,
                        tick_interval=store.policy.check_interval)
    except (ConfigError, OSError) as exc:
        print(f"dispatcher: {exc}", file=sys.stderr)
        store.close()
        return 1
    try:
        server.install_signals()
        print(f"listening on {url_of(*server.address)}", flush=True)
        server.serve_forever()
    finally:
        store.close()
    return 0
