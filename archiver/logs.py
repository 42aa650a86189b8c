"""structlog set-up: readable on a terminal, JSON lines otherwise, secrets scrubbed."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Iterable, TextIO

import structlog


def configure(fmt: str = "auto", level: str = "info", secrets: Iterable[str] = ()) -> None:
    """``fmt`` is ``console``, ``json`` or ``auto`` (console on a TTY, JSON otherwise)."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    numeric_level = getattr(logging, level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        Scrubber(secrets),
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *_args: LineWriter(sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(renderer, shared, numeric_level)


def _route_stdlib_logging(renderer: Any, shared: list[Any], level: int) -> None:
    """Libraries (apscheduler, aiohttp, alembic) log through stdlib: same format, same scrubbing."""
    handler = logging.StreamHandler(sys.stderr)
    handler.lock = WRITE_LOCK  # one lock for both writers: lines from threads never interleave
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # apscheduler warns on every tick a long pass overlaps; our own pass logs say more.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))  # its INFO is per-start chatter


WRITE_LOCK = threading.RLock()


class LineWriter:
    """structlog's output: one whole line per event, under the lock the stdlib handler
    (libraries' logs, from their own threads) takes too."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        with WRITE_LOCK:
            self._stream.write(message + "\n")
            self._stream.flush()

    log = debug = info = warning = warn = error = critical = exception = failure = fatal = msg


class Scrubber:
    """Replaces any known secret in any string field: a last line of defence."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def __call__(self, _logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        if not self._secrets:
            return event
        return {key: self.scrub(value) if isinstance(value, str) else value for key, value in event.items()}

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
