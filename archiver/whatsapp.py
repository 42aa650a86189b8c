"""Pure normalization of a WhatsApp Cloud API webhook body (SendZen's ``payload``).

Payloads are parsed defensively: fields are looked up with fallbacks (SendZen's own
examples spell ``messsage_id``), anything unexpected yields ``parse_error`` instead of
an exception, and the caller keeps the raw record whatever happens here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Mapping

from archiver import jsoncodec
from archiver.coerce import boolean as _bool
from archiver.coerce import integer as _int
from archiver.coerce import text as _str

STATUS_RANK = {"received": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
"""sent < delivered < read; failed is terminal, so it outranks everything."""
MEDIA = frozenset(("image", "video", "audio", "document", "sticker"))
EMPTY: Mapping[str, Any] = MappingProxyType({})
"""What an absent or malformed object reads as: ``.get`` finds nothing in it."""


def parse_payload(payload: Any) -> tuple[dict[str, Any], str | None]:
    """The normalized fields of one payload, and why it could not be read (or None)."""
    try:
        body = jsoncodec.loads(payload) if isinstance(payload, str) else payload
        value = body["entry"][0]["changes"][0]["value"]
        if not isinstance(value, dict):
            raise TypeError("value is not an object")
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return {}, f"unreadable payload: {type(exc).__name__}: {exc}"
    display = _str(_obj(value.get("metadata")).get("display_phone_number"))
    if (message := _first_item(value, "messages")) is not None:
        return _message_fields(message, display), None
    if (status := _first_item(value, "statuses")) is not None:
        return _status_fields(status, display), None
    return {"sender": display}, None  # a well-formed non-message event ("Other"): nothing to normalize


def _message_fields(message: dict[str, Any], display: str | None) -> dict[str, Any]:
    kind = message.get("type")
    media = _obj(message.get(kind)) if isinstance(kind, str) and kind in MEDIA else EMPTY
    reply, button = _interactive_reply(message), _obj(message.get("button"))
    return {
        "message_id": _str(message.get("id")),
        "direction": "inbound",
        "status": "received",
        "occurred_at": unix_to_datetime(message.get("timestamp")),
        "sender": _str(message.get("from")) or display,
        "recipient": display,
        "content_type": _str(kind),
        "text": _str(_obj(message.get("text")).get("body")) or _str(media.get("caption")) or reply.get("title")
        or _str(button.get("text")),
        "reaction": _str(_obj(message.get("reaction")).get("emoji")),
        "interactive_id": reply.get("id") or _str(button.get("payload")),
        "media_id": _str(media.get("id")),
        "media_mime_type": _str(media.get("mime_type")),
    }


def _interactive_reply(message: dict[str, Any]) -> dict[str, str]:
    interactive = message.get("interactive")
    if not isinstance(interactive, dict):
        return {}
    for kind in ("button_reply", "list_reply", "nfm_reply"):
        reply = interactive.get(kind)
        if isinstance(reply, dict):
            return {k: _str(reply.get(k)) for k in ("id", "title") if reply.get(k) is not None}
    return {}


def _status_fields(status: dict[str, Any], display: str | None) -> dict[str, Any]:
    error = _first_item(status, "errors") or EMPTY
    conversation, pricing = _obj(status.get("conversation")), _obj(status.get("pricing"))
    return {
        "message_id": _str(status.get("id") or status.get("message_id") or status.get("messsage_id")),
        "direction": "outbound",
        "status": _str(status.get("status")),
        "occurred_at": unix_to_datetime(status.get("timestamp")),
        "sender": display,
        "recipient": _str(status.get("recipient_id")),
        "error_code": _int(error.get("code")),
        "error_title": _str(error.get("title")),
        "conversation_id": _str(conversation.get("id")),
        "conversation_origin": _str(_obj(conversation.get("origin")).get("type")),
        "pricing_category": _str(pricing.get("category")),
        "billable": _bool(pricing.get("billable")),
    }


def unix_to_datetime(value: Any) -> datetime | None:
    """WhatsApp's ``timestamp`` (unix seconds as a string) → UTC; ``None`` if unreadable."""
    try:
        return datetime.fromtimestamp(int(value), timezone.utc)  # positional: a third faster
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _first_item(obj: dict[str, Any], key: str) -> Any:
    items = obj.get(key)
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return None


def _obj(value: Any) -> Mapping[str, Any]:
    """``value`` if it is an object, else an empty one: a path through a payload goes on
    with ``.get`` whatever was served where an object was documented."""
    return value if isinstance(value, dict) else EMPTY
