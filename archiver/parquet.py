"""``archiver export --format parquet --output DIR``: the archive as Parquet, partitioned
``DIR/source=…/account=…/date=YYYY-MM-DD/part-0.parquet`` (the day of each record's
position on its source's axis), the export fields as typed columns plus ``raw``.

Streams: rows arrive oldest first and are written in row groups, so memory is bounded by
one row group per open partition, whatever the archive's size. Each day is written into a
scratch folder beside its final place and swapped in by rename: re-exporting a day
replaces its files, a crash leaves the previous export whole, and nothing else in DIR
is touched.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from archiver.db.store import Store
from archiver.export import FIELDS

ROW_GROUP = 10_000
_TIME = pa.timestamp("us", tz="UTC")
_TYPES = {"occurred_at": _TIME, "done_at": _TIME, "created_at": _TIME, "error_code": pa.int64(),
          "price": pa.float64(), "billable": pa.bool_(), "is_final": pa.bool_()}
SCHEMA = pa.schema([(name, _TYPES.get(name, pa.string())) for name in FIELDS])


class _Partition:
    """One day of one account: rows buffered into row groups, in a scratch folder."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.scratch = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.partial")
        self.scratch.mkdir(parents=True)
        self.writer = pq.ParquetWriter(self.scratch / "part-0.parquet", SCHEMA, compression="zstd")
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=SCHEMA))
            self.rows = []

    def commit(self) -> None:
        """Swap the new day in for the old one (rename is atomic on one file system)."""
        self.flush()
        self.writer.close()
        old = self.final.with_name(f".{self.final.name}.old")
        if self.final.exists():
            self.final.rename(old)
        self.scratch.rename(self.final)
        shutil.rmtree(old, ignore_errors=True)

    def abandon(self) -> None:
        self.writer.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


async def export_parquet(store: Store, sources: list[str], out: Path, *, since: datetime | None = None,
                         until: datetime | None = None) -> int:
    """Rows written; ``since``/``until`` select the days they fall in."""
    since = datetime.combine(since.date(), datetime.min.time(), since.tzinfo) if since else None
    until = datetime.combine(until.date(), datetime.max.time(), until.tzinfo) if until else None
    count = 0
    for source in sources:
        count += await _export_source(store, source, out, since, until)
    return count


async def _export_source(store: Store, source: str, out: Path, since: datetime | None, until: datetime | None) -> int:
    open_days: dict[str, tuple[date, _Partition]] = {}
    count = 0
    try:
        async for row in store.export_rows(source, since, until):
            day = row.record_at.date()
            current = open_days.get(row.account)
            if current is None or current[0] != day:
                if current:
                    current[1].commit()
                current = open_days[row.account] = (day, _Partition(_folder(out, source, row.account, day)))
            current[1].add(_typed(source, row))
            count += 1
    except BaseException:
        for _, part in open_days.values():
            part.abandon()
        raise
    for _, part in open_days.values():
        part.commit()
    return count


def _folder(out: Path, source: str, account: str, day: date) -> Path:
    return out / f"source={source}" / f"account={account}" / f"date={day.isoformat()}"


def _typed(source: str, row: Any) -> dict[str, Any]:
    values = row._mapping
    typed = {name: values[name] for name in FIELDS[2:-1]}
    return {**typed, "source": source, "account": row.account, "raw": row.raw}
