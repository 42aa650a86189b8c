"""``python -m tests.fakes.peak_rss CMD…``: run CMD, then print its own peak RSS.

``RUSAGE_CHILDREN`` of the test process is the largest of every child it ever waited for
(a browser, initdb…); this measures exactly one command: the last stderr line is
``peak_rss_kb=N``, and the exit code is the command's.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    pid = os.posix_spawn(sys.executable, [sys.executable, *sys.argv[1:]], os.environ)
    _, status, usage = os.wait4(pid, 0)
    print(f"peak_rss_kb={usage.ru_maxrss}", file=sys.stderr)
    sys.exit(os.waitstatus_to_exitcode(status))
