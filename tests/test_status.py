from datetime import datetime, timedelta, timezone

from archiver.status import render_text, retention_headroom

T = datetime(2024, 5, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


def test_retention_headroom() -> None:
    week = timedelta(days=7)
    assert retention_headroom(T, T + H, week) == (week - H).total_seconds()
    assert retention_headroom(None, T, week) == 0.0
    assert retention_headroom(T - 8 * 24 * H, T, week) < 0, "negative: data already lost"


def test_text_rendering_lists_gaps() -> None:
    text = render_text({"sendzen": {"account": "default", "checkpoint": "2024-05-01T00:00:00Z", "lag_seconds": 3.0,
                                    "rows": 7, "last_success": None, "last_error": None,
                                    "retention_headroom_seconds": 10.0,
                                    "gaps": [{"from": "a", "to": "b", "reason": "why"}]}})
    assert "sendzen (account default)" in text and "rows                        7" in text
    assert "a .. b  why" in text
