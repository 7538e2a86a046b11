"""Run the ``es`` command as a user does: a subprocess with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys


def es(*argv: str, env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, str]:
    """(exit code, stdout + stderr) of ``es argv...`` with ``env`` over this process's."""
    done = subprocess.run(
        [sys.executable, "-m", "es_cli.main", *argv],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr
