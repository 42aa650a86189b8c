from datetime import datetime, timedelta, timezone

import pytest

from archiver.sources.infobip import format_infobip_time
from archiver.sources.sendzen.ticks import datetime_to_ticks, ticks_to_datetime, ticks_to_unix
from archiver.db.dialect import stored_time
from archiver.times import parse_cli_time, parse_offset_time, rfc3339

UTC = timezone.utc


class TestTicks:
    def test_unix_epoch(self) -> None:
        """The SPEC's formula: unix = ticks/1e7 − 62135596800."""
        assert datetime_to_ticks(datetime(1970, 1, 1, tzinfo=UTC)) == 621_355_968_000_000_000
        assert ticks_to_unix(638_500_000_000_000_000) == 638_500_000_000_000_000 / 1e7 - 62_135_596_800

    def test_documented_example(self) -> None:
        """SendZen's example created_at 638500000000000000: unix 1714403200 by the SPEC formula."""
        assert ticks_to_datetime(638_500_000_000_000_000) == datetime(2024, 4, 29, 15, 6, 40, tzinfo=UTC)
        assert ticks_to_datetime(638_500_000_000_000_000).timestamp() == 1_714_403_200

    @pytest.mark.parametrize("moment", [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ])
    def test_round_trip(self, moment: datetime) -> None:
        """datetime → ticks → datetime is exact at microsecond precision, edge dates included."""
        assert ticks_to_datetime(datetime_to_ticks(moment)) == moment

    def test_offsets_are_normalized(self) -> None:
        """The same instant in another offset gives the same ticks."""
        local = datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
        assert datetime_to_ticks(local) == datetime_to_ticks(datetime(2024, 1, 1, tzinfo=UTC))

    def test_sub_microsecond_ticks_truncate(self) -> None:
        """Ticks finer than a microsecond are dropped, never rounded into the next one."""
        assert ticks_to_datetime(638_500_000_000_000_009) == ticks_to_datetime(638_500_000_000_000_000)


class TestOffsetTimes:
    @pytest.mark.parametrize("text", [
        "2023-02-01T23:15:03.379+0000",
        "2023-02-02T00:15:03.379+0100",
        "2023-02-01T23:15:03.379Z",
        "2023-02-02T00:15:03.379+01:00",
        "2023-02-01T18:15:03.379-0500",
    ])
    def test_all_forms_parse_to_the_same_utc_instant(self, text: str) -> None:
        """+0000, +0100, Z, +01:00 and negative offsets all become real UTC."""
        assert parse_offset_time(text) == datetime(2023, 2, 1, 23, 15, 3, 379_000, tzinfo=UTC)

    def test_string_order_is_not_time_order(self) -> None:
        """Compared as strings these would misorder; as instants they do not."""
        a, b = "2023-02-01T23:30:00.000+0100", "2023-02-01T23:00:00.000+0000"
        assert a > b and parse_offset_time(a) < parse_offset_time(b)

    @pytest.mark.parametrize("text", ["", "2023-02-01", "2023-02-01T23:15:03", "yesterday"])
    def test_rejects_times_without_offset(self, text: str) -> None:
        with pytest.raises(ValueError):
            parse_offset_time(text)

    def test_infobip_request_format(self) -> None:
        """sentSince/sentUntil: milliseconds and an explicit +00:00."""
        moment = datetime(2024, 3, 1, 12, 0, 5, 123_999, tzinfo=UTC)
        assert format_infobip_time(moment) == "2024-03-01T12:00:05.123+00:00"


class TestRendering:
    def test_rfc3339_uses_z(self) -> None:
        assert rfc3339(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00Z"
        assert rfc3339(datetime(2024, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC)) == "2024-01-01T00:00:00.25Z"
        assert rfc3339(None) is None

    def test_cli_times_default_to_utc(self) -> None:
        assert parse_cli_time("2024-01-01") == datetime(2024, 1, 1, tzinfo=UTC)
        assert parse_cli_time("2024-01-01T01:00:00+01:00") == datetime(2024, 1, 1, tzinfo=UTC)
        with pytest.raises(ValueError):
            parse_cli_time("last tuesday")


def test_rfc3339_of_sqlite_stored_text_equals_that_of_the_time() -> None:
    """The export reformats SQLite's stored text without parsing it: the same output."""
    for moment in (datetime(2024, 5, 1, tzinfo=timezone.utc), datetime(2024, 5, 1, 23, 59, 59, 120, tzinfo=timezone.utc),
                   datetime(2024, 5, 1, 1, 2, 3, 999999, tzinfo=timezone.utc),
                   datetime(9999, 12, 31, 0, 0, 0, 500000, tzinfo=timezone.utc)):
        assert rfc3339(stored_time(moment, on_sqlite=True)) == rfc3339(moment)
