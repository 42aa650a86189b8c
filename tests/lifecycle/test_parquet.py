"""Parquet export: the same rows and values as the JSONL export, typed, partitioned by
source, account and day; re-exporting a day replaces it and touches nothing else."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import aiohttp
import pyarrow.dataset as ds
import pytest

from archiver.db.store import Store
from archiver.engine import run_pass
from archiver.export import export
from archiver.parquet import export_parquet
from archiver.simulator import FakeInfobip, FakeSendZen, infobip_message, sendzen_log, spread
from archiver.times import utcnow
from tests.helpers import infobip_source, sendzen_source

NOW = utcnow().replace(microsecond=0)


@pytest.fixture
async def archived(store: Store, fake_sendzen: FakeSendZen, fake_infobip: FakeInfobip) -> Store:
    fake_sendzen.add(*(sendzen_log(i, at) for i, at in enumerate(spread(120, NOW - timedelta(days=4), NOW))))
    fake_infobip.add(*(infobip_message(i, at, final=True) for i, at in enumerate(spread(40, NOW - timedelta(hours=40), NOW))))
    async with aiohttp.ClientSession() as session:
        await run_pass(sendzen_source(session, fake_sendzen.base_url), store, now=NOW)
        await run_pass(infobip_source(session, fake_infobip.base_url), store, now=NOW)
    return store


async def jsonl(store: Store, source: str, tmp_path: Path) -> list[dict]:
    out = tmp_path / f"{source}.jsonl"
    with open(out, "w") as handle:
        await export(store, source, handle)
    return [json.loads(line) for line in out.read_text().splitlines()]


async def test_parquet_equals_the_jsonl_export(archived: Store, tmp_path: Path) -> None:
    """Row counts and every field equal (timestamps as real UTC timestamps, raw as served)."""
    out = tmp_path / "pq"
    assert await export_parquet(archived, ["sendzen", "infobip"], out) == 160
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert str(table.schema.field("occurred_at").type) == "timestamp[us, tz=UTC]"
    rows = {(r["source"], r["raw"]): r for r in table.to_pylist()}
    for source in ("sendzen", "infobip"):
        for line in await jsonl(archived, source, tmp_path):
            row = rows[(source, json.dumps(line["raw"], separators=(",", ":"), ensure_ascii=False))]
            for name in ("message_id", "status", "sender", "recipient", "text", "error_code", "price"):
                assert row[name] == line[name]
            assert (row["occurred_at"].isoformat().replace("+00:00", "Z") if row["occurred_at"] else None) \
                == (line["occurred_at"].replace(".000", "") if line["occurred_at"] else None)
    assert {p.name for p in out.iterdir()} == {"source=sendzen", "source=infobip"}


async def test_re_export_replaces_a_day_and_leaves_other_files(archived: Store, tmp_path: Path) -> None:
    """Second export of the same days: same files, no duplicates, a stranger's file untouched."""
    out = tmp_path / "pq"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    await export_parquet(archived, ["sendzen"], out)
    first = sorted(p.relative_to(out) for p in out.rglob("*.parquet"))
    await export_parquet(archived, ["sendzen"], out, since=NOW - timedelta(days=1))
    assert sorted(p.relative_to(out) for p in out.rglob("*.parquet")) == first
    assert ds.dataset(out / "source=sendzen", format="parquet").count_rows() == 120
    assert (out / "notes.txt").read_text() == "mine" and not list(out.rglob("*.partial"))
