"""A second `es up` on a data directory another one runs on stops at once, and its stop leaves
the running stack's files alone."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from es_cli.stack import STACK_FILE, Stack
from es_core.config import Settings


def test_a_second_es_up_stops_and_leaves_the_running_stacks_file(tmp_path: Path) -> None:
    (tmp_path / STACK_FILE).write_text('{"grpc_address": "127.0.0.1:1"}')
    with open(tmp_path / "es-up.lock", "w") as running:  # the first `es up` holds the lock
        fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = Stack(Settings(data_dir=tmp_path))
        with pytest.raises(SystemExit, match="another `es up` is running"):
            second.start()
        second.stop()
        assert (tmp_path / STACK_FILE).read_text() == '{"grpc_address": "127.0.0.1:1"}'
        # The lock is still the first one's: nobody else can take it.
        with open(tmp_path / "es-up.lock", "w") as third, pytest.raises(BlockingIOError):
            fcntl.flock(third, fcntl.LOCK_EX | fcntl.LOCK_NB)
