"""``archiver run``: poll every source on its interval until told to stop.

apscheduler fires one interval job per source (never two at once for a source).
A stop request cancels passes in flight: their open transaction rolls back, and
what was committed before stays, with its checkpoint, so nothing is half-written.
A source whose credentials are refused stops; the others go on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from archiver import metrics, server
from archiver.engine import run_pass
from archiver.errors import ArchiverError, AuthFailed, ProviderBusy, one_line
from archiver.leader import leadership_for
from archiver.lifecycle.prune import prune
from archiver.refresh import RefreshSchedule
from archiver.runtime import Runtime
from archiver.sources.base import Source
from archiver.status import refresh_metrics
from archiver.times import rfc3339, utcnow

log = structlog.get_logger(__name__)
PRUNE_RUN = ("archive", "prune")
"""The runs table's (source, account) for the daily prune: status reads the next one from it."""
STOP_TIMEOUT_SECONDS = 8.0


@dataclass
class Health:
    interval: timedelta
    started: datetime
    last_success: datetime | None = None
    last_error: str | None = None
    stopped: bool = False
    standby: bool = False
    waiting_until: datetime | None = None
    """The provider asked for a long pause (429 + Retry-After): healthy, not polling, until then."""

    def healthy(self, now: datetime) -> bool:
        """Polled successfully within three intervals (or still within its first three).

        A hot standby is healthy: it is ready to take over, which is its job.
        """
        if self.stopped:
            return False
        if self.standby or (self.waiting_until is not None and now <= self.waiting_until):
            return True
        reference = self.last_success or self.started
        return now - reference <= 3 * self.interval


def label(source: Source) -> str:
    """A source's name in /healthz and job ids: ``sendzen``, or ``sendzen/shop-eu`` for a named account."""
    return source.name if source.account == "default" else f"{source.name}/{source.account}"


class Daemon:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        now = utcnow()
        self.health = {label(s): Health(s.poll_interval, now) for s in runtime.sources}
        self._refresh = {label(s): RefreshSchedule(s.poll_interval) for s in runtime.sources}
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._passes: set[asyncio.Task[None]] = set()
        self._leadership = leadership_for(runtime.store.engine, [(s.name, s.account) for s in runtime.sources],
                                          runtime.config.cluster.lease_seconds)
        runtime.store.fence = self._leadership.fence

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.runtime.config.server
        runner = await server.start(cfg.host, cfg.port, self.health_report)
        log.info("daemon started", sources=[s.name for s in self.runtime.sources], listen=f"{cfg.host}:{cfg.port}")
        await self._leadership.tick()
        self._scheduler.add_job(self._leadership.tick, "interval", id="leases", max_instances=1, coalesce=True,
                                seconds=max(self.runtime.config.cluster.lease_seconds / 3, 0.5))
        for source in self.runtime.sources:
            self._scheduler.add_job(self._poll, "interval", args=[source], id=label(source),
                                    seconds=source.poll_interval.total_seconds(), next_run_time=utcnow(),
                                    max_instances=1, coalesce=True, misfire_grace_time=None)
        if self.runtime.config.archive.keep_days:
            self._scheduler.add_job(self._prune, "interval", id="prune", hours=24, next_run_time=utcnow(),
                                    max_instances=1, coalesce=True, misfire_grace_time=None)
        self._scheduler.start()
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            self._scheduler.shutdown(wait=False)
            await self._cancel_passes()
            await self._leadership.close()
            await runner.cleanup()
        log.info("stopped")

    async def _poll(self, source: Source) -> None:
        """One scheduled poll: only of an account this process holds (see ``archiver.leases``)."""
        task = asyncio.current_task()
        assert task is not None
        self._passes.add(task)  # type: ignore[arg-type]
        health = self.health[label(source)]
        try:
            held = await self._leadership.hold(source.name, source.account)
            metrics.OWNED.labels(source.name, source.account).set(1 if held else 0)
            health.standby = not held
            if held:
                await self._pass(source, health)
            else:
                log.debug("standing by: another process polls this source", source=source.name,
                          account=source.account)
        except asyncio.CancelledError:  # the daemon is stopping: nothing of the pass was half-written
            log.info("pass interrupted: stopping", source=source.name, account=source.account)
        finally:
            self._passes.discard(task)  # type: ignore[arg-type]

    async def _pass(self, source: Source, health: Health) -> None:
        """Run the pass; whatever goes wrong is this account's health, never the daemon's end."""
        try:
            if health.waiting_until is not None:
                log.info("resuming after the provider's pause", source=source.name)
            await run_pass(source, self.runtime.store, kind="poll", schedule=self._refresh[label(source)])
            health.last_success, health.last_error, health.waiting_until = utcnow(), None, None
            await refresh_metrics(source, self.runtime.store)
        except ProviderBusy as exc:
            self._wait_for(source, health, exc)
        except AuthFailed as exc:
            health.last_error, health.stopped = str(exc), True
            log.error("source stopped: credentials refused", source=source.name, error=str(exc))
            self._scheduler.remove_job(label(source))
        except (ArchiverError, OSError) as exc:
            health.last_error = one_line(str(exc))
            log.error("pass failed; will retry on the next interval", source=source.name, error=health.last_error)
        except Exception as exc:  # the daemon must outlive one bad pass
            health.last_error = one_line(f"{type(exc).__name__}: {exc}")
            log.exception("pass crashed; will retry on the next interval", source=source.name)

    async def _prune(self) -> None:
        """Retention, once a day: batches keep polling and reads going meanwhile."""
        store = self.runtime.store
        run_id = await store.start_run(*PRUNE_RUN, "prune")
        try:
            counts = await prune(store.engine, self.runtime.config.archive.keep_days)
        except Exception as exc:  # the daemon outlives a failed prune; tomorrow's tries again
            await store.finish_run(run_id, ok=False, records=0, requests=0, error=one_line(str(exc)))
            log.error("prune failed; will try again tomorrow", error=one_line(str(exc)))
            return
        await store.finish_run(run_id, ok=True, records=counts["records"], requests=0)
        log.info("pruned", keep_days=self.runtime.config.archive.keep_days, **counts)

    def _wait_for(self, source: Source, health: Health, busy: ProviderBusy) -> None:
        """Skip polls until the provider takes requests again, and say so."""
        health.last_error, health.waiting_until = one_line(str(busy)), busy.until
        self._scheduler.modify_job(label(source), next_run_time=busy.until)
        log.warning("provider asked for a long pause; polling resumes then", source=source.name,
                    resumes_at=rfc3339(busy.until))

    async def _cancel_passes(self) -> None:
        for task in self._passes:
            task.cancel()
        if self._passes:
            await asyncio.wait(self._passes, timeout=STOP_TIMEOUT_SECONDS)

    def health_report(self) -> tuple[bool, dict[str, object]]:
        now = utcnow()
        body = {name: {"healthy": h.healthy(now), "last_success": rfc3339(h.last_success),
                       "last_error": h.last_error, "stopped": h.stopped, "standby": h.standby} for name, h in self.health.items()}
        return all(v["healthy"] for v in body.values()), body
