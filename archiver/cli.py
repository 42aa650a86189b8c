"""The ``archiver`` command: a thin layer that parses arguments and calls the library.

Every failure ends as one line on stderr (``archiver: …``) and a non-zero exit;
known secrets are scrubbed from that line like from every log line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import structlog

from archiver import config as config_mod
from archiver import logs
from archiver.collector import collect_rarely
from archiver.errors import ArchiverError, AuthFailed, ConfigError, one_line
from archiver.export import atomic_output, export, export_quarantined
from archiver.leases import backfill_claims
from archiver.lifecycle.erase import erase_phone
from archiver.lifecycle.prune import prune
from archiver.lifecycle.subjects import normalise
from archiver.runtime import opened
from archiver.sources.registry import SOURCE_NAMES
from archiver.times import parse_cli_time, rfc3339, utcnow

log = structlog.get_logger(__name__)
EXIT_FAILURE, EXIT_CONFIG, EXIT_AUTH = 1, 2, 3


def _global_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """Accepted before or after the command (``archiver --config x run`` = ``archiver run --config x``).

    After the command they default to "not given", so they never undo the ones given before it.
    """
    def default(value: str | None) -> Any:
        return argparse.SUPPRESS if after_command else value

    parser.add_argument("--config", default=default(None),
                        help="config file (default: $ARCHIVER_CONFIG, else ./config.toml)")
    parser.add_argument("--log-format", choices=["auto", "console", "json"], default=default("auto"))
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=default("info"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archiver", description="Archive messaging providers' logs into your database.")
    _global_options(parser, after_command=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, after_command=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = functools.partial(commands.add_parser, parents=[common])
    add("migrate", help="bring the database schema to the latest revision")
    backfill = add("backfill", help="one pass per source up to now, then exit")
    backfill.add_argument("--source", choices=SOURCE_NAMES)
    backfill.add_argument("--account", help="only this account of --source")
    _add_range(backfill)
    add("run", help="the daemon: poll every source until SIGTERM/SIGINT (and serve [api] if configured)")
    add("serve", help="the read side only ([api]): provider-compatible endpoints, search API, search page")
    status = add("status", help="per source: checkpoint, lag, rows, gaps, headroom")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    _add_export(add("export", help="write archived records as JSONL, CSV or Parquet"))
    add("prune", help="delete records older than [archive] keep_days, with their events and messages")
    erase = add("erase", help="the right to be forgotten: delete every record of a phone number")
    erase.add_argument("--phone", required=True, help="the number, e.g. '+49 170 1234567'")
    erase.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    demo = add("demo", help="simulated providers + the daemon on SQLite, no credentials")
    demo.add_argument("--dir", default="demo", help="where the demo's config and database go")
    demo.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    return parser


def _add_export(exp: argparse.ArgumentParser) -> None:
    exp.add_argument("--source", choices=SOURCE_NAMES, help="required for jsonl/csv; parquet: all sources if omitted")
    exp.add_argument("--account", help="only this account of --source (default: every account)")
    _add_range(exp)
    exp.add_argument("--format", choices=["jsonl", "csv", "parquet"], default="jsonl")
    exp.add_argument("--output", help="file to write (default: stdout); for parquet, the directory")
    exp.add_argument("--quarantined", action="store_true",
                     help="write the records that could not be read (JSONL: raw, reason, seen_at, account)")


def _add_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_time, help="ISO 8601 start (UTC if no offset)")
    parser.add_argument("--until", type=_time, help="ISO 8601 end (UTC if no offset)")


def _time(text: str) -> Any:
    try:
        return parse_cli_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def argument_problem(args: argparse.Namespace) -> str | None:
    """Arguments that contradict each other (refused before anything runs, exit 2)."""
    if getattr(args, "account", None) and not args.source:
        return "--account needs --source (account names are per provider)"
    if args.command == "export" and args.format != "parquet" and not args.source:
        return f"--source is required for --format {args.format}"
    if args.command == "export" and args.format == "parquet" and not args.output:
        return "--output DIR is required for --format parquet"
    if args.command == "erase":
        try:
            normalise(args.phone)
        except ValueError as exc:
            return f"--phone: {exc}"
    return range_problem(args)


def range_problem(args: argparse.Namespace) -> str | None:
    """A range that contradicts itself, or a backfill from the future (refused, exit 2)."""
    since, until = getattr(args, "since", None), getattr(args, "until", None)
    if since and until and until < since:
        return f"--until {rfc3339(until)} is before --since {rfc3339(since)}"
    if args.command == "backfill" and since and since > utcnow():
        return f"--since {rfc3339(since)} is in the future: there is nothing to read yet"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if problem := argument_problem(args):
        return _fail(problem, [], EXIT_CONFIG)
    secrets: list[str] = []
    try:
        if args.command == "demo":
            from archiver.demo import run_demo

            logs.configure(args.log_format, args.log_level)
            return asyncio.run(run_demo(Path(args.dir), args.seconds))
        config = config_mod.load(config_mod.config_path(args.config))
        secrets = config.secrets()
        _start_logging(args, config)
        return asyncio.run(COMMANDS[args.command](config, args))
    except ConfigError as exc:
        return _fail(str(exc), secrets, EXIT_CONFIG)
    except AuthFailed as exc:
        return _fail(str(exc), secrets, EXIT_AUTH)
    except ArchiverError as exc:
        return _fail(str(exc), secrets, EXIT_FAILURE)
    except KeyboardInterrupt:
        return _fail("interrupted", secrets, 130)


def _start_logging(args: argparse.Namespace, config: config_mod.Config) -> None:
    logs.configure(args.log_format, args.log_level, config.secrets())
    for warning in config.warnings():
        log.warning(warning)
    collect_rarely()


def _fail(message: str, secrets: list[str], code: int) -> int:
    print(f"archiver: {logs.Scrubber(secrets).scrub(one_line(message) or 'failed')}", file=sys.stderr)
    return code


# The commands import what only they use (the engine, the progress bars, the status
# report), and those that only read or change the archive open it without sources
# (``opened(sources=False)``): aiohttp, tenacity and the engine never load for them.

async def cmd_migrate(config: config_mod.Config, _args: argparse.Namespace) -> int:
    async with opened(config, sources=False):
        pass
    print("database schema is up to date")
    return 0


async def cmd_backfill(config: config_mod.Config, args: argparse.Namespace) -> int:
    from archiver.engine import PassResult, run_pass
    from archiver.progress import BackfillProgress, print_summary

    started = time.monotonic()
    async with opened(config, writes=True) as rt:
        chosen = rt.select(args.source, args.account)
        accounts = [(s.name, s.account) for s in chosen]
        async with backfill_claims(rt.store.engine, accounts, config.cluster.lease_seconds) as leases:
            sources = await _not_polled_elsewhere(rt, chosen, leases)
            rt.store.fence = leases.fence if leases else None
            with BackfillProgress() as progress:
                outcomes = await asyncio.gather(
                    *(run_pass(s, rt.store, since=args.since, until=args.until, observer=progress, kind="backfill")
                      for s in sources),
                    return_exceptions=True,
                )
    failures = {f"{s.name}/{s.account}" if s.account != "default" else s.name: o
                for s, o in zip(sources, outcomes) if isinstance(o, BaseException)}
    print_summary([o for o in outcomes if isinstance(o, PassResult)],
                  {n: logs.Scrubber(config.secrets()).scrub(str(e)) for n, e in failures.items()},
                  time.monotonic() - started)
    _raise_first(list(failures.values()))
    return 0


def _raise_first(failures: list[BaseException]) -> None:
    """After the summary: an interrupt as itself, else the first failure as the exit's reason."""
    for exc in failures:
        if not isinstance(exc, Exception):
            raise exc
    if failures:
        first = failures[0]
        if isinstance(first, ArchiverError):
            raise first
        raise ArchiverError(f"backfill failed: {type(first).__name__}: {first}") from first


async def _not_polled_elsewhere(rt: Any, sources: list[Any], leases: Any) -> list[Any]:
    """The accounts this backfill holds; the others are reported as skipped, with their owner."""
    if leases is None:
        return sources
    owners = await rt.store.owners()
    mine = []
    for source in sources:
        if await leases.hold(source.name, source.account):
            mine.append(source)
        else:
            owner = owners.get((source.name, source.account), "another process")
            print(f"skipped {source.name}/{source.account}: polled by {owner}", file=sys.stderr)
            log.warning("account skipped: another process polls it", source=source.name,
                        account=source.account, owner=owner)
    return mine


async def cmd_run(config: config_mod.Config, _args: argparse.Namespace) -> int:
    from archiver.scheduler import Daemon

    stop = _stop_on_signals()
    async with opened(config, writes=True) as rt:
        rt.select(None)
        async with read_side(config, rt.store):
            await Daemon(rt).run(stop)
    return 0


async def cmd_serve(config: config_mod.Config, _args: argparse.Namespace) -> int:
    if config.api is None:
        raise ConfigError("[api] is missing: add it (host, port, [[api.tokens]]) to serve the read side")
    stop = _stop_on_signals()
    async with opened(config, sources=False) as rt, read_side(config, rt.store):
        log.info("read side started", listen=f"{config.api.host}:{config.api.port}")
        await stop.wait()
    return 0


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


@contextlib.asynccontextmanager
async def read_side(config: config_mod.Config, store: Any) -> AsyncIterator[None]:
    """The API for as long as the block runs, when ``[api]`` is configured."""
    if config.api is None:
        yield
        return
    from archiver.api.serve import start_api

    try:
        runner = await start_api(config.api, store.engine,
                                 eraser=lambda phone: erase_phone(store.engine, phone))
    except OSError as exc:
        raise ArchiverError(f"cannot serve the read side on {config.api.host}:{config.api.port}: "
                            f"{exc.strerror or exc}") from None
    try:
        yield
    finally:
        await runner.cleanup()


async def cmd_status(config: config_mod.Config, args: argparse.Namespace) -> int:
    from archiver.status import provider_statuses, render_text

    async with opened(config) as rt:
        statuses = await provider_statuses(rt.select(None), rt.store, config.archive.keep_days)
    print(json.dumps(statuses, indent=2) if args.json else render_text(statuses))
    return 0


async def cmd_export(config: config_mod.Config, args: argparse.Namespace) -> int:
    async with opened(config, sources=False) as rt:
        if args.format == "parquet":
            from archiver.parquet import export_parquet  # pyarrow loads only when asked for

            sources = [args.source] if args.source else list(SOURCE_NAMES)
            count = await export_parquet(rt.store, sources, Path(args.output), since=args.since, until=args.until)
            log.info("exported", format="parquet", records=count, output=args.output)
        elif args.output:
            with atomic_output(args.output) as out:
                count = await _export(rt.store, args, out)
            log.info("exported", source=args.source, records=count, output=args.output)
        else:
            await _export(rt.store, args, sys.stdout)
    return 0


async def cmd_prune(config: config_mod.Config, _args: argparse.Namespace) -> int:
    async with opened(config, sources=False) as rt:
        counts = await prune(rt.store.engine, config.archive.keep_days)
    if not config.archive.keep_days:
        print("[archive] keep_days is 0 (keep forever): nothing pruned")
    else:
        print("pruned " + ", ".join(f"{table}: {n}" for table, n in counts.items()))
    return 0


async def cmd_erase(config: config_mod.Config, args: argparse.Namespace) -> int:
    async with opened(config, sources=False) as rt:
        counts = await erase_phone(rt.store.engine, args.phone, dry_run=args.dry_run)
    verb = "would erase" if args.dry_run else "erased"
    print(f"{verb} " + ", ".join(f"{table}: {n}" for table, n in counts.items()))
    return 0


async def _export(store: Any, args: argparse.Namespace, out: Any) -> int:
    if args.quarantined:
        return await export_quarantined(store, args.source, out)
    return await export(store, args.source, out, fmt=args.format, since=args.since, until=args.until,
                        account=args.account)


COMMANDS = {"migrate": cmd_migrate, "backfill": cmd_backfill, "run": cmd_run, "serve": cmd_serve,
            "status": cmd_status, "export": cmd_export, "prune": cmd_prune, "erase": cmd_erase}
