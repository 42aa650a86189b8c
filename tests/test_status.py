from datetime import datetime, timedelta, timezone

from archiver.status import LEDGER_HOLE, coverage_holes, render_text, retention_headroom

T = datetime(2024, 5, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


def test_holes_in_the_ledger_are_found() -> None:
    windows = [(T, T + H), (T + H, T + 2 * H), (T + 3 * H, T + 4 * H), (T + 3 * H, T + 5 * H)]
    (hole,) = coverage_holes(windows, checkpoint=T + 5 * H)
    assert (hole.start, hole.end, hole.reason) == (T + 2 * H, T + 3 * H, LEDGER_HOLE)


def test_windows_past_the_checkpoint_are_not_holes_yet() -> None:
    assert coverage_holes([(T, T + H), (T + 5 * H, T + 6 * H)], checkpoint=T + H) == []
    assert coverage_holes([], checkpoint=None) == []


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
