"""The stack as a compose file runs it: PostgreSQL and Redis of their own, then ``es migrate``,
``es server``, a worker per queue group (``es worker --queues upsertion`` with its production
prefork pool, ``es worker --queues fine_tuning``) and ``es beat``, each a process of its own.
Upserts and searches work, and a fine-tuning in progress does not hold back an upsert: the
upsert is done while the fine-tuning is still processing (one worker for both would run them
one after the other)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from embedding_studio.client import Client, to_struct
from embedding_studio.v1 import clickstream_pb2 as cs
from embedding_studio.v1 import common_pb2, task_pb2
from embedding_studio.v1 import fine_tune_pb2 as ft
from es_cli.embedded import EmbeddedPostgres, free_port, start_redis
from tests.cli_run import es
from tests.integration.helpers import fresh_database

pytestmark = pytest.mark.e2e

TOPICS = ["protein folding", "ocean currents", "volcanic soil", "bird migration"]
# Long enough to be still training when the upsert is done: every epoch the search space
# allows, over a few hundred examples.
TRAINING = {"epochs": [20], "frozen_layers": [5], "learning_rate": [2e-5]}


class Processes:
    """The stack's processes, each in its own group, each logging to a file."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *argv: str) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            self.running[name] = subprocess.Popen(
                [sys.executable, "-m", "es_cli.main", *argv],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited: {self.log(name)[-3000:]}")

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.running.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def database(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """A new database on the session's PostgreSQL (dropped after)."""
    fresh = fresh_database(pg_server.dsn)
    # One loop for both ends: a loop that closes finalizes the context's generator (a drop).
    with asyncio.Runner() as runner:
        dsn = runner.run(fresh.__aenter__())
        try:
            yield dsn
        finally:
            runner.run(fresh.__aexit__(None, None, None))


@pytest.fixture
def processes(tmp_path: Path, database: str) -> Iterator[tuple[Processes, str]]:
    redis = start_redis(tmp_path / "redis", free_port())
    port = free_port()
    env = {
        **os.environ,
        "ES_DATA_DIR": str(tmp_path / "data"),
        "ES_POSTGRES_DSN": database,
        "ES_REDIS_URL": redis.url,
        "ES_REDIS_PASSWORD": redis.password,
        "ES_GRPC_HOST": "127.0.0.1",
        "ES_GRPC_PORT": str(port),
        "ES_SERVE_WITH_TRITON": "false",
        "ES_SWEEPER_INTERVAL_SECONDS": "2",
        "ES_FINE_TUNING_MAX_TRIALS": "1",
        "ES_FINE_TUNING_MAX_SEQ_LENGTH": "64",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        # As compose and Kubernetes run it: `es migrate` first, the others only wait for it.
        "ES_MIGRATE_ON_START": "false",
    }
    env.pop("ES_TRITON_URL", None)
    code, said = es("migrate", env=env)
    assert code == 0 and "applied" in said, said
    running = Processes(env, tmp_path / "logs")
    try:
        running.start("server", "server")
        running.start("worker-upsertion", "worker", "--queues", "upsertion")
        running.start("worker-fine-tuning", "worker", "--queues", "fine_tuning")
        running.start("beat", "beat")
        _wait_serving(running, f"127.0.0.1:{port}")
        yield running, f"127.0.0.1:{port}"
    finally:
        running.stop()
        redis.stop()


def _wait_serving(running: Processes, address: str) -> None:
    deadline = time.monotonic() + 240
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            running.check()
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.5)
    raise AssertionError("the server did not serve: " + running.log("server")[-3000:])


def _items() -> list[dict[str, object]]:
    return [
        {
            "object_id": f"doc-{t}-{i}",
            "payload": {"topic": topic},
            "text": f"A study of {topic}, part {i}: what {topic} tells us about the world.",
        }
        for t, topic in enumerate(TOPICS)
        for i in range(5)
    ]


def _teach(client: Client, sessions: int) -> None:
    """Sessions whose query names a topic and whose click is on one of its documents."""
    shown = [f"doc-{t}-0" for t in range(len(TOPICS))]
    for n in range(sessions):
        t = n % len(TOPICS)
        session = cs.Session(
            session_id=f"s-{n}-{uuid.uuid4().hex[:6]}",
            query_text=f"{TOPICS[t]} question {n}",
            results=[cs.ShownResult(object_id=o, rank=r) for r, o in enumerate(shown)],
        )
        stored = client.clickstream.RegisterSession(cs.RegisterSessionRequest(session=session))
        click = cs.SessionEvent(
            event_id=f"{stored.session.session_id}-click",
            session_id=stored.session.session_id,
            object_id=f"doc-{t}-{n % 5}",
            event_type="click",
        )
        client.clickstream.PushEvents(cs.PushEventsRequest(events=[click]))


def _status(client: Client, task_id: str) -> int:
    reply = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id))
    return int(reply.task.status)


def test_a_stack_of_separate_processes_serves_and_training_does_not_hold_back_upserts(
    processes: tuple[Processes, str],
) -> None:
    running, address = processes
    with Client(address) as client:
        task = client.upsert_items(_items())
        final = client.wait_for_task(task.task_id, 300)
        assert final.status == common_pb2.TASK_STATUS_DONE, final.error
        found = client.search_text("volcanic soil", limit=5)
        assert found.results and found.results[0].object_id.startswith("doc-2-")

        _teach(client, 200)
        request = ft.StartFineTuningRequest(hyperparameters=to_struct(TRAINING))
        training = client.fine_tune.StartFineTuning(request).task.task
        deadline = time.monotonic() + 300
        while _status(client, training.task_id) == common_pb2.TASK_STATUS_PENDING:
            assert time.monotonic() < deadline, running.log("worker-fine-tuning")[-3000:]
            running.check()
            time.sleep(0.5)
        assert _status(client, training.task_id) == common_pb2.TASK_STATUS_PROCESSING

        upsert = client.upsert_items(
            [{"object_id": "while-training", "payload": {}, "text": "bird migration routes"}]
        )
        done = client.wait_for_task(upsert.task_id, 120)
        assert done.status == common_pb2.TASK_STATUS_DONE, done.error
        # Still training: the upsert did not wait for it.
        assert _status(client, training.task_id) == common_pb2.TASK_STATUS_PROCESSING
        found = client.search_text("bird migration routes", limit=3)
        assert "while-training" in [r.object_id for r in found.results]

        code, said = es("tasks", "cancel", training.task_id, "--address", address)
        assert (code, said.strip()) == (0, f"{training.task_id}: canceled")
        assert _status(client, training.task_id) == common_pb2.TASK_STATUS_CANCELED
    # The upsertion worker ran its production pool (prefork, two processes), and each worker
    # took only its own group's queues.
    upserts_log = running.log("worker-upsertion")
    assert "prefork" in upserts_log and "upsertion" in upserts_log
    assert "fine_tuning" not in upserts_log.split("[tasks]")[0]
