"""Logging: JSON lines to ``pilot.log`` in the pilot dir, readable lines on the console.

structlog renders, the standard library routes: one ProcessorFormatter per
destination. ``pilot.log`` is opened in append mode once per pilot, so it is
never overwritten between jobs (Pilot 3 overwrites it for each job).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog
from structlog.typing import FilteringBoundLogger

from fsm_pilot.redact import redact

LOGGER_NAME = "fsm_pilot"


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """Renders as usual, then blanks any token in the line (fsm_pilot.redact): whatever a record
    quotes (a server reply, a payload's stderr, an exception), no JWT reaches the console or pilot.log."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

_PRE_CHAIN: list[structlog.typing.Processor] = [
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(debug: bool = False) -> FilteringBoundLogger:
    """Set up console logging and return the pilot's logger."""
    level = logging.DEBUG if debug else logging.INFO
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_PRE_CHAIN,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    base = logging.getLogger(LOGGER_NAME)
    base.handlers.clear()
    base.setLevel(level)
    base.propagate = False
    console = logging.StreamHandler(sys.stderr)
    renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    console.setFormatter(_RedactingFormatter(processor=renderer,
                                                             foreign_pre_chain=_PRE_CHAIN))
    base.addHandler(console)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logger: FilteringBoundLogger = structlog.get_logger(LOGGER_NAME)
    return logger


def add_file(path: Path) -> None:
    """Also write JSON lines to ``path`` (appending)."""
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(_RedactingFormatter(
        processor=structlog.processors.JSONRenderer(default=str), foreign_pre_chain=_PRE_CHAIN))
    logging.getLogger(LOGGER_NAME).addHandler(handler)


def close() -> None:
    """Flush and close the handlers (the pilot is about to exit)."""
    base = logging.getLogger(LOGGER_NAME)
    for handler in list(base.handlers):
        handler.flush()
        handler.close()
        base.removeHandler(handler)
