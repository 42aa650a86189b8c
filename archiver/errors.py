"""The archiver's errors: one root, grouped by what the caller should do about them.

Low-level library errors (aiohttp, JSON, SQLAlchemy) are translated into these at one
boundary each (``http.py``, ``config.py``, ``db/store.py``) so the rest of the code reasons only in terms
of "retry it", "stop this source" or "tell the user".
"""

from __future__ import annotations

from datetime import datetime


def one_line(text: str, limit: int = 500) -> str:
    """The first line of a message, bounded: driver errors can carry whole statements and rows."""
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


class ArchiverError(Exception):
    """Root of every error the archiver raises on purpose."""


class ConfigError(ArchiverError, ValueError):
    """The configuration is unusable; the message names the bad key."""


class SourceError(ArchiverError):
    """A provider call failed."""


class TransientError(SourceError):
    """Worth retrying: connection errors, timeouts, 5xx, unparseable bodies."""


class MalformedResponse(TransientError):
    """A 200 whose body is not JSON or not of the documented shape."""


class RateLimited(SourceError):
    """The provider answered 429; ``retry_after`` is how long it asked us to wait."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthFailed(SourceError):
    """401/403: the credentials are wrong; retrying cannot help."""


class BadRequest(SourceError):
    """400: the provider rejected our parameters; a bug or a bad filter in config."""


class TLSFailed(SourceError):
    """The server's certificate did not verify: a configuration problem, never retried."""


class RetriesExhausted(SourceError):
    """A transient failure outlasted the retry policy."""


class RedirectRefused(SourceError):
    """A 3xx: never followed, so no request, key or parameter reaches another origin."""


class ProviderBusy(SourceError):
    """A 429 asking for a longer wait than the retry budget; ``until`` is when to try again."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class DatabaseError(ArchiverError):
    """A statement failed or the database went away; its transaction was rolled back,
    so nothing of it is half-written. The message is the driver's first line."""


class Unreadable(ArchiverError, ValueError):
    """One served record lacks or garbles what the archiver needs (its time, its id, its
    shape). It is quarantined as served; retrying cannot heal it."""
