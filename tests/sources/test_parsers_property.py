"""Whatever JSON a provider serves, the parsers answer in their own terms: a page is
malformed (retried), or each entry is archived or quarantined with a reason. Never
another exception, never a record that the database would refuse."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.db.fit import unfit_reason
from archiver.domain import Record
from archiver.engine import unreadable_reason
from archiver.errors import MalformedResponse, Unreadable
from archiver.sources.infobip import parse_message, parse_results
from archiver.sources.sendzen import parse_log, parse_logs_page

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=30)
timeish = st.sampled_from(["2024-01-01T00:00:00.000+0000", "2024-01-01T00:00:00.000+0530", "2024-13-01T00:00:00.000+0000",
                           "9999-12-31T23:59:59.999-0100", "0001-01-01T00:00:00.000+0100", ""]) | st.text(max_size=30)
infobip_like = st.fixed_dictionaries(
    {"messageId": st.text(max_size=300) | st.integers(), "sentAt": timeish},
    optional={k: json_values for k in ("status", "error", "price", "content", "sender", "destination", "doneAt")})
sendzen_like = st.fixed_dictionaries(
    {"created_at": st.integers() | st.text(max_size=5), "payload": json_values | st.text(max_size=200)},
    optional={k: json_values for k in ("event_type", "project_id", "phone_number_id")})


def archived_or_quarantined(parse: Any, entry: Any) -> str | Record:
    """What the engine does with one entry the page parser let through."""
    try:
        record = parse(entry)
    except Unreadable as exc:  # the only failure a parser may signal; anything else is a bug
        return unreadable_reason(exc)
    return unfit_reason(record) or record


def check_page(page_parser: Any, parse: Any, body: Any) -> None:
    try:
        good, bad, _ = page_parser(body)
    except MalformedResponse:
        return
    assert all(isinstance(q.reason, str) and q.reason for q in bad)
    for entry in good:
        outcome = archived_or_quarantined(parse, entry)
        assert isinstance(outcome, (str, Record))
        if isinstance(outcome, Record):
            assert outcome.at.tzinfo is not None and isinstance(outcome.key, str)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.fixed_dictionaries({"results": st.lists(infobip_like | json_values, max_size=5)})))
def test_infobip_pages_never_raise_anything_else(body: Any) -> None:
    """Arbitrary JSON at the Infobip parsers: malformed, archived or quarantined, nothing else."""
    check_page(parse_results, parse_message, body)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.fixed_dictionaries(
    {"data": st.fixed_dictionaries({"logs": st.lists(sendzen_like | json_values, max_size=5)})})))
def test_sendzen_pages_never_raise_anything_else(body: Any) -> None:
    """Arbitrary JSON at the SendZen parsers: malformed, archived or quarantined, nothing else."""
    check_page(parse_logs_page, parse_log, body)
