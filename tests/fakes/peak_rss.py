"""``python -m tests.fakes.peak_rss [--program PATH] ARGS…``: run a command, then say how
much memory it took and how long.

The command is ``python ARGS…`` (this interpreter), or ``PATH ARGS…`` with ``--program``
(another one: the bench's peer in its own virtualenv). The last stderr line is
``peak_rss_kb=N tree_rss_kb=M tree_pss_kb=P seconds=S``, and the exit code is the command's:
- ``peak_rss_kb``: the command's own peak, from ``wait4`` (``RUSAGE_CHILDREN`` of the
  caller would be the largest of every child it ever waited for: a browser, initdb…);
- ``tree_rss_kb``: the peak of the command and its children together (SQLite's writer
  process), their RSS sampled every 50 ms, and never less than the command's own peak;
  it counts the pages the two share (the interpreter, its libraries) twice;
- ``tree_pss_kb``: the peak of their PSS together, sampled alike: each shared page
  divided among the processes mapping it, i.e. the memory the machine pays for them.

A small fresh process of its own, so that it counts nothing of its caller's pages (the
bench holds the simulators' data).
"""

from __future__ import annotations

import os
import sys
import threading
import time


def children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(") ", 1)[1].split()[1]) == parent:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(f.read().split("VmRSS:")[1].split()[0])
    except (OSError, IndexError):
        return 0


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return int(f.read().split("\nPss:")[1].split()[0])
    except (OSError, IndexError):
        return 0


def measure(argv: list[str]) -> int:
    started = time.monotonic()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    rss, pss, done = [0], [0], threading.Event()

    def sample() -> None:
        tree, rounds = [pid], 0
        while not done.wait(0.05):
            if rounds % 10 == 0:  # look for new children twice a second; read the known ones 20 times
                tree = [pid, *children(pid)]
            rss[0], pss[0] = max(rss[0], sum(map(rss_kb, tree))), max(pss[0], sum(map(pss_kb, tree)))
            rounds += 1

    threading.Thread(target=sample, daemon=True).start()
    _, status, usage = os.wait4(pid, 0)
    done.set()
    print(f"peak_rss_kb={usage.ru_maxrss} tree_rss_kb={max(rss[0], usage.ru_maxrss)} tree_pss_kb={pss[0]} "
          f"seconds={time.monotonic() - started:.3f}", file=sys.stderr)
    return os.waitstatus_to_exitcode(status)


def reading(stderr: str) -> dict[str, float]:
    """The figures of a run's last stderr line."""
    return {k: float(v) for k, v in (part.split("=") for part in stderr.strip().splitlines()[-1].split())}


if __name__ == "__main__":
    args = sys.argv[1:]
    command = [args[1], *args[2:]] if args[:1] == ["--program"] else [sys.executable, *args]
    sys.exit(measure(command))
