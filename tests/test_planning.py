from datetime import datetime, timedelta, timezone

from archiver.planning import Span, Watermark, plan_start, plan_windows

T0 = datetime(2024, 1, 8, tzinfo=timezone.utc)
H = timedelta(hours=1)
WEEK = timedelta(days=7)


class TestStart:
    def test_first_run_starts_at_retention(self) -> None:
        assert plan_start(None, T0, WEEK) == (T0 - WEEK, None)

    def test_resumes_at_checkpoint(self) -> None:
        assert plan_start(T0 - H, T0, WEEK) == (T0 - H, None)

    def test_stale_checkpoint_is_a_gap(self) -> None:
        """Down longer than retention: the lost span becomes a gap; work resumes at retention."""
        start, gap = plan_start(T0 - WEEK - 5 * H, T0, WEEK)
        assert start == T0 - WEEK
        assert gap is not None and (gap.start, gap.end) == (T0 - WEEK - 5 * H, T0 - WEEK)


class TestWindows:
    def test_cover_the_range_without_holes(self) -> None:
        windows = plan_windows(T0, T0 + 2 * H + timedelta(minutes=30), H)
        assert [w.end - w.start for w in windows] == [H, H, timedelta(minutes=30)]
        assert all(a.end == b.start for a, b in zip(windows, windows[1:]))
        assert windows[0].start == T0 and windows[-1].end == T0 + 2.5 * H

    def test_empty_and_point_ranges(self) -> None:
        assert plan_windows(T0, T0 - H, H) == []
        assert plan_windows(T0, T0, H) == [Span(T0, T0)]


class TestWatermark:
    def test_out_of_order_completion_never_passes_an_unfinished_window(self) -> None:
        windows = plan_windows(T0, T0 + 4 * H, H)
        mark = Watermark(windows, ceiling=T0 + 10 * H)
        assert mark.complete(2) is None
        assert mark.complete(1) is None
        assert mark.complete(0) == T0 + 3 * H, "0, 1 and 2 are done: the mark jumps over all three"
        assert mark.complete(3) == T0 + 4 * H

    def test_ceiling_holds_back_the_overlap(self) -> None:
        mark = Watermark(plan_windows(T0, T0 + 2 * H, H), ceiling=T0 + H + timedelta(minutes=55))
        assert mark.complete(0) == T0 + H
        assert mark.complete(1) == T0 + H + timedelta(minutes=55)
