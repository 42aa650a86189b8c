"""A parsed record that the columns cannot hold is set aside before it is written."""

from __future__ import annotations

from datetime import datetime, timezone

from archiver.db.fit import KEY_WIDTH, unfit_reason
from archiver.domain import Event, Record

T = datetime(2024, 5, 1, tzinfo=timezone.utc)


def record(key: str = "k", **fields: object) -> Record:
    return Record(key=key, at=T, raw={}, event=Event(**fields))  # type: ignore[arg-type]


def test_a_record_that_fits_has_no_reason() -> None:
    assert unfit_reason(record(message_id="m" * 256, currency="EUR", status="delivered", error_code=2**63 - 1)) is None


def test_each_column_too_narrow_for_its_value_is_named() -> None:
    assert unfit_reason(record(message_id="m" * 257)) == "message_id is longer than 256 characters"
    assert unfit_reason(record(currency="EURO-DOLLAR")) == "currency is longer than 8 characters"
    assert unfit_reason(record(direction="o" * 17)) == "direction is longer than 16 characters"
    assert unfit_reason(record(key="k" * (KEY_WIDTH + 1))) == f"its id is longer than {KEY_WIDTH} characters"


def test_what_no_database_holds_is_named() -> None:
    assert unfit_reason(record(key="a\x00b")) == "its id holds characters no database stores (NUL or a lone surrogate)"
    assert unfit_reason(record(error_code=2**63)) == "error_code is beyond a 64-bit integer"
