from datetime import datetime, timedelta, timezone

from archiver.planning import Span, Watermark, WindowPlanner, plan_start

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


def drain(planner: WindowPlanner, records_per_hour: float = 0) -> list[Span]:
    """Plan to the end, reporting a uniform density as each window completes."""
    spans = []
    while (span := planner.next()) is not None:
        spans.append(span)
        planner.observe(span, int(records_per_hour * (span.end - span.start) / H))
    return spans


class TestWindows:
    def test_cover_the_range_without_holes(self) -> None:
        spans = drain(WindowPlanner(T0, T0 + 50 * H, H), records_per_hour=300)
        assert spans[0].start == T0 and spans[-1].end == T0 + 50 * H
        assert all(a.end == b.start for a, b in zip(spans, spans[1:]))

    def test_empty_and_point_ranges(self) -> None:
        assert drain(WindowPlanner(T0, T0 - H, H)) == []
        assert drain(WindowPlanner(T0, T0, H)) == [Span(T0, T0)]

    def test_sizes_follow_density(self) -> None:
        """~target records per window: dense data gets short windows, sparse data long ones."""
        dense = drain(WindowPlanner(T0, T0 + 48 * H, H, target=1000), records_per_hour=10_000)
        assert dense[0].end - dense[0].start == H, "the first window uses the configured size"
        assert all(s.end - s.start == 6 * timedelta(minutes=1) for s in dense[1:-1])
        sparse = drain(WindowPlanner(T0, T0 + 7 * 24 * H, H, target=1000), records_per_hour=10)
        widths = [s.end - s.start for s in sparse]
        assert widths[:4] == [H, 4 * H, 16 * H, 24 * H], "grows at most 4× per window, up to a day"

    def test_several_workers_finish_together(self) -> None:
        """Guided sizing: with 8 workers the pass ends in short windows, never below target/8 records."""
        spans = drain(WindowPlanner(T0, T0 + WEEK, H, target=2000, workers=8), records_per_hour=60)
        assert spans[-1].end == T0 + WEEK and all(a.end == b.start for a, b in zip(spans, spans[1:]))
        widths = [s.end - s.start for s in spans]
        assert max(widths) <= WEEK / 16, "no window takes more than half a worker's share"
        after_peak = widths[widths.index(max(widths)):-1]  # past the ×4 ramp, before the remainder
        assert all(w >= timedelta(minutes=250) for w in after_peak), "at least target/8 = 250 records each"
        assert max(widths[-9:-1]) < max(widths) / 2, "the last round of windows is short"
        alone = drain(WindowPlanner(T0, T0 + WEEK, H, target=2000), records_per_hour=60)
        assert max(s.end - s.start for s in alone) == timedelta(days=1), "one worker: sized by density alone"

    def test_nothing_seen_yet_means_no_guess(self) -> None:
        planner = WindowPlanner(T0, T0 + 10 * H, 2 * H)
        assert [planner.next(), planner.next()] == [Span(T0, T0 + 2 * H), Span(T0 + 2 * H, T0 + 4 * H)]


class TestWatermark:
    def test_out_of_order_completion_never_passes_an_unfinished_window(self) -> None:
        mark = Watermark(ceiling=T0 + 10 * H)
        for i in range(4):
            assert mark.add(T0 + (i + 1) * H) == i
        assert mark.complete(2) is None
        assert mark.complete(1) is None
        assert mark.complete(0) == T0 + 3 * H, "0, 1 and 2 are done: the mark jumps over all three"
        assert mark.complete(3) == T0 + 4 * H

    def test_windows_added_later_extend_the_prefix(self) -> None:
        mark = Watermark(ceiling=T0 + 10 * H)
        mark.add(T0 + H)
        assert mark.complete(0) == T0 + H
        mark.add(T0 + 2 * H)
        assert mark.complete(1) == T0 + 2 * H

    def test_ceiling_holds_back_the_overlap(self) -> None:
        mark = Watermark(ceiling=T0 + H + timedelta(minutes=55))
        mark.add(T0 + H)
        mark.add(T0 + 2 * H)
        assert mark.complete(0) == T0 + H
        assert mark.complete(1) == T0 + H + timedelta(minutes=55)
