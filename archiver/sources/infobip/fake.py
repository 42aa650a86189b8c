"""An Infobip ``/messenger/1/logs`` server that follows the documentation (48 h, newest
first, 1000 a page, a sliding rate limit per key), and generated messages."""

from __future__ import annotations

import base64
import bisect
import json
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from archiver.fakeserver import FakeServer
from archiver.times import parse_offset_time

class FakeInfobip(FakeServer):
    """``GET /messenger/1/logs``: 48 h, newest first, ≤1000 per page, a sliding rate limit."""

    auth_scheme = "App"
    retention = timedelta(hours=48)
    path = "/messenger/1/logs"

    def __init__(self, api_key: str = "ib-test-key", *, rate_limit: int = 120, rate_period: float = 60.0,
                 supports_cursor: bool = False, offset: str = "+0000", **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        self.messages: dict[str, dict[str, Any]] = {}
        self.rate_limit, self.rate_period = rate_limit, rate_period
        self.supports_cursor, self.offset = supports_cursor, offset
        self._arrivals: dict[str, deque[float]] = {}  # per key: Infobip limits each account
        self._index: list[tuple[datetime, str]] = []  # (sentAt, messageId), sorted

    def add(self, *entries: dict[str, Any]) -> None:
        for entry in entries:
            mid = entry["messageId"]
            if mid in self.messages:
                self._index.remove((parse_offset_time(self.messages[mid]["sentAt"]), mid))
            self.messages[mid] = dict(entry)
            bisect.insort(self._index, (parse_offset_time(entry["sentAt"]), mid))

    def set_status(self, message_id: str, group_id: int, group: str, name: str, done_at: datetime | None = None) -> None:
        entry = self.messages[message_id]
        entry["status"] = {"groupId": group_id, "groupName": group, "id": group_id * 10, "name": name,
                           "description": name.replace("_", " ").capitalize()}
        if done_at is not None:
            entry["doneAt"] = format_offset_time(done_at, self.offset)

    def served_messages(self) -> list[dict[str, Any]]:
        floor = self.clock() - self.retention
        return [m for m in self.messages.values() if parse_offset_time(m["sentAt"]) >= floor]

    def error_body(self, status: int) -> Any:
        return {"requestError": {"serviceException": {"messageId": "GENERAL_ERROR", "text": "Something went wrong"}}}

    def _over_limit(self, key: str) -> float | None:
        now = time.monotonic()
        arrivals = self._arrivals.setdefault(key, deque())
        while arrivals and arrivals[0] <= now - self.rate_period:
            arrivals.popleft()
        if len(arrivals) >= self.rate_limit:
            return arrivals[0] + self.rate_period - now
        arrivals.append(now)
        return None

    async def handle(self, request: web.Request) -> web.Response:
        q = request.query
        self._log(request)
        if not self._authorized(request):
            return self._respond(401, {"requestError": {"serviceException": {
                "messageId": "UNAUTHORIZED", "text": "Invalid login details"}}})
        wait = self._over_limit(request.headers["Authorization"])
        if wait is not None:
            return self._respond(429, {"errorCode": "E429", "description": "Too many requests",
                                       "action": "Slow down", "violations": [], "resources": []},
                                 headers={"Retry-After": str(max(1, round(wait + 0.5)))})
        fault = await self._fault()
        if fault is not None:
            return fault
        try:
            body = self._page(q)
        except ValueError as exc:
            return self._respond(400, {"errorCode": "E400", "description": f"Bad request: {exc}",
                                       "action": None, "violations": [], "resources": []})
        return self._respond(200, body)

    def _page(self, q: Any) -> dict[str, Any]:
        limit = int(q.get("limit", 50))
        if not 1 <= limit <= 1000:
            raise ValueError("limit")
        ids = None
        if "messageId" in q:
            if len(q["messageId"]) > 2048:
                raise ValueError("messageId longer than 2048 characters")
            ids = set(q["messageId"].split(","))
        cursor = self.supports_cursor and q.get("useCursor") == "true"
        keys = [k for k in reversed(self._slice(q, cursor))
                if (ids is None or k[1] in ids) and _infobip_matches(self.messages[k[1]], q)]
        page = keys[:limit]
        body: dict[str, Any] = {"results": [dict(self.messages[k[1]]) for k in page]}
        if cursor:
            body["cursor"] = {"limit": limit}
            if len(keys) > limit:
                last = page[-1]
                body["cursor"]["nextCursor"] = base64.b64encode(
                    json.dumps([last[0].isoformat(), last[1]]).encode()).decode()
        return body

    def _slice(self, q: Any, cursor: bool) -> list[tuple[datetime, str]]:
        """The index entries within retention, ``sentSince``/``sentUntil`` and before the cursor."""
        floor = self.clock() - self.retention
        since = max(parse_offset_time(q["sentSince"]), floor) if "sentSince" in q else floor
        until = parse_offset_time(q["sentUntil"]) if "sentUntil" in q else None
        low = bisect.bisect_left(self._index, (since, ""))
        high = len(self._index) if until is None else bisect.bisect_right(self._index, (until, "\uffff"))
        if cursor and q.get("cursor"):
            after = json.loads(base64.b64decode(q["cursor"]))
            high = min(high, bisect.bisect_left(self._index, (parse_offset_time(after[0]), after[1])))
        return self._index[low:high]

def _infobip_matches(entry: dict[str, Any], q: Any) -> bool:
    """The documented filters: comma-separated sender, destination, bulkId; generalStatus."""
    for param in ("sender", "destination", "bulkId"):
        if param in q and entry.get(param) not in q[param].split(","):
            return False
    status = entry.get("status") or {}
    return "generalStatus" not in q or str(status.get("groupName", "")).upper() == q["generalStatus"].upper()


def format_offset_time(moment: datetime, offset: str = "+0000") -> str:
    """Infobip's served form, ``2023-02-01T23:15:03.379+0000``, in the account's offset."""
    sign = 1 if offset[0] == "+" else -1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])) * sign
    local = moment.astimezone(timezone(delta))
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + offset


def infobip_message(n: int, at: datetime, *, offset: str = "+0000", final: bool = False) -> dict[str, Any]:
    status = ({"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET",
               "description": "Message delivered to handset"} if final else
              {"groupId": 1, "groupName": "PENDING", "id": 7, "name": "PENDING_ENROUTE",
               "description": "Message sent to next instance"})
    entry = {"sender": "44113496000", "destination": f"3859{n:08d}", "bulkId": f"BULK-{n // 100}",
             "messageId": f"MSG-{n:09d}", "sentAt": format_offset_time(at, offset), "messageCount": 1,
             "price": {"pricePerMessage": 0.15, "currency": "EUR"}, "status": status,
             "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR",
                       "description": "No Error", "permanent": False},
             "platform": {"entityId": "promotional-traffic-entity", "applicationId": "marketing-automation-application"},
             "content": {"text": f"Your code is {n:06d}", "type": "TEXT"}}
    if final:
        entry["doneAt"] = format_offset_time(at + timedelta(seconds=30), offset)
    return entry
