"""``archiver status``: what an operator needs to know per source, as data or text."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from archiver import ledger, metrics
from archiver.db.store import Store
from archiver.domain import Gap
from archiver.lifecycle.prune import oldest_record
from archiver.sources.base import Source
from archiver.times import rfc3339, utcnow


async def source_status(source: Source, store: Store, now: datetime | None = None,
                        prune_due: str | None = None) -> dict[str, Any]:
    now = now or utcnow()
    name, account = source.name, source.account
    checkpoint = await store.checkpoint(name, account)
    ok, bad = await store.last_runs(name, account)
    all_gaps = await _gaps(store, name, account, checkpoint)
    lag, headroom = _gauges(source, checkpoint, now, len(all_gaps))
    return {
        "account": account,
        "checkpoint": rfc3339(checkpoint),
        "lag_seconds": round(lag, 3) if lag is not None else None,
        "rows": await store.count_records(name, account),
        "last_success": rfc3339(ok.finished_at) if ok else None,
        "last_error": _error(bad, ok),
        "gaps": [{"from": rfc3339(g.start), "to": rfc3339(g.end), "reason": g.reason} for g in all_gaps],
        "retention_headroom_seconds": round(headroom, 3),
        "quarantined": await store.quarantine.count(name, account),
        "oldest_record": rfc3339(await oldest_record(store.engine, name, account)),
        "next_prune": prune_due,
    }


async def next_prune(store: Store, keep_days: int) -> str | None:
    """A day after the daemon's last prune (None: retention is off, or no prune ran yet)."""
    if not keep_days:
        return None
    ok, _ = await store.last_runs("archive", "prune")
    return rfc3339(ok.finished_at + timedelta(days=1)) if ok else None


async def refresh_metrics(source: Source, store: Store, now: datetime | None = None) -> None:
    """The daemon's per-poll gauges: the same figures as ``status``, without the row count."""
    checkpoint = await store.checkpoint(source.name, source.account)
    gaps = await _gaps(store, source.name, source.account, checkpoint)
    _gauges(source, checkpoint, now or utcnow(), len(gaps))


async def _gaps(store: Store, name: str, account: str, checkpoint: datetime | None) -> list[Gap]:
    """Recorded gaps, and holes in the coverage ledger that no recorded gap explains
    (cheap: passes keep the ledger compacted to a row per stretch between holes)."""
    gaps = await store.gaps(name, account)
    holes = ledger.holes(await store.coverage(name, account), checkpoint)
    return gaps + [h for h in holes if not any(_inside(h, g) for g in gaps)]


def _gauges(source: Source, checkpoint: datetime | None, now: datetime, gaps: int) -> tuple[float | None, float]:
    """Lag and retention headroom, exported as metrics on the way."""
    lag = (now - checkpoint).total_seconds() if checkpoint else None
    headroom = retention_headroom(checkpoint, now, source.retention)
    if lag is not None:
        metrics.CHECKPOINT_LAG.labels(source.name, source.account).set(lag)
    metrics.RETENTION_HEADROOM.labels(source.name, source.account).set(headroom)
    metrics.GAPS.labels(source.name, source.account).set(gaps)
    return lag, headroom


def retention_headroom(checkpoint: datetime | None, now: datetime, retention: timedelta) -> float:
    """Seconds until the oldest unarchived moment (the checkpoint) ages out at the provider.

    With no checkpoint nothing is archived yet and the oldest records are ageing out
    right now: 0. Negative means data has already been lost (and a gap recorded).
    """
    if checkpoint is None:
        return 0.0
    return (checkpoint + retention - now).total_seconds()


async def provider_statuses(sources: list[Source], store: Store, keep_days: int = 0,
                            now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """``status --json``: keyed by source, part-1 fields as aggregates over its accounts,
    and ``accounts`` with the same fields per account plus its ``owner``."""
    owners, prune_due = await store.owners(), await next_prune(store, keep_days)  # once, not per account
    by_source: dict[str, dict[str, dict[str, Any]]] = {}
    for source in sources:
        entry = await source_status(source, store, now, prune_due)
        entry["owner"] = owners.get((source.name, source.account))
        by_source.setdefault(source.name, {})[source.account] = entry
    return {name: aggregate(accounts) for name, accounts in by_source.items()}


def aggregate(accounts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A source's figures over its accounts: the oldest checkpoint, the largest lag, the
    sums, every gap (with its account), the least headroom, the latest error."""
    each = list(accounts.values())
    errors = [dict(a["last_error"], account=name) for name, a in accounts.items() if a["last_error"]]
    return {
        "account": each[0]["account"] if len(each) == 1 else None,
        "checkpoint": _least([a["checkpoint"] for a in each]),
        "lag_seconds": max((a["lag_seconds"] for a in each if a["lag_seconds"] is not None), default=None),
        "rows": sum(a["rows"] for a in each),
        "last_success": _least([a["last_success"] for a in each]),
        "last_error": max(errors, key=lambda e: e["at"] or "", default=None),
        "gaps": [dict(g, account=name) for name, a in accounts.items() for g in a["gaps"]],
        "retention_headroom_seconds": min(a["retention_headroom_seconds"] for a in each),
        "quarantined": sum(a["quarantined"] for a in each),
        "oldest_record": min((a["oldest_record"] for a in each if a["oldest_record"]), default=None),
        "next_prune": each[0]["next_prune"],
        "accounts": accounts,
    }


def _least(values: list[str | None]) -> str | None:
    """The oldest time, or None if any account has none yet (it is the furthest behind)."""
    return None if None in values or not values else min(values)  # type: ignore[type-var]


def render_text(statuses: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, provider in statuses.items():
        for account, st in provider.get("accounts", {provider.get("account"): provider}).items():
            lines += _render_account(name, account, st)
    return "\n".join(lines)


def _render_account(name: str, account: str | None, st: dict[str, Any]) -> list[str]:
    lines = [f"{name} (account {account})" + (f", polled by {st['owner']}" if st.get("owner") else "")]
    for key in ("checkpoint", "lag_seconds", "rows", "last_success", "last_error", "retention_headroom_seconds",
                "quarantined", "oldest_record", "next_prune"):
        value = st.get(key)
        lines.append(f"  {key:<27} {'-' if value is None else value}")
    lines.append(f"  {'gaps':<27} {len(st['gaps']) or 'none'}")
    lines.extend(f"    {g['from']} .. {g['to']}  {g['reason']}" for g in st["gaps"])
    return lines


def _inside(inner: Gap, outer: Gap) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


def _error(bad: Any, ok: Any) -> dict[str, Any] | None:
    """The latest failure, if it is more recent than the latest success."""
    if bad is None or (ok is not None and ok.finished_at > bad.finished_at):
        return None
    return {"at": rfc3339(bad.finished_at), "message": bad.error}
