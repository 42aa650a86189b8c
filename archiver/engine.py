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
WRITE_BATCH = 1000
"""Records buffered before a write: few transactions, and memory bounded by this, not the backlog."""


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


async def run_pass(
    source: Source,
    store: Store,
    *,
    now: datetime | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    observer: Observer | None = None,
    kind: str = "poll",
    schedule: RefreshSchedule | None = None,
) -> PassResult:
    """Archive one pass; with ``since``/``until``, exactly that range and no checkpoint move.

    ``schedule`` thins out re-reads of records that are not final (the daemon keeps one
    per source); without it every pending record is re-read.
    """
    await store.admission.refresh(store.engine)  # erasures made since the last pass take effect
    run_id = await store.start_run(source.name, source.account, kind)
    requests_before = source.requests
    result = PassResult(source.name, source.account)
    try:
        await _pass(source, store, result, now or utcnow(), since, until, observer, schedule)
    except BaseException as exc:
        result.requests = source.requests - requests_before
        error = _describe(exc)
        await asyncio.shield(store.finish_run(run_id, ok=False, records=result.records,
                                              requests=result.requests, error=error))
        metrics.PASSES.labels(source.name, source.account, "error").inc()
        raise
    result.requests = source.requests - requests_before
    await store.finish_run(run_id, ok=True, records=result.records, requests=result.requests)
    metrics.PASSES.labels(source.name, source.account, "ok").inc()
    metrics.LAST_SUCCESS.labels(source.name, source.account).set_to_current_time()
    log.info("pass finished", source=source.name, account=source.account, records=result.records,
             pages=result.pages, windows=result.windows, refreshed=result.refreshed, requests=result.requests)
    return result


async def _pass(source: Source, store: Store, result: PassResult, now: datetime, since: datetime | None,
                until: datetime | None, observer: Observer | None, schedule: RefreshSchedule | None) -> None:
    explicit = since is not None or until is not None
    if explicit:
        start, end = since or now - source.retention, min(until or now, now)
    else:
        start, gap = plan_start(await store.checkpoint(source.name, source.account), now, source.retention)
        end = now
        if gap is not None:
            await _record_gap(source, store, result, gap)
    if not explicit and end - start > source.window:
        # Catching up on a long backlog: archive the live tail first (at the limiter's
        # front), so fresh records are queryable in seconds, not after the backlog.
        tail = Span(max(start, end - source.overlap), end)
        with urgent():
            await _archive_window(source, store, result, tail)
    planner = WindowPlanner(start, end, source.window, workers=source.max_concurrency)
    watermark = None if explicit else Watermark(ceiling=now - source.overlap)
    closing = asyncio.Lock()
    if observer:
        observer.planned(source.name, max(0.0, (end - start).total_seconds()))

    async def worker() -> None:
        while (span := planner.next()) is not None:
            index = watermark.add(span.end) if watermark else -1
            result.windows += 1
            records = await _archive_window(source, store, result, span, (watermark, index, closing), observer)
            planner.observe(span, records)

    await _gather(worker() for _ in range(source.max_concurrency))
    with urgent():
        await _refresh(source, store, result, now, schedule)
    await store.compact_coverage(source.name, source.account)


async def _archive_window(source: Source, store: Store, result: PassResult, span: Span,
                          mark: tuple[Watermark | None, int, asyncio.Lock] | None = None,
                          observer: Observer | None = None) -> int:
    """Fetch and store one window; the number of records it held.

    ``mark`` (watermark, this window's index, the closing lock) lets the window's last
    write move the checkpoint; without it the window is stored and logged only.
    """
    held: list[Record] = []
    records = pages = 0
    requests_before = source.requests
    async for page in source.fetch(span.start, span.end):
        if len(held) >= WRITE_BATCH:
            await _save(source, store, result, held)
            held = []
        parsed = await _parse(source, store, result, page)
        held += parsed
        records, pages = records + len(parsed), pages + 1
    watermark, index, closing = mark or (None, -1, asyncio.Lock())
    # Closing windows one at a time: the watermark may only cover windows whose last
    # page has committed, so computing it and committing it must not interleave.
    async with closing:
        checkpoint = watermark.complete(index) if watermark else None
        await _save(source, store, result, held, checkpoint=checkpoint,
                    window=Window(span.start, span.end, records, pages))
    result.pages += pages
    log.debug("window archived", source=source.name, window_from=rfc3339(span.start),
              window_to=rfc3339(span.end), records=records, pages=pages)
    if observer:
        observer.window_done(source.name, (span.end - span.start).total_seconds(), records,
                             source.requests - requests_before)
    return records


async def _parse(source: Source, store: Store, result: PassResult, page: Page) -> list[Record]:
    for gap in page.gaps:
        await _record_gap(source, store, result, gap)
    records, unreadable = [], list(page.quarantined)
    for raw in page.raws:
        try:
            record = source.parse(raw)
        except Exception as exc:  # one record's surprise must not block its page  # noqa: BLE001
            unreadable.append(Quarantined(raw, unreadable_reason(exc)))
            continue
        unfit = unfit_reason(record)
        if unfit:
            unreadable.append(Quarantined(raw, unfit))
        else:
            records.append(record)
    await _quarantine(source, store, result, unreadable)
    unparsed = sum(1 for r in records if r.event.parse_error)
    if unparsed:
        result.unparsed += unparsed
        metrics.UNPARSED.labels(source.name, source.account).inc(unparsed)
    return records


async def _quarantine(source: Source, store: Store, result: PassResult, items: list[Quarantined]) -> None:
    """Keep what cannot be read, once, and say why: never its content (personal data)."""
    if not items:
        return
    await store.quarantine.add(source.name, source.account, items)
    result.quarantined += len(items)
    metrics.QUARANTINED.labels(source.name, source.account).inc(len(items))
    for item in items:
        log.warning("record quarantined", source=source.name, account=source.account, reason=item.reason)


def unreadable_reason(exc: Exception) -> str:
    """A parse failure in words: a source's own ``Unreadable`` says it; anything else is named."""
    if isinstance(exc, Unreadable):
        return str(exc)
    if isinstance(exc, (OverflowError, ValueError)) and "range" in str(exc):
        return "a time in the record is outside the dates a calendar holds"
    return "the record does not have the documented shape"


async def _save(source: Source, store: Store, result: PassResult, records: list[Record], **extra: object) -> None:
    await store.save(source.name, source.account, records, **extra)  # type: ignore[arg-type]
    result.records += len(records)
    metrics.RECORDS.labels(source.name, source.account).inc(len(records))


async def _refresh(source: Source, store: Store, result: PassResult, now: datetime,
                   schedule: RefreshSchedule | None) -> None:
    """Re-read records that were not final while the provider still serves them
    (with a ``schedule``, only those due: see ``archiver.refresh``)."""
    pending = await store.pending_messages(source.name, source.account, now - source.retention)
    due = schedule.due(pending, now) if schedule else [message_id for message_id, _ in pending]
    if not due:
        return
    async for page in source.refresh(due):
        records = await _parse(source, store, result, page)
        await _save(source, store, result, records)
        result.refreshed += len(records)
    if schedule:
        schedule.checked(due, now)


async def _record_gap(source: Source, store: Store, result: PassResult, gap: Gap) -> None:
    result.gaps.append(gap)
    await store.add_gap(source.name, source.account, gap)
    log.error("gap in the archive", source=source.name, account=source.account,
              gap_from=rfc3339(gap.start), gap_to=rfc3339(gap.end), reason=gap.reason)


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
