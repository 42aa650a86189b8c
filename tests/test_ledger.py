from datetime import datetime, timedelta, timezone

from archiver.ledger import LEDGER_HOLE, Covered, holes, merge

T = datetime(2024, 5, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


def test_holes_in_the_ledger_are_found() -> None:
    windows = [(T, T + H), (T + H, T + 2 * H), (T + 3 * H, T + 4 * H), (T + 3 * H, T + 5 * H)]
    (hole,) = holes(windows, checkpoint=T + 5 * H)
    assert (hole.start, hole.end, hole.reason) == (T + 2 * H, T + 3 * H, LEDGER_HOLE)


def test_windows_past_the_checkpoint_are_not_holes_yet() -> None:
    assert holes([(T, T + H), (T + 5 * H, T + 6 * H)], checkpoint=T + H) == []
    assert holes([], checkpoint=None) == []


def row(start: int, end: int, records: int = 1, finished: int = 0) -> Covered:
    return Covered(T + start * H, T + end * H, records, 1, T + finished * H)


def test_merge_folds_overlapping_and_touching_windows_and_keeps_holes() -> None:
    # polls re-read an overlap tail; one span (6h..7h) was never fetched
    rows = [row(3, 5, finished=9), row(0, 2, 10), row(2, 3, 5), row(1, 2, 2), row(7, 8, 1), row(4, 6, 3)]
    merged = merge(rows)
    assert merged == [Covered(T, T + 6 * H, 21, 5, T + 9 * H), row(7, 8, 1)]
    assert holes([(c.start, c.end) for c in merged], checkpoint=T + 8 * H) == \
        holes([(r.start, r.end) for r in rows], checkpoint=T + 8 * H), "merging never hides a hole"
    assert merge(merged) == merged and merge([]) == []
