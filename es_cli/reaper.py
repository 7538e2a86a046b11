"""``python -m es_cli.reaper``: what ``es up`` started is stopped even if ``es up`` is killed.

``es up`` starts the reaper first, with a pipe as its standard input, and writes one line per
thing to stop: ``group <pgid>`` for a child's process group, ``postmaster <pid>`` for the
embedded PostgreSQL (which daemonizes, so it is nobody's child and no parent-death signal
reaches it), ``forget <pgid>`` for a group stopped in order. ``done`` says ``es up`` stopped
everything itself. End of input without ``done`` means ``es up`` died: the reaper then stops
every group it still knows (SIGTERM, SIGKILL after a grace period) and PostgreSQL (fast
shutdown), and exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import IO

from es_cli.process_group import group_alive, signal_group

GRACE_SECONDS = 10.0


class Reaper:
    """The supervisor's end of the pipe."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "es_cli.reaper"],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )

    def _say(self, line: str) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(f"{line}\n".encode())
        stdin.flush()

    def guard_group(self, pgid: int) -> None:
        self._say(f"group {pgid}")

    def forget_group(self, pgid: int) -> None:
        self._say(f"forget {pgid}")

    def guard_postmaster(self, pid: int) -> None:
        self._say(f"postmaster {pid}")

    def close(self) -> None:
        """Everything was stopped in order: the reaper exits doing nothing."""
        self._say("done")
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap(groups: set[int], postmasters: set[int], grace: float = GRACE_SECONDS) -> None:
    for pgid in groups:
        signal_group(pgid, signal.SIGTERM)
    for pid in postmasters:
        try:
            os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (
        any(group_alive(g) for g in groups) or any(_pid_alive(p) for p in postmasters)
    ):
        time.sleep(0.1)
    for pgid in groups:
        signal_group(pgid, signal.SIGKILL)


def main(stdin: IO[str] = sys.stdin) -> int:
    # Ctrl-C in the terminal is for `es up`, which then stops everything itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    postmasters: set[int] = set()
    for line in stdin:
        word, _, value = line.strip().partition(" ")
        if word == "done":
            return 0
        if word == "group":
            groups.add(int(value))
        elif word == "forget":
            groups.discard(int(value))
        elif word == "postmaster":
            postmasters.add(int(value))
    reap(groups, postmasters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
