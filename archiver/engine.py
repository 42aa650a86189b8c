"""One archive pass of one source, independent of which provider it is.

A pass fixes ``now``, plans windows from the checkpoint (or the start of retention)
up to ``now`` (sized to the record density seen), fetches them concurrently, and
upserts pages in batches as they arrive. The
checkpoint advances with the last page of a window, in the same transaction, but
only over the contiguous prefix of finished windows and never past
``now - overlap``: the next pass re-reads that tail, catching records the provider
committed late with an older timestamp. Records that may still change (the source
marks them not final) are then re-read by id.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import structlog

from archiver import metrics
from archiver.db.fit import unfit_reason
from archiver.db.store import Store, Window
from archiver.errors import Unreadable, one_line
from archiver.planning import Span, Watermark, WindowPlanner, plan_start
from archiver.ratelimit import urgent
from archiver.refresh import RefreshSchedule
from archiver.domain import Gap, Page, Quarantined, Record
from archiver.sources.base import Source
from archiver.times import rfc3339, utcnow

log = structlog.get_logger(__name__)


class Observer(Protocol):
    """Told about a pass's progress (the backfill's progress display)."""

    def planned(self, source: str, seconds: float) -> None: ...

    def window_done(self, source: str, seconds: float, records: int, requests: int) -> None: ...


@dataclass
class PassResult:
    source: str
    account: str
    records: int = 0
    pages: int = 0
    windows: int = 0
    refreshed: int = 0
    unparsed: int = 0
    quarantined: int = 0
    requests: int = 0
    gaps: list[Gap] = field(default_factory=list)


async def run_pass(source: Source, store: Store, *, now: datetime | None = None, since: datetime | None = None,
                   until: datetime | None = None, observer: Observer | None = None, kind: str = "poll",
                   schedule: RefreshSchedule | None = None) -> PassResult:
    """Archive one pass; with ``since``/``until``, exactly that range and no checkpoint move.

    ``schedule`` thins out re-reads of records that are not final (the daemon keeps one
    per source); without it every pending record is re-read.
    """
    await store.admission.refresh(store.engine)  # erasures made since the last pass take effect
    run = Pass(source, store, now or utcnow(), observer, schedule)
    run_id = await store.start_run(source.name, source.account, kind)
    try:
        await run.archive(since, until)
    except BaseException as exc:
        await asyncio.shield(run.finish(run_id, exc))
        raise
    await run.finish(run_id, None)
    return run.result


@dataclass
class Pass:
    """One pass of one source: what it archives into, what it has counted so far."""

    source: Source
    store: Store
    now: datetime
    observer: Observer | None = None
    schedule: RefreshSchedule | None = None
    result: PassResult = field(init=False)
    closing: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Windows close one at a time: the watermark may only cover committed windows."""

    def __post_init__(self) -> None:
        self.result = PassResult(self.source.name, self.source.account)
        self._requests_before = self.source.requests
        self._started = time.monotonic()

    async def archive(self, since: datetime | None, until: datetime | None) -> None:
        explicit = since is not None or until is not None
        start, end = await self._range(since, until) if not explicit else (
            since or self.now - self.source.retention, min(until or self.now, self.now))
        if not explicit and end - start > self.source.window:
            # Catching up on a long backlog: archive the live tail first (at the limiter's
            # front), so fresh records are queryable in seconds, not after the backlog.
            with urgent():
                await self.window(Span(max(start, end - self.source.overlap), end))
        watermark = None if explicit else Watermark(ceiling=self.now - self.source.overlap)
        await self._windows(WindowPlanner(start, end, self.source.window, workers=self.source.max_concurrency),
                            watermark, (end - start).total_seconds())
        with urgent():
            await self._refresh()
        await self.store.compact_coverage(self.source.name, self.source.account)

    async def _range(self, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
        """From the checkpoint (or the start of retention, with a gap if it is older) to now."""
        checkpoint = await self.store.checkpoint(self.source.name, self.source.account)
        start, gap = plan_start(checkpoint, self.now, self.source.retention)
        if gap is not None:
            await self._record_gap(gap)
        return start, self.now

    async def _windows(self, planner: WindowPlanner, watermark: Watermark | None, seconds: float) -> None:
        """``max_concurrency`` workers take windows from the planner until none is left."""
        if self.observer:
            self.observer.planned(self.source.name, max(0.0, seconds))

        async def worker() -> None:
            while (span := planner.next()) is not None:
                index = watermark.add(span.end) if watermark else -1
                self.result.windows += 1
                planner.observe(span, await self.window(span, watermark, index))

        await _gather(worker() for _ in range(self.source.max_concurrency))

    async def window(self, span: Span, watermark: Watermark | None = None, index: int = -1) -> int:
        """Fetch and store one window; the number of records it held. With a ``watermark``,
        the window's last write moves the checkpoint as far as finished windows allow."""
        held: list[Record] = []
        records = pages = 0
        requests_before = self.source.requests
        async for page in self.source.fetch(span.start, span.end):
            if len(held) >= self.store.write_batch:
                await self._save(held)
                held = []
            parsed = await self._parse(page)
            held += parsed
            records, pages = records + len(parsed), pages + 1
        async with self.closing:
            checkpoint = watermark.complete(index) if watermark else None
            await self._save(held, checkpoint=checkpoint, window=Window(span.start, span.end, records, pages))
        self.result.pages += pages
        self._window_done(span, records, pages, self.source.requests - requests_before)
        return records

    def _window_done(self, span: Span, records: int, pages: int, requests: int) -> None:
        log.debug("window archived", source=self.source.name, window_from=rfc3339(span.start),
                  window_to=rfc3339(span.end), records=records, pages=pages)
        if self.observer:
            self.observer.window_done(self.source.name, (span.end - span.start).total_seconds(), records, requests)

    async def _parse(self, page: Page) -> list[Record]:
        """The page's records; its gaps recorded, and what cannot be read quarantined."""
        for gap in page.gaps:
            await self._record_gap(gap)
        records, unreadable = [], list(page.quarantined)
        for raw in page.raws:
            record, problem = parse_one(self.source, raw)
            if problem:
                unreadable.append(Quarantined(raw, problem))
            else:
                records.append(record)  # type: ignore[arg-type]
        await self._quarantine(unreadable)
        unparsed = sum(1 for r in records if r.event.parse_error)
        if unparsed:
            self.result.unparsed += unparsed
            metrics.UNPARSED.labels(self.source.name, self.source.account).inc(unparsed)
        return records

    async def _quarantine(self, items: list[Quarantined]) -> None:
        """Keep what cannot be read, once, and say why: never its content (personal data)."""
        if not items:
            return
        await self.store.quarantine.add(self.source.name, self.source.account, items)
        self.result.quarantined += len(items)
        metrics.QUARANTINED.labels(self.source.name, self.source.account).inc(len(items))
        for item in items:
            log.warning("record quarantined", source=self.source.name, account=self.source.account,
                        reason=item.reason)

    async def _save(self, records: list[Record], checkpoint: datetime | None = None,
                    window: Window | None = None) -> None:
        await self.store.save(self.source.name, self.source.account, records, checkpoint=checkpoint, window=window)
        self.result.records += len(records)
        metrics.RECORDS.labels(self.source.name, self.source.account).inc(len(records))

    async def _refresh(self) -> None:
        """Re-read records that were not final while the provider still serves them
        (with a ``schedule``, only those due: see ``archiver.refresh``)."""
        source, schedule = self.source, self.schedule
        pending = await self.store.pending_messages(source.name, source.account, self.now - source.retention)
        due = schedule.due(pending, self.now) if schedule else [message_id for message_id, _ in pending]
        if not due:
            return
        async for page in source.refresh(due):
            records = await self._parse(page)
            await self._save(records)
            self.result.refreshed += len(records)
        if schedule:
            schedule.checked(due, self.now)

    async def _record_gap(self, gap: Gap) -> None:
        self.result.gaps.append(gap)
        await self.store.add_gap(self.source.name, self.source.account, gap)
        log.error("gap in the archive", source=self.source.name, account=self.source.account,
                  gap_from=rfc3339(gap.start), gap_to=rfc3339(gap.end), reason=gap.reason)

    async def finish(self, run_id: int, error: BaseException | None) -> None:
        """The runs table, the metrics and the log line, whichever way the pass ended."""
        result, source = self.result, self.source
        result.requests = source.requests - self._requests_before
        await self.store.finish_run(run_id, ok=error is None, records=result.records, requests=result.requests,
                                    error=_describe(error) if error else None)
        metrics.PASSES.labels(source.name, source.account, "error" if error else "ok").inc()
        if error is None:
            metrics.LAST_SUCCESS.labels(source.name, source.account).set_to_current_time()
            log.info("pass finished", source=source.name, account=source.account, records=result.records,
                     pages=result.pages, windows=result.windows, refreshed=result.refreshed,
                     requests=result.requests, seconds=round(time.monotonic() - self._started, 3))


def parse_one(source: Source, raw: dict) -> tuple[Record | None, str | None]:
    """A served record as a ``Record``, or why it cannot be archived (never an exception:
    one record's surprise must not block its page)."""
    try:
        record = source.parse(raw)
    except Exception as exc:  # noqa: BLE001
        return None, unreadable_reason(exc)
    return record, unfit_reason(record)


def unreadable_reason(exc: Exception) -> str:
    """A parse failure in words: a source's own ``Unreadable`` says it; anything else is named."""
    if isinstance(exc, Unreadable):
        return str(exc)
    if isinstance(exc, (OverflowError, ValueError)) and "range" in str(exc):
        return "a time in the record is outside the dates a calendar holds"
    return "the record does not have the documented shape"


async def _gather(coros: object) -> None:
    """Run window tasks; on the first failure cancel the rest and raise that failure itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:  # type: ignore[attr-defined]
                group.create_task(coro)
    except BaseExceptionGroup as group_error:
        raise _first_leaf(group_error) from None


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "interrupted"
    return one_line(str(exc)) or type(exc).__name__
