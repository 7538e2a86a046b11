"""`es up` as a supervisor: a killed worker is restarted and its task done once, one beat
only, a child that keeps dying stops the stack loudly, and neither a stop nor a SIGKILL of
`es up` leaves a process behind. The Redis password is on no command line and in no log."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2, upsert_pb2
from es_cli.stack import worker_name
from es_harness.throwaway import ThrowawayStack
from tests.e2e.conftest import NO_TRITON

pytestmark = pytest.mark.e2e
# The worker child that runs upserts (one worker per queue group).
UPSERTION_WORKER = worker_name("upsertion")

FAST_RESTARTS = {
    **NO_TRITON,
    "ES_RESTART_BACKOFF_SECONDS": "0.5",
    "ES_RESTART_MAX_FAILURES": "2",
}


def _pids(data_dir: Path) -> dict[str, int]:
    return {k: int(v) for k, v in json.loads((data_dir / "stack.json").read_text())["pids"].items()}


def _tree(root: int) -> list[psutil.Process]:
    process = psutil.Process(root)
    return [process, *process.children(recursive=True)]


def _beats() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "celery" in cmdline and ("beat" in cmdline or "--beat" in cmdline or "-B" in cmdline):
            found.append(process)
    return found


def _ours(processes: list[psutil.Process], data_dir: Path) -> list[psutil.Process]:
    """Processes started for this stack (their environment names its data directory)."""
    mine = []
    for process in processes:
        try:
            if process.environ().get("ES_DATA_DIR") == str(data_dir):
                mine.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return mine


def _wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


def _wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _everything(stack: ThrowawayStack) -> list[psutil.Process]:
    """es up, its children and theirs, its reaper, Redis, and the PostgreSQL server."""
    assert stack.process is not None
    postmaster = int((stack.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    return [*_tree(stack.process.pid), *_tree(postmaster)]


def test_a_killed_worker_is_restarted_its_task_done_once_and_repeated_deaths_stop_es_up(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    stack = ThrowawayStack(data_dir, extra_env=FAST_RESTARTS)
    with stack as info, Client(info.grpc_address) as client:
        assert stack.process is not None
        password = (data_dir / "redis" / "password").read_text()
        for process in psutil.process_iter(["cmdline"]):
            assert password not in " ".join(process.info["cmdline"] or [])
        # One beat, a child of its own; the workers embed none.
        beats = _ours(_beats(), data_dir)
        assert [b.pid for b in beats] == [_pids(data_dir)["beat"]]
        worker = psutil.Process(_pids(data_dir)[UPSERTION_WORKER])
        assert "--beat" not in worker.cmdline() and "-B" not in worker.cmdline()

        worker.kill()
        task = client.upsert_items(
            [{"object_id": "after-kill", "payload": {"n": 1}, "parts": [{"vector": [1.0] * 384}]}]
        )
        final = client.wait_for_task(task.task_id, 180)
        assert final.status == common_pb2.TASK_STATUS_DONE, final.error
        assert final.attempts == 1
        assert _pids(data_dir)[UPSERTION_WORKER] != worker.pid
        reply = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=["after-kill"]))
        assert [item.object_id for item in reply.items] == ["after-kill"]
        assert info.log(UPSERTION_WORKER).count(f"task {task.task_id} failed") == 0
        assert [b.pid for b in _ours(_beats(), data_dir)] == [b.pid for b in beats]

        everything = _everything(stack)
        # The second death within the window: es up gives up, naming the worker.
        psutil.Process(_pids(data_dir)[UPSERTION_WORKER]).kill()
        assert stack.process.wait(timeout=120) == 1
    said = (data_dir / "es-up.out").read_text()
    assert f"{UPSERTION_WORKER} exited with code -9: 2 failures within 300s, giving up" in said
    assert f"{UPSERTION_WORKER}.log" in said
    assert _wait_gone(everything, 30) == []
    for path in [data_dir / "es-up.out", *(data_dir / "logs").iterdir()]:
        assert password not in path.read_text(errors="replace"), path


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_no_process_outlives_es_up(tmp_path: Path, how: signal.Signals) -> None:
    data_dir = tmp_path / "data"
    stack = ThrowawayStack(data_dir, extra_env=NO_TRITON)
    with stack:
        assert stack.process is not None
        everything = _everything(stack)
        names = {" ".join(p.cmdline()[:4]) for p in everything}
        assert len(everything) >= 10, names  # es up, reaper, redis, 5 workers, beat, server, ...
        os.kill(stack.process.pid, how)
        stack.process.wait(timeout=90)
    assert _wait_gone(everything, 60) == []
    assert _ours(_beats(), data_dir) == []
