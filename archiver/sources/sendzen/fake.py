"""A SendZen ``/v1/logs`` server that follows the documentation, and generated logs:
``archiver demo`` and the tests run against it."""

from __future__ import annotations

import base64
import bisect
import json
import random
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from archiver.fakeserver import FakeServer
from archiver.sources.sendzen.ticks import datetime_to_ticks

STATUSES = ["sent", "delivered", "read", "failed"]


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
