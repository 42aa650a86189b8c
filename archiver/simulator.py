"""Simulated SendZen and Infobip servers that follow the documented APIs.

They back ``archiver demo`` and the test suite: real HTTP on 127.0.0.1, the
documented request parameters, response shapes, error bodies, retention windows,
newest-first ordering, token/cursor paging and (for Infobip) a sliding-window rate
limit that answers 429 with ``Retry-After``. Faults can be injected per server.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from aiohttp import web

from archiver.times import datetime_to_ticks, parse_offset_time

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Faults:
    """What share of requests fail, and how (drawn from a seeded RNG, so runs repeat)."""

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    truncated_rate: float = 0.0
    latency: float = 0.0
    timeout_seconds: float = 3.0
    seed: int = 1
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self) -> str | None:
        roll = self._rng.random()
        for kind, rate in (("error", self.error_rate), ("timeout", self.timeout_rate), ("truncated", self.truncated_rate)):
            if roll < rate:
                return kind
            roll -= rate
        return None


class FakeServer:
    """Shared plumbing: an aiohttp app on a free loopback port, auth, faults, a request log."""

    auth_scheme = "Bearer"
    path = "/"

    async def handle(self, request: web.Request) -> web.Response:
        return web.json_response({}, status=404)

    def __init__(self, api_key: str, *, clock: Clock = _utcnow, faults: Faults | None = None,
                 other_keys: tuple[str, ...] = ()) -> None:
        self.api_key, self.clock = api_key, clock
        self.keys = (api_key, *other_keys)
        self.faults = faults or Faults()
        self.requests: list[dict[str, str]] = []
        self.served: dict[int, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> "FakeServer":
        app = web.Application()
        app.router.add_get(self.path, self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def _respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        self.served[status] = self.served.get(status, 0) + 1
        return web.json_response(body, status=status, headers=headers)

    async def _fault(self) -> web.Response | None:
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        kind = self.faults.draw()
        if kind == "error":
            return self._respond(self.faults._rng.choice([500, 503]), self.error_body(500))
        if kind == "timeout":
            await asyncio.sleep(self.faults.timeout_seconds)
        if kind == "truncated":
            self.served[200] = self.served.get(200, 0) + 1
            return web.Response(text='{"message": "ok", "data": {"logs": [{"proj', content_type="application/json")
        return None

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") in {f"{self.auth_scheme} {k}" for k in self.keys}

    def _log(self, request: web.Request) -> None:
        """Record the query, and which key asked (tests tell clients apart by key)."""
        auth = request.headers.get("Authorization", "")
        self.requests.append({**request.query, "__key": auth.split(" ", 1)[-1]})

    def error_body(self, status: int) -> Any:
        return {"message": "Internal server error", "data": None}


class FakeSendZen(FakeServer):
    """``GET /v1/logs``: 7-day retention, newest first, keyset ``next_page_token``."""

    retention = timedelta(days=7)
    path = "/v1/logs"

    def __init__(self, api_key: str = "sz-test-key", *, oldest_first: bool = False, **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        self.oldest_first = oldest_first  # the docs promise no order; the archiver must not rely on one
        self._keys: list[tuple[int, int]] = []  # (created_at, seq), sorted: the server's index
        self._logs: list[dict[str, Any]] = []  # parallel to _keys
        self._encoded: list[bytes] = []  # each log's JSON, encoded once: a provider's CPU is not ours
        self._seq = 0

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [dict(l) for l in self._logs]

    def add(self, *logs: dict[str, Any]) -> None:
        for log in logs:
            self._seq += 1
            key = (log["created_at"], self._seq)
            at = bisect.bisect_right(self._keys, key)
            self._keys.insert(at, key)
            self._logs.insert(at, dict(log))
            self._encoded.insert(at, json.dumps(log).encode())

    def served_logs(self) -> list[dict[str, Any]]:
        """What the provider still holds (within retention), as served."""
        floor = datetime_to_ticks(self.clock() - self.retention)
        return [dict(l) for l in self._logs if l["created_at"] >= floor]

    async def handle(self, request: web.Request) -> web.Response:
        self._log(request)
        if not self._authorized(request):
            return self._respond(401, {"message": "Unauthorized"})
        fault = await self._fault()
        if fault is not None:
            return fault
        try:
            query = self._query(request.query)
        except (ValueError, KeyError, TypeError):
            return self._respond(400, {"message": "Invalid request parameters", "data": None})
        page, more = self._page(query)
        token = None
        if more:
            last = self._keys[page[-1]]
            token = base64.b64encode(json.dumps({"CreatedAt": last[0], "Seq": last[1]}).encode()).decode()
        body = (b'{"message": "Notification logs retrieved successfully", "data": {"logs": ['
                + b", ".join(self._encoded[i] for i in page)
                + b'], "next_page_token": ' + json.dumps(token).encode() + b"}}")
        self.served[200] = self.served.get(200, 0) + 1
        return web.Response(body=body, content_type="application/json")

    def _page(self, q: dict[str, Any]) -> tuple[list[int], bool]:
        """Indexes of the page (newest first, unless ``oldest_first``) and whether more match."""
        low = bisect.bisect_left(self._keys, (q["from"], -1))
        high = bisect.bisect_right(self._keys, (q["to"], 2**63))
        if q["after"] is not None:
            if self.oldest_first:
                low = max(low, bisect.bisect_right(self._keys, q["after"]))
            else:
                high = min(high, bisect.bisect_left(self._keys, q["after"]))
        page: list[int] = []
        indexes = range(low, high) if self.oldest_first else range(high - 1, low - 1, -1)
        for i in indexes:
            if self._matches(self._logs[i], q):
                if len(page) == q["size"]:
                    return page, True
                page.append(i)
        return page, False
    def _query(self, q: Any) -> dict[str, Any]:
        floor = datetime_to_ticks(self.clock() - self.retention)
        size = int(q.get("pageSize", 20))
        if not 1 <= size <= 20:
            raise ValueError("pageSize")
        after = None
        if q.get("nextPageToken"):
            decoded = json.loads(base64.b64decode(q["nextPageToken"]))
            after = (int(decoded["CreatedAt"]), int(decoded["Seq"]))
        types = [t for t in q.get("eventTypes", "").split(",") if t]
        return {"from": max(int(q.get("fromDate", floor)), floor), "to": int(q.get("toDate", 2**63 - 1)),
                "size": size, "after": after, "types": types, "phone": q.get("phoneNumberId")}

    @staticmethod
    def _matches(log: dict[str, Any], q: dict[str, Any]) -> bool:
        return ((not q["types"] or log["event_type"] in q["types"])
                and (q["phone"] is None or log["phone_number_id"] == q["phone"]))


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


# --- generated traffic -------------------------------------------------------------

STATUSES = ["sent", "delivered", "read", "failed"]


def sendzen_log(n: int, at: datetime, rng: random.Random | None = None) -> dict[str, Any]:
    """A realistic log: an incoming text, a status update, or an 'Other' event."""
    rng = rng or random.Random(n)
    kind = rng.choice(["Incoming Message", "Message Status", "Message Status", "Other"])
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15551234567", "phone_number_id": "123456789012345"},
             **_sendzen_value(kind, n, str(int(at.timestamp())), rng)}
    payload = {"object": "whatsapp_business_account",
               "entry": [{"id": "123456789012345", "changes": [{"field": "messages", "value": value}]}]}
    return {"project_id": "12345", "phone_number_id": "123456789012345", "event_type": kind,
            "payload": json.dumps(payload), "created_at": datetime_to_ticks(at), "direction": 1,
            "flyout_delivery_status": "-", "flyout_delivery_response": "-",
            "flyout_delivery_response_code": 0, "flyout_url": "-"}


def _sendzen_value(kind: str, n: int, unix: str, rng: random.Random) -> dict[str, Any]:
    """The webhook value's own part: a message, a status, or another event."""
    if kind == "Incoming Message":
        return {"contacts": [{"wa_id": f"1555{n:07d}", "profile": {"name": f"Customer {n}"}}],
                "messages": [{"from": f"1555{n:07d}", "id": f"wamid.IN{n:08d}", "timestamp": unix,
                              "type": "text", "text": {"body": f"Hello number {n}"}}]}
    if kind == "Other":
        return {"event": f"other-{n}"}
    status = rng.choice(STATUSES)
    item: dict[str, Any] = {"id": f"wamid.OUT{n // 3:08d}", "recipient_id": f"1555{n:07d}",
                            "status": status, "timestamp": unix}
    if status == "failed":
        item["errors"] = [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message"}]
    else:
        item["conversation"] = {"id": f"conv{n // 3}", "origin": {"type": "service"}}
        item["pricing"] = {"pricing_model": "PMP", "billable": False, "category": "service"}
    return {"statuses": [item]}


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


def spread(count: int, start: datetime, end: datetime) -> list[datetime]:
    """``count`` moments evenly over ``[start, end)``, oldest first."""
    step = (end - start) / max(count, 1)
    return [start + step * i for i in range(count)]

