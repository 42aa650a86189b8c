"""Infobip's ``GET /messenger/1/logs``: everything the archiver knows of this provider.

``source``: its config section, the ``Source`` (48 h, 1000 a page, re-reads by id),
parsing, its time format and error bodies; ``fake``: a server that follows its
documentation (``archiver demo`` and the tests), with generated messages.
"""

from archiver.sources.infobip.source import (
    InfobipConfig,
    InfobipSource,
    describe_error,
    format_infobip_time,
    id_batches,
    is_final,
    narrow,
    parse_message,
    parse_results,
)

__all__ = ["InfobipConfig", "InfobipSource", "describe_error", "format_infobip_time", "id_batches", "is_final",
           "narrow", "parse_message", "parse_results"]
