"""`es up` as an operator meets it: data survives a restart, SIGTERM stops every process,
and external PostgreSQL / Redis are used (and left running) when given by URL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2, upsert_pb2
from es_cli.embedded import EmbeddedPostgres, free_port, free_ports, start_redis
from es_harness import throwaway
from es_harness.throwaway import ThrowawayStack
from tests.e2e.conftest import NO_TRITON

pytestmark = pytest.mark.e2e


def _vector(seed: int) -> list[float]:
    return [1.0 if i == seed % 384 else 0.0 for i in range(384)]


def _upsert_one(client: Client, object_id: str) -> None:
    task = client.upsert_items(
        [{"object_id": object_id, "payload": {"n": 1}, "parts": [{"vector": _vector(7)}]}]
    )
    assert client.wait_for_task(task.task_id, 120).status == common_pb2.TASK_STATUS_DONE


def _started_pids(data_dir: Path) -> list[int]:
    pids = json.loads((data_dir / "stack.json").read_text())["pids"]
    return list(pids.values())


def test_data_survives_a_restart_and_sigterm_stops_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ThrowawayStack(data_dir) as info, Client(info.grpc_address) as client:
        _upsert_one(client, "survivor")
        children = _started_pids(data_dir)
        postgres_pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    for pid in [*children, postgres_pid]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert not (data_dir / "stack.json").exists()

    # Triton keeps nothing across a restart, so the second start goes without it (quicker).
    with (
        ThrowawayStack(data_dir, extra_env=NO_TRITON) as info,
        Client(info.grpc_address) as client,
    ):
        reply = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=["survivor"]))
        assert [item.object_id for item in reply.items] == ["survivor"]


def test_external_postgres_and_redis_by_url(tmp_path: Path, pg_server: EmbeddedPostgres) -> None:
    redis = start_redis(tmp_path / "redis", free_port())
    try:
        env = {
            "ES_POSTGRES_DSN": pg_server.dsn,
            "ES_REDIS_URL": redis.url,
            "ES_REDIS_PASSWORD": redis.password,
            **NO_TRITON,
        }
        with ThrowawayStack(tmp_path / "data", extra_env=env) as info:
            assert info.postgres_dsn == pg_server.dsn and info.redis_url == redis.url
            with Client(info.grpc_address) as client:
                _upsert_one(client, "external")
        # The stack used them but did not own them: both still serve.
        assert redis.process.poll() is None
        assert not (tmp_path / "data" / "postgres").exists()
        postmaster = Path(pg_server.dsn.split("host=")[1]) / "postmaster.pid"
        assert psutil.pid_exists(int(postmaster.read_text().split()[0]))
    finally:
        redis.stop()
    assert os.path.exists(tmp_path / "data" / "logs" / "server.log")


@pytest.mark.parametrize(
    ("plugin", "words"),
    [
        ("nope", "no such plugin"),
        ("", "no such plugin"),
    ],
)
def test_a_plugin_that_cannot_load_stops_es_up_at_start(
    tmp_path: Path, plugin: str, words: str
) -> None:
    env = {**os.environ, "ES_DATA_DIR": str(tmp_path), "ES_PLUGIN": plugin}
    env.pop("ES_POSTGRES_DSN", None)
    done = subprocess.run(
        [sys.executable, "-m", "es_cli.main", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"ES_PLUGIN={plugin!r}" in done.stderr and words in done.stderr
    assert "installed: text-minilm" in done.stderr
    # Nothing was started: no database directory, no stack file.
    assert not (tmp_path / "postgres").exists()
    assert not (tmp_path / "stack.json").exists()


def test_a_plugin_that_cannot_load_stops_the_worker_at_start(tmp_path: Path) -> None:
    env = {**os.environ, "ES_DATA_DIR": str(tmp_path), "ES_PLUGIN": "nope"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "es_workers.app:celery_app",
            "worker",
            "--pool",
            "solo",
            "--queues",
            "fine_tuning",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "ES_PLUGIN='nope': no such plugin" in done.stderr


def test_a_throwaway_stack_whose_port_was_taken_starts_again_on_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = int(taken.getsockname()[1])
        choices: list[list[int]] = []

        def first_one_taken(count: int) -> list[int]:
            ports = free_ports(count)
            if not choices:
                ports[1] = held  # the Redis port, taken by someone else in the meantime
            choices.append(ports)
            return ports

        monkeypatch.setattr(throwaway, "free_ports", first_one_taken)
        with ThrowawayStack(tmp_path / "data", extra_env=NO_TRITON) as info:
            assert len(choices) == 2
            assert info.redis_url.endswith(f":{choices[1][1]}/0") and held not in choices[1]
            with Client(info.grpc_address) as client:
                _upsert_one(client, "second-try")
