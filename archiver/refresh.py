"""When the daemon re-reads a record that is not final yet: less often as it ages.

Infobip allows 120 requests a minute, and a status re-read costs one request per ~50
messages. Re-reading every pending message on every poll would let one large campaign
whose receipts never come (some networks send none) spend the budget for two days.
A message is re-read on every poll while young; after that at an interval of a tenth
of its age, never rarer than hourly: a message pending for ten hours costs one request
slot an hour instead of sixty.

A one-shot ``backfill`` re-reads every pending record (no schedule); so does a daemon
after a restart, since the schedule lives in its memory.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable, Sequence

LONGEST = timedelta(hours=1)


def interval(age: timedelta, poll: timedelta) -> timedelta:
    """How long a record of this age may go without a re-read."""
    return min(max(poll, age / 10), max(poll, LONGEST))


class RefreshSchedule:
    """The last re-read of each pending record, and which are due now."""

    def __init__(self, poll: timedelta) -> None:
        self._poll = poll
        self._checked: dict[str, datetime] = {}

    def due(self, pending: Sequence[tuple[str, datetime]], now: datetime) -> list[str]:
        """The ids to re-read in the pass at ``now`` (``pending``: id and send time);
        forgets records no longer pending."""
        slack = self._poll / 2  # polls are not exactly one interval apart
        self._checked = {key: self._checked[key] for key, _ in pending if key in self._checked}
        due = []
        for key, sent in pending:
            last = self._checked.get(key)
            if last is None or now - last + slack >= interval(now - sent, self._poll):
                due.append(key)
        return due

    def checked(self, keys: Iterable[str], now: datetime) -> None:
        for key in keys:
            self._checked[key] = now
