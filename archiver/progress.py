"""What ``backfill`` shows while it works and when it is done.

On a terminal: a live bar per source (windows done of planned, records, requests,
rate-limit waits). Elsewhere (cron, CI, a pipe): nothing but the final summary, with
no control characters.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from archiver.engine import PassResult


class BackfillProgress:
    """An ``engine.Observer`` that draws bars on stderr when it is a terminal."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.enabled = stream.isatty()
        self._progress = Progress(
            TextColumn("{task.description:<8}"), BarColumn(), TaskProgressColumn(),
            TextColumn("of the range  {task.fields[records]} records  {task.fields[requests]} requests"),
            TimeElapsedColumn(), console=Console(file=stream), transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> "BackfillProgress":
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._progress.stop()

    def planned(self, source: str, seconds: float) -> None:
        if self.enabled:
            self._tasks[source] = self._progress.add_task(source, total=seconds or 1, records=0, requests=0)

    def window_done(self, source: str, seconds: float, records: int, requests: int) -> None:
        if self.enabled and source in self._tasks:
            task = self._progress.tasks[self._tasks[source]]
            self._progress.update(self._tasks[source], advance=seconds, records=task.fields["records"] + records,
                                  requests=task.fields["requests"] + requests)


def print_summary(results: list[PassResult], errors: dict[str, str], elapsed: float, stream: TextIO = sys.stdout) -> None:
    console = Console(file=stream, highlight=False, width=None if stream.isatty() else 160)
    table = Table(title=f"backfill summary ({elapsed:.1f}s)", title_justify="left")
    for column in ("source", "records", "pages", "windows", "refreshed", "requests", "unparsed", "gaps", "result"):
        table.add_column(column, justify="left" if column in ("source", "result") else "right")
    for r in results:
        table.add_row(r.source, str(r.records), str(r.pages), str(r.windows), str(r.refreshed),
                      str(r.requests), str(r.unparsed), str(len(r.gaps)), "ok")
    for name, message in errors.items():
        table.add_row(name, "-", "-", "-", "-", "-", "-", "-", f"failed: {message}")
    console.print(table)
