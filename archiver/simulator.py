"""Simulated SendZen and Infobip servers that follow the documented APIs.

They back ``archiver demo`` and the test suite: real HTTP on 127.0.0.1, the
documented request parameters, response shapes, error bodies, retention windows,
newest-first ordering, token/cursor paging and (for Infobip) a sliding-window rate
limit that answers 429 with ``Retry-After``. Faults can be injected per server.
Each lives with its provider (``sources/<provider>/fake.py``); this module gathers them.
"""

from archiver.fakeserver import FakeServer, Faults, spread
from archiver.sources.infobip.fake import FakeInfobip, format_offset_time, infobip_message
from archiver.sources.sendzen.fake import FakeSendZen, sendzen_log

__all__ = ["FakeInfobip", "FakeSendZen", "FakeServer", "Faults", "format_offset_time", "infobip_message",
           "sendzen_log", "spread"]
