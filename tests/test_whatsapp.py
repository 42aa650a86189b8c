"""Normalization of each WhatsApp payload kind SendZen serves."""

import json
from datetime import datetime, timezone

from archiver.whatsapp import parse_payload


def payload(value: dict) -> str:
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}]})


META = {"display_phone_number": "15551234567", "phone_number_id": "123456789012345"}


def message(**fields) -> str:
    return payload({"messaging_product": "whatsapp", "metadata": META,
                    "messages": [{"from": "1234567890", "id": "wamid.X", "timestamp": "1704067200", **fields}]})


def status(**fields) -> str:
    return payload({"messaging_product": "whatsapp", "metadata": META,
                    "statuses": [{"id": "wamid.S", "recipient_id": "1234567890", "timestamp": "1704067300", **fields}]})


def test_incoming_text() -> None:
    fields, error = parse_payload(message(type="text", text={"body": "Hello"}))
    assert error is None
    assert fields["message_id"] == "wamid.X" and fields["direction"] == "inbound" and fields["status"] == "received"
    assert fields["sender"] == "1234567890" and fields["recipient"] == "15551234567"
    assert fields["content_type"] == "text" and fields["text"] == "Hello"
    assert fields["occurred_at"] == datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_image_with_caption() -> None:
    fields, _ = parse_payload(message(type="image", image={"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "look"}))
    assert (fields["media_id"], fields["media_mime_type"], fields["text"]) == ("MEDIA1", "image/jpeg", "look")


def test_reaction_with_the_documented_typo() -> None:
    """SendZen's example spells messsage_id; the emoji is still read."""
    fields, error = parse_payload(message(type="reaction", reaction={"messsage_id": "wamid.OLD", "emoji": "👍"}))
    assert error is None and fields["reaction"] == "👍" and fields["content_type"] == "reaction"


def test_quick_reply_button_and_interactive_reply() -> None:
    button, _ = parse_payload(message(type="button", button={"text": "Yes", "payload": "YES_PAYLOAD"}))
    assert button["text"] == "Yes" and button["interactive_id"] == "YES_PAYLOAD"
    reply, _ = parse_payload(message(type="interactive",
                                     interactive={"type": "button_reply", "button_reply": {"id": "b1", "title": "Book"}}))
    assert reply["text"] == "Book" and reply["interactive_id"] == "b1"
    listed, _ = parse_payload(message(type="interactive",
                                      interactive={"type": "list_reply", "list_reply": {"id": "r2", "title": "Row"}}))
    assert listed["interactive_id"] == "r2"


def test_delivered_status_with_conversation_and_pricing() -> None:
    fields, _ = parse_payload(status(status="delivered", conversation={"id": "c1", "origin": {"type": "service"}},
                                     pricing={"pricing_model": "PMP", "billable": False, "category": "service"}))
    assert fields["status"] == "delivered" and fields["direction"] == "outbound"
    assert fields["recipient"] == "1234567890" and fields["sender"] == "15551234567"
    assert (fields["conversation_id"], fields["conversation_origin"]) == ("c1", "service")
    assert fields["pricing_category"] == "service" and fields["billable"] is False


def test_failed_status_errors() -> None:
    fields, _ = parse_payload(status(status="failed", errors=[{"code": 131047, "title": "Re-engagement message"}]))
    assert fields["status"] == "failed" and fields["error_code"] == 131047
    assert fields["error_title"] == "Re-engagement message"


def test_unreadable_payloads_report_instead_of_raising() -> None:
    """Garbage, wrong shapes and unknown kinds yield parse_error, never an exception."""
    for bad in ["not json", "{}", json.dumps({"entry": []}), json.dumps({"entry": [{"changes": [{"value": 3}]}]}), None]:
        fields, error = parse_payload(bad)
        assert error, bad
    fields, error = parse_payload(payload({"metadata": META, "something_else": {}}))
    assert error is None and fields == {"sender": "15551234567"}, "a well-formed 'Other' event is not an error"


def test_bad_timestamp_is_null_not_fatal() -> None:
    fields, error = parse_payload(message(type="text", text={"body": "x"}, timestamp="soon"))
    assert error is None and fields["occurred_at"] is None
