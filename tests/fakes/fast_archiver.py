"""``python -m tests.fakes.fast_archiver ARGS``: the real ``archiver`` command with a retry
policy of milliseconds instead of minutes, so tests of retried failures end quickly.
Everything else (config, HTTP, database, exit codes, output) is the real thing."""

from __future__ import annotations

import sys

from archiver import cli
from archiver.http import RetryPolicy
from archiver.sources import registry

registry.build_sources.__defaults__ = (RetryPolicy(attempts=3, max_seconds=30, initial_wait=0.01, max_wait=0.05),)

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
