"""SendZen's WhatsApp ``GET /v1/logs``: everything the archiver knows of this provider.

``source``: its config section, the ``Source``, parsing and natural keys, its error
bodies; ``ticks``: its time format; ``fake``: a server that follows its documentation
(``archiver demo`` and the tests), with generated logs.
"""

from archiver.sources.sendzen.source import (
    EVENT_TYPES,
    KEY_FIELDS,
    MAX_TICKS,
    TICKS_DIGITS,
    SendZenConfig,
    SendZenSource,
    describe_error,
    natural_key,
    parse_log,
    parse_logs_page,
)

__all__ = ["EVENT_TYPES", "KEY_FIELDS", "MAX_TICKS", "TICKS_DIGITS", "SendZenConfig", "SendZenSource",
           "describe_error", "natural_key", "parse_log", "parse_logs_page"]
