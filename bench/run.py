"""``make bench``: the real ``archiver backfill`` against the simulators, measured.

Each figure is printed next to a baseline measured in the same run (never a number
from another machine): SendZen's concurrent backfill against the sequential one and
against the sequential floor (pages × latency); PostgreSQL against SQLite; Infobip's
wall time against the least time its rate limit allows for the same requests.

    python bench/run.py                    # full sizes (a few minutes)
    python bench/run.py --quick            # smaller sizes, for a smoke run
    python bench/run.py --bulk-only --peer dlt --rounds 5   # the 100k comparison alone
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import text  # noqa: E402

from archiver.db.connect import create_engine  # noqa: E402
from archiver.db.dialect import is_sqlite  # noqa: E402
from archiver.simulator import FakeInfobip, FakeSendZen, Faults, infobip_message, sendzen_log, spread  # noqa: E402
from archiver.sources.sendzen.ticks import datetime_to_ticks  # noqa: E402
from archiver.times import utcnow  # noqa: E402
from tests.fakes.peak_rss import reading  # noqa: E402
from tests.pgcluster import PostgresCluster  # noqa: E402


@dataclass
class Run:
    label: str
    records: int
    requests: int
    seconds: float
    peak_rss_mb: float
    extra: str = ""
    own_seconds: float = float("nan")
    """The backfill's own time, as its summary says (process start and imports excluded)."""
    tree_rss_mb: float = float("nan")
    """The peak of the archiver's and its writer process's RSS together (sampled): the
    pages they share are counted twice."""
    tree_once_mb: float = float("nan")
    """The same with the pages both map from the same file counted once."""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


MEASURE = [sys.executable, "-m", "tests.fakes.peak_rss"]
"""Runs a command in a small fresh process of its own and says its peak RSS, its process
tree's (with SQLite's writer process) and its wall time (``tests/fakes/peak_rss.py``)."""


def backfill(config: Path) -> tuple[float, float, float, float, float]:
    """Run ``archiver backfill``: its wall seconds, its own peak RSS and its process tree's
    RSS, summed and with shared file pages once (MB), and the seconds its summary reports (the command's work without the
    interpreter's start and imports: the scope of dlt's ``pipeline.run`` figure)."""
    done = subprocess.run([*MEASURE, "-m", "archiver", "--config", str(config), "--log-level", "warning",
                           "backfill"], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"backfill failed: {done.stderr[-2000:]}")
    measured = reading(done.stderr)
    summary = re.search(r"backfill summary \(([\d.]+)s\)", done.stdout)
    return (measured["seconds"], measured["peak_rss_kb"] / 1024, float(summary.group(1)) if summary else float("nan"),
            measured["tree_rss_kb"] / 1024, measured["tree_once_kb"] / 1024)


def write_config(path: Path, db_url: str, section: str, base_url: str, **keys: object) -> Path:
    body = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in keys.items())
    api_key = "sz-test-key" if section == "sendzen" else "ib-test-key"
    path.write_text(f'[database]\nurl = "{db_url}"\n\n[{section}]\nbase_url = "{base_url}"\n'
                    f'api_key = "{api_key}"\n{body}\n')
    return path


async def in_thread(fn, *args):  # type: ignore[no-untyped-def]
    """Run the blocking child wait off the loop, so the simulator keeps serving."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def footprint(db_url: str) -> tuple[float, float]:
    """Bytes on disk per archived record (database file, or relations with their indexes),
    and the same divided by the bytes of the records' raw JSON."""
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            count, raw = (await conn.execute(text("SELECT count(*), sum(length(CAST(raw AS TEXT))) FROM records"))).one()
            if is_sqlite(engine):
                path = Path(engine.url.database or "")
                size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
            else:
                size = await conn.scalar(text("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                                              "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                              "WHERE n.nspname = 'public' AND c.relkind = 'r'"))
    finally:
        await engine.dispose()
    return size / count, size / raw


def export_rate(config: Path, records: int) -> float:
    """``archiver export`` of the whole source to /dev/null: records per second, process start included."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "archiver", "--config", str(config), "--log-level", "warning", "export",
                    "--source", "sendzen", "--output", "/dev/null"], check=True)
    return records / (time.monotonic() - started)


async def sendzen_run(label: str, records: int, latency: float, db_url: str, tmp: Path, *, measure: bool = True,
                      **keys: object) -> Run:
    """A backfill of ``records`` SendZen logs; ``measure``: its bytes on disk and export rate too."""
    fake = await FakeSendZen(faults=Faults(latency=latency)).start()
    try:
        now = utcnow()
        for i, at in enumerate(spread(records, now - timedelta(days=7) + timedelta(minutes=2), now)):
            fake.add(sendzen_log(i, at))
        config = write_config(tmp / f"{label}.toml", db_url, "sendzen", fake.base_url, **keys)
        seconds, rss, own, tree, once = await in_thread(backfill, config)
        run = Run(label, records, len(fake.requests), seconds, rss, own_seconds=own, tree_rss_mb=tree, tree_once_mb=once)
        if latency == 0 and measure:
            per_record, ratio = await footprint(db_url)
            run.extra = (f"{per_record:,.0f} bytes on disk per record = {ratio:.2f}× its raw JSON; "
                         f"export {export_rate(config, records):,.0f} records/s")
        return run
    finally:
        await fake.stop()


async def infobip_run(label: str, records: int, pending_every: int, rpm: int, window: int, db_url: str,
                      tmp: Path) -> Run:
    fake = await FakeInfobip(rate_limit=rpm, rate_period=60.0).start()
    try:
        now = utcnow()
        for i, at in enumerate(spread(records, now - timedelta(hours=47), now)):
            fake.add(infobip_message(i, at, final=pending_every > 1 and i % pending_every != 0))
        config = write_config(tmp / f"{label}.toml", db_url, "infobip", fake.base_url,
                              requests_per_minute=rpm, window_seconds=window)
        seconds, rss, _, tree, once = await in_thread(backfill, config)
        n = len(fake.requests)
        least = 60.0 * ((n - 1) // rpm)  # the earliest the n-th request may start under the limit
        utilization = least / seconds if least else float("nan")
        return Run(label, records, n, seconds, rss,
                   f"{n / seconds * 60:.0f} req/min; limit-bound time {least:.0f}s → utilization "
                   f"{utilization:.0%}; 429s served {fake.served.get(429, 0)}", tree_rss_mb=tree, tree_once_mb=once)
    finally:
        await fake.stop()


PEER_PYTHON = ROOT / ".venv-dlt" / "bin" / "python"


async def dlt_run(records: int, tmp: Path) -> Run:
    """The peer on the same logs: dlt's rest_api source into SQLite (``make bench PEER=dlt``),
    into a database (and pipeline state) of its own each time."""
    fake = await FakeSendZen().start()
    try:
        now = utcnow()
        fake.add(*(sendzen_log(i, at) for i, at in enumerate(spread(records, now - timedelta(days=7) + timedelta(minutes=2), now))))
        database = Path(tempfile.mkdtemp(dir=tmp)) / "dlt.db"
        done = await in_thread(lambda: _run_group(
            [*MEASURE, "--program", str(PEER_PYTHON), str(ROOT / "bench" / "peer_dlt.py"), fake.base_url,
             "sz-test-key", str(database)]))
        if done.returncode != 0:
            raise SystemExit(f"dlt failed: {done.stderr[-2000:]}")
        measured = reading(done.stderr)
        run_only = float(next(l.split()[1] for l in done.stdout.splitlines() if l.startswith("pipeline.run")))
        return Run("dlt rest_api → SQLite (merge)", records, len(fake.requests), run_only,
                   measured["peak_rss_kb"] / 1024, f"whole process {measured['seconds']:.1f}s; "
                   "the figure is pipeline.run alone")
    finally:
        await fake.stop()


def _run_group(command: list[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in its own process group; past ``timeout`` the whole group is
    killed (the peer runs as a grandchild: once, left behind, it spun at 100 % CPU and
    skewed every later measurement)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


async def fetch_only(records: int, windows: int = 8) -> Run:
    """The ceiling: a client that only fetches and parses every page (``windows`` at once), storing nothing."""
    fake = await FakeSendZen().start()
    try:
        now = utcnow()
        start = now - timedelta(days=7) + timedelta(minutes=1)
        fake.add(*(sendzen_log(i, at) for i, at in enumerate(spread(records, start + timedelta(minutes=1), now))))
        edges = [datetime_to_ticks(start + (now - start) * i / windows) for i in range(windows + 1)]
        seen = 0
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer sz-test-key"}) as http:
            async def walk(low: int, high: int) -> int:
                count, token = 0, None
                while True:
                    params = {"fromDate": str(low), "toDate": str(high - 1), "pageSize": "20",
                              **({"nextPageToken": token} if token else {})}
                    async with http.get(f"{fake.base_url}/v1/logs", params=params) as resp:
                        body = json.loads(await resp.read())
                    for log in body["data"]["logs"]:
                        json.loads(log["payload"])
                    count += len(body["data"]["logs"])
                    token = body["data"]["next_page_token"]
                    if not token:
                        return count
            started = time.monotonic()
            seen = sum(await asyncio.gather(*(walk(a, b) for a, b in zip(edges, edges[1:]))))
            seconds = time.monotonic() - started
        return Run(f"fetch + parse only, {windows} windows (ceiling)", seen, len(fake.requests), seconds, float("nan"))
    finally:
        await fake.stop()


def versus_peer(mine: Run, rounds: list[Run], peers: list[Run]) -> str:
    """The archiver's records/s over the peer's, whole process (the headline), and on the
    peer's own scope: its figure times ``pipeline.run`` alone, without its imports. Each
    the median of the rounds' ratios (a round: the peer, then the archiver, minutes apart)."""
    whole = _median_of(p.seconds / r.seconds for r, p in zip(rounds, peers))
    scope = _median_of(p.seconds / r.own_seconds for r, p in zip(rounds, peers))
    return (f"{mine.label}: {whole:.2f}× dlt's records/s (whole process); "
            f"{scope:.2f}× on dlt's scope (backfill alone, {mine.own_seconds:.1f}s)")


def table(runs: list[Run]) -> None:
    """Peak MB: the process's own RSS; with SQLite's writer process, what the two held
    together at their peak (sampled): their RSS summed, and with the pages both map
    from the same files (the interpreter, its libraries) counted once."""
    print(f"{'run':<38} {'records':>8} {'requests':>8} {'wall s':>8} {'rec/s':>9} {'peak MB':>16}")
    for r in runs:
        tree = (f" (w/ writer: {r.tree_rss_mb:.0f}; files once {r.tree_once_mb:.0f})"
                if r.tree_rss_mb == r.tree_rss_mb and r.tree_rss_mb > r.peak_rss_mb + 1 else "")
        print(f"{r.label:<38} {r.records:>8} {r.requests:>8} {r.seconds:>8.2f} {r.rate:>9.0f} "
              f"{r.peak_rss_mb:>5.0f}{tree}")
        if r.extra:
            print(f"    {r.extra}")


async def bulk_rounds(records: int, rounds: int, peer: str | None, cluster: PostgresCluster, tmp: Path) -> list[Run]:
    """The archiver on SQLite and on PostgreSQL, and the peer, on the same 100,000 logs,
    interleaved ``rounds`` times (the machine's speed drifts by ±20 % over an hour): the
    median round of each, and each ratio as the median of the rounds' own ratios."""
    # The engine's ceiling, not politeness; eight windows, as issue 12's table ran it (and
    # the fetch-only ceiling runs): on SQLite 10 % faster than the default four, 7 MB more.
    unthrottled = {"requests_per_minute": 1_000_000, "max_concurrency": 8}
    lites, pgs, peers = [], [], []
    for n in range(rounds):
        if peer == "dlt":
            peers.append(await dlt_run(records, tmp))
        lites.append(await sendzen_run("sendzen bulk, SQLite", records, 0.0, f"sqlite:///{tmp}/c{n}.db", tmp,
                                       measure=n == 0, **unthrottled))
        pgs.append(await sendzen_run("sendzen bulk, PostgreSQL", records, 0.0, cluster.new_database(), tmp,
                                     measure=n == 0, **unthrottled))
    lite, pg = _median(lites), _median(pgs)
    lite.extra, pg.extra = lites[0].extra, pgs[0].extra
    pg.extra += f"; PostgreSQL wall / SQLite wall = {_median_of(p.seconds / l.seconds for l, p in zip(lites, pgs)):.2f}"
    if rounds > 1:
        for run, each in ((lite, lites), (pg, pgs)):
            run.extra += f"; rounds: {', '.join(f'{r.seconds:.2f}s' for r in each)}"
    runs = [lite, pg]
    if peers:
        other = _median(peers)
        other.extra = peers[0].extra + (f"; rounds: {', '.join(f'{r.seconds:.2f}s' for r in peers)}" if rounds > 1 else "")
        other.extra += "".join(f"\n    {versus_peer(mine, theirs, peers)}" for mine, theirs in ((lite, lites), (pg, pgs)))
        runs.append(other)
    return runs


def _median(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def _median_of(values: Iterable[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def compiled() -> None:
    """Byte-compile the package, as ``pip install`` does for an installed one (the
    Dockerfile's): an editable checkout where ``PYTHONDONTWRITEBYTECODE`` is set (this
    machine's environment) compiled its 50 modules (and a new archive's migrations) from
    source at every start, 0.2 s of each backfill's and export's wall that no installed
    archiver pays."""
    for package in ("archiver", "migrations"):
        compileall.compile_dir(ROOT / package, quiet=1)


async def main(quick: bool, peer: str | None, rounds: int, bulk_only: bool) -> None:
    compiled()
    tmp = Path(tempfile.mkdtemp(prefix="archiver-bench-"))
    latency = 0.03
    small, big = (2_000, 20_000) if quick else (10_000, 100_000)
    cluster = PostgresCluster(durable=True)  # fsync on, as in production
    cluster.start()
    try:
        runs = []
        if not bulk_only:
            seq = await sendzen_run("sendzen 30ms sequential", small, latency, f"sqlite:///{tmp}/a.db", tmp,
                                    max_concurrency=1, requests_per_minute=1_000_000)
            conc = await sendzen_run("sendzen 30ms concurrency=8", small, latency, f"sqlite:///{tmp}/b.db", tmp,
                                     max_concurrency=8, requests_per_minute=1_000_000)
            # the floor counts the pages of the sequential walk, not the concurrent run's
            # (smaller windows near the end add a few partial pages, which must not flatter it)
            floor = min(seq.requests, conc.requests) * latency
            conc.extra = (f"sequential floor (pages × latency) {floor:.1f}s → wall/floor {conc.seconds / floor:.2f}; "
                          f"{seq.seconds / conc.seconds:.1f}× faster than sequential")
            seq.extra = f"wall/floor {seq.seconds / (seq.requests * latency):.2f}"
            runs += [seq, conc]
        ceiling = await fetch_only(big)
        bulk = await bulk_rounds(big, rounds, peer, cluster, tmp)
        bulk[0].extra += f"; {ceiling.rate / bulk[0].rate:.1f}× below the fetch-only ceiling"
        runs += [ceiling, *bulk]
        if not bulk_only:
            rpm = 120 if quick else 60
            # a campaign still pending: ~140 re-reads by messageId, more than two minutes of budget
            runs.append(await infobip_run(f"infobip rpm={rpm}, all pending", 20_000, 1, rpm, 3600,
                                          f"sqlite:///{tmp}/d.db", tmp))
        table(runs)
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # a run leaves 2 GB of archives behind otherwise


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--peer", choices=["dlt"], help="also run the peer (its virtualenv: make bench PEER=dlt)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the 100k comparison (median)")
    parser.add_argument("--bulk-only", action="store_true", help="only the 100k comparison and its ceiling")
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.peer, args.rounds, args.bulk_only))
