"""``python -m tests.fakes.peak_rss [--program PATH] ARGS…``: run a command, then say how
much memory it took and how long.

The command is ``python ARGS…`` (this interpreter), or ``PATH ARGS…`` with ``--program``
(another one: the bench's peer in its own virtualenv). The last stderr line is
``peak_rss_kb=N tree_rss_kb=M tree_once_kb=O seconds=S``, and the exit code is the command's:
- ``peak_rss_kb``: the command's own peak, from ``wait4`` (``RUSAGE_CHILDREN`` of the
  caller would be the largest of every child it ever waited for: a browser, initdb…);
- ``tree_rss_kb``: the peak of the command and its children together (SQLite's writer
  process), their RSS sampled every 50 ms, and never less than the command's own peak;
  it counts the pages the two map from the same files (the interpreter, its
  libraries) twice;
- ``tree_once_kb``: the same with those pages counted once (from ``/proc/PID/smaps``,
  read whenever the sum is a MB above its last reading: reading it costs 5 ms a process;
  what the sum grew since, counted as not shared). Not PSS,
  which would divide the interpreter's pages with every other Python process running
  (this one, the bench) and flatter the figure.

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


def mapped_kb(pid: int) -> tuple[dict[tuple[str, str], int], int]:
    """A process's resident KB per file mapping (path, offset), and its other resident KB."""
    files, other, key = {}, 0, None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                if line.startswith("Rss:"):
                    kb = int(line.split()[1])
                    if key is None:
                        other += kb
                    else:
                        files[key] = max(files.get(key, 0), kb)
                elif "-" in line.split(" ", 1)[0]:  # a mapping's header: range perms offset dev inode path
                    parts = line.split()
                    key = (parts[5], parts[2]) if len(parts) > 5 and parts[5].startswith("/") else None
    except OSError:
        pass
    return files, other


def once_kb(pids: list[int]) -> int:
    """The processes' resident KB, pages mapped from the same file region counted once."""
    files: dict[tuple[str, str], int] = {}
    total = 0
    for pid in pids:
        mine, other = mapped_kb(pid)
        total += other
        for key, kb in mine.items():
            files[key] = max(files.get(key, 0), kb)
    return total + sum(files.values())


SMAPS_STEP_KB = 1024
"""``smaps`` is read again only once the summed RSS is a MB above the last reading: read at
every new peak (every few KB), it took 9 % of a core from the command it measured."""


def measure(argv: list[str]) -> int:
    started = time.monotonic()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    rss, once, done = [0], [0], threading.Event()

    def sample() -> None:
        tree, rounds, read_at = [pid], 0, 0
        while not done.wait(0.05):
            if rounds % 10 == 0:  # look for new children twice a second; read the known ones 20 times
                tree = [pid, *children(pid)]
            summed, rounds = sum(map(rss_kb, tree)), rounds + 1
            rss[0] = max(rss[0], summed)
            if summed == rss[0] and summed > read_at + SMAPS_STEP_KB:  # a new peak, a MB on
                once[0], read_at = max(once[0], once_kb(tree)), summed
        once[0] += max(0, rss[0] - read_at)  # growth since the last read: counted as not shared

    threading.Thread(target=sample, daemon=True).start()
    _, status, usage = os.wait4(pid, 0)
    done.set()
    print(f"peak_rss_kb={usage.ru_maxrss} tree_rss_kb={max(rss[0], usage.ru_maxrss)} "
          f"tree_once_kb={max(once[0], usage.ru_maxrss)} seconds={time.monotonic() - started:.3f}", file=sys.stderr)
    return os.waitstatus_to_exitcode(status)


def reading(stderr: str) -> dict[str, float]:
    """The figures of a run's last stderr line."""
    return {k: float(v) for k, v in (part.split("=") for part in stderr.strip().splitlines()[-1].split())}


if __name__ == "__main__":
    args = sys.argv[1:]
    command = [args[1], *args[2:]] if args[:1] == ["--program"] else [sys.executable, *args]
    sys.exit(measure(command))
