"""``make bench``: the real ``archiver backfill`` against the simulators, measured.

Each figure is printed next to a baseline measured in the same run (never a number
from another machine): SendZen's concurrent backfill against the sequential one and
against the sequential floor (pages × latency); PostgreSQL against SQLite; Infobip's
wall time against the least time its rate limit allows for the same requests.

    python bench/run.py            # full sizes (a few minutes)
    python bench/run.py --quick    # smaller sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archiver.simulator import FakeInfobip, FakeSendZen, Faults, infobip_message, sendzen_log, spread  # noqa: E402
from archiver.times import utcnow  # noqa: E402
from tests.pgcluster import PostgresCluster  # noqa: E402


@dataclass
class Run:
    label: str
    records: int
    requests: int
    seconds: float
    peak_rss_mb: float
    extra: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


# A small fresh process starts the archiver and reports its peak RSS: forked straight from
# this one (which holds the simulators' data), the child's ru_maxrss would count our pages.
MEASURE = """
import os, sys, time
started = time.monotonic()
pid = os.posix_spawn(sys.executable, [sys.executable, *sys.argv[1:]], os.environ)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), time.monotonic() - started, usage.ru_maxrss / 1024)
"""


def backfill(config: Path) -> tuple[float, float]:
    """Run ``archiver backfill``; its wall seconds and its own peak RSS (MB)."""
    done = subprocess.run([sys.executable, "-c", MEASURE, "-m", "archiver", "--config", str(config),
                           "--log-level", "warning", "backfill"], capture_output=True, text=True)
    code, seconds, rss = done.stdout.strip().splitlines()[-1].split()
    if int(code) != 0:
        raise SystemExit(f"backfill failed: {done.stderr[-2000:]}")
    return float(seconds), float(rss)


def write_config(path: Path, db_url: str, section: str, base_url: str, **keys: object) -> Path:
    body = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in keys.items())
    api_key = "sz-test-key" if section == "sendzen" else "ib-test-key"
    path.write_text(f'[database]\nurl = "{db_url}"\n\n[{section}]\nbase_url = "{base_url}"\n'
                    f'api_key = "{api_key}"\n{body}\n')
    return path


async def in_thread(fn, *args):  # type: ignore[no-untyped-def]
    """Run the blocking child wait off the loop, so the simulator keeps serving."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def sendzen_run(label: str, records: int, latency: float, db_url: str, tmp: Path, **keys: object) -> Run:
    fake = await FakeSendZen(faults=Faults(latency=latency)).start()
    try:
        now = utcnow()
        for i, at in enumerate(spread(records, now - timedelta(days=7) + timedelta(minutes=2), now)):
            fake.add(sendzen_log(i, at))
        config = write_config(tmp / f"{label}.toml", db_url, "sendzen", fake.base_url, **keys)
        seconds, rss = await in_thread(backfill, config)
        return Run(label, records, len(fake.requests), seconds, rss)
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
        seconds, rss = await in_thread(backfill, config)
        n = len(fake.requests)
        least = 60.0 * ((n - 1) // rpm)  # the earliest the n-th request may start under the limit
        utilization = least / seconds if least else float("nan")
        return Run(label, records, n, seconds, rss,
                   f"{n / seconds * 60:.0f} req/min; limit-bound time {least:.0f}s → utilization "
                   f"{utilization:.0%}; 429s served {fake.served.get(429, 0)}")
    finally:
        await fake.stop()


def table(runs: list[Run]) -> None:
    print(f"{'run':<34} {'records':>8} {'requests':>8} {'wall s':>8} {'rec/s':>9} {'peak MB':>8}")
    for r in runs:
        print(f"{r.label:<34} {r.records:>8} {r.requests:>8} {r.seconds:>8.2f} {r.rate:>9.0f} {r.peak_rss_mb:>8.0f}")
        if r.extra:
            print(f"    {r.extra}")


async def main(quick: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="archiver-bench-"))
    latency = 0.03
    small, big = (2_000, 20_000) if quick else (10_000, 100_000)
    cluster = PostgresCluster()
    cluster.start()
    try:
        runs = []
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
        unthrottled = {"requests_per_minute": 1_000_000}  # the engine's ceiling, not politeness
        lite = await sendzen_run("sendzen bulk, SQLite", big, 0.0, f"sqlite:///{tmp}/c.db", tmp, **unthrottled)
        pg = await sendzen_run("sendzen bulk, PostgreSQL", big, 0.0, cluster.new_database(), tmp, **unthrottled)
        pg.extra = f"PostgreSQL wall / SQLite wall = {pg.seconds / lite.seconds:.2f}"
        runs += [lite, pg]
        rpm = 120 if quick else 60
        # a campaign still pending: ~140 re-reads by messageId, more than two minutes of budget
        runs.append(await infobip_run(f"infobip rpm={rpm}, all pending", 20_000, 1, rpm, 3600,
                                      f"sqlite:///{tmp}/d.db", tmp))
        table(runs)
    finally:
        cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
