from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from prometheus_client import REGISTRY

from archiver import metrics
from archiver.db.store import Store, Window
from archiver.ledger import LEDGER_HOLE
from archiver.domain import Gap
from archiver.status import refresh_metrics, render_text, retention_headroom, source_status

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
                                    "retention_headroom_seconds": 10.0, "quarantined": 2,
                                    "gaps": [{"from": "a", "to": "b", "reason": "why"}]}})
    assert "sendzen (account default)" in text and "rows                        7" in text
    assert "quarantined                 2" in text
    assert "a .. b  why" in text


async def test_status_and_daemon_gauge_count_the_same_gaps(store: Store) -> None:
    """A recorded gap and a ledger hole: both in status, and in the daemon's archiver_gaps."""
    source = SimpleNamespace(name="sendzen", account="default", retention=timedelta(days=7))
    now = T + 10 * H
    for start, end in [(0, 2), (3, 5), (5, 9)]:  # 2h..3h never fetched
        await store.save("sendzen", "default", [], window=Window(T + start * H, T + end * H, 1, 1))
    await store.save("sendzen", "default", [], checkpoint=T + 9 * H)
    await store.add_gap("sendzen", "default", Gap(T - 48 * H, T - 24 * H, "checkpoint older than retention"))
    status = await source_status(source, store, now)  # type: ignore[arg-type]
    assert [g["reason"] for g in status["gaps"]] == ["checkpoint older than retention", LEDGER_HOLE]
    metrics.GAPS.labels("sendzen", "default").set(0)
    await refresh_metrics(source, store, now)  # type: ignore[arg-type]
    assert REGISTRY.get_sample_value("archiver_gaps", {"source": "sendzen", "account": "default"}) == 2
