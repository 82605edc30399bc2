"""Logging: JSON lines to ``pilot.log`` in the pilot dir, readable lines on the console.

structlog renders, the standard library routes: one ProcessorFormatter per
destination. ``pilot.log`` is opened in append mode once per pilot, so it is
never overwritten between jobs (Pilot 3 overwrites it for each job).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import structlog
from structlog.typing import FilteringBoundLogger

from fsm_pilot.redact import redact

LOGGER_NAME = "fsm_pilot"


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """Renders as usual, then blanks any token in the line (fsm_pilot.redact): whatever a record
    quotes (a server reply, a payload's stderr, an exception), no JWT reaches the console or pilot.log."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

class _Tee(logging.Handler):
    """The pilot's one handler: each record goes to every destination (the console, then pilot.log).

    A structlog record is rendered straight from its event dict, as ProcessorFormatter renders
    it, without the LogRecord copy and second handler each destination would cost (a third of a
    line's time; 25 lines a job). Any other record goes through the destinations' own formatters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.destinations: list[tuple[logging.StreamHandler[Any], structlog.typing.Processor]] = []

    def add(self, handler: logging.StreamHandler[Any], renderer: structlog.typing.Processor) -> None:
        handler.setFormatter(_RedactingFormatter(processor=renderer, foreign_pre_chain=_PRE_CHAIN))
        self.destinations.append((handler, renderer))

    def emit(self, record: logging.LogRecord) -> None:
        event = record.msg
        name = getattr(record, "_name", None)
        if not isinstance(event, dict) or name is None:  # not from structlog: the formatters handle it
            for handler, _ in self.destinations:
                handler.handle(record)
            return
        logger = getattr(record, "_logger", None)
        try:
            for handler, renderer in self.destinations:
                stream = handler.stream
                stream.write(redact(str(renderer(logger, name, dict(event)))) + handler.terminator)
                stream.flush()
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        for handler, _ in self.destinations:
            handler.flush()
            handler.close()
        self.destinations.clear()
        super().close()


#: Characters that make a string value ambiguous in ``key=value`` form: such a value is quoted.
_QUOTE = frozenset(" \t\r\n='\"")
#: Records that carry these go through structlog's own renderer (it formats tracebacks).
_RICH = ("exc_info", "exception", "stack_info")


def _value(value: object) -> str:
    if isinstance(value, str):
        return repr(value) if _QUOTE.intersection(value) else value
    return repr(value)


class PlainConsole:
    """``<time> [<level>] <event> key=value ...``, keys sorted, as structlog's ConsoleRenderer lays it out
    without colours, in a third of its time (measured: 20 against 35 us a line, ~25 lines a job).

    The console of a batch job is a file: colours and padding logic are for a terminal, which keeps
    structlog's renderer; a record with a traceback goes to it too.
    """

    def __init__(self) -> None:
        self._rich = structlog.dev.ConsoleRenderer(colors=False)

    def __call__(self, logger: Any, name: str, event_dict: structlog.typing.EventDict) -> str:
        if any(key in event_dict for key in _RICH):
            return str(self._rich(logger, name, event_dict))
        stamp, level = event_dict.pop("timestamp", ""), event_dict.pop("level", "")
        event = str(event_dict.pop("event", ""))
        pairs = " ".join(f"{key}={_value(event_dict[key])}" for key in sorted(event_dict))
        return f"{stamp} [{level:<9}] {event:<30} {pairs}".rstrip()


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
    tee = _Tee()
    console = structlog.dev.ConsoleRenderer(colors=True) if sys.stderr.isatty() else PlainConsole()
    tee.add(logging.StreamHandler(sys.stderr), console)
    base.addHandler(tee)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logger: FilteringBoundLogger = structlog.get_logger(LOGGER_NAME)
    return logger


def add_file(path: Path) -> None:
    """Also write JSON lines to ``path`` (appending)."""
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    renderer = structlog.processors.JSONRenderer(default=str)
    tees = [h for h in logging.getLogger(LOGGER_NAME).handlers if isinstance(h, _Tee)]
    if tees:
        tees[0].add(handler, renderer)
    else:  # not configured: a handler of its own
        handler.setFormatter(_RedactingFormatter(processor=renderer, foreign_pre_chain=_PRE_CHAIN))
        logging.getLogger(LOGGER_NAME).addHandler(handler)


def close() -> None:
    """Flush and close the handlers (the pilot is about to exit)."""
    base = logging.getLogger(LOGGER_NAME)
    for handler in list(base.handlers):
        handler.flush()
        handler.close()
        base.removeHandler(handler)
