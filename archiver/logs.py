"""structlog set-up: readable on a terminal, JSON lines otherwise, secrets scrubbed."""

from __future__ import annotations

import logging
import sys
from typing import Any, Iterable

import structlog


def configure(fmt: str = "auto", level: str = "info", secrets: Iterable[str] = ()) -> None:
    """``fmt`` is ``console``, ``json`` or ``auto`` (console on a TTY, JSON otherwise)."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            Scrubber(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


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
