"""prometheus_client's multiprocess mode for Celery workers: a prefork pool's children count
into files under one directory, which the worker's /metrics reads as a whole.

prometheus_client chooses the mode when it is first imported, from PROMETHEUS_MULTIPROC_DIR:
``use_directory`` must run before anything imports it (``es_workers/__init__.py`` calls it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_directory(root: Path) -> Path | None:
    """A fresh ``root/worker-<pid>`` as this process's (and its children's) metrics directory,
    unless the environment names one already (which is then kept as it is)."""
    if os.environ.get(ENV):
        return None
    _remove_dead(root)
    directory = root / f"worker-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[ENV] = str(directory)
    return directory


def _remove_dead(root: Path) -> None:
    """Directories of workers that are gone (their counts went with them)."""
    for old in root.glob("worker-*"):
        pid = old.name.removeprefix("worker-")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
