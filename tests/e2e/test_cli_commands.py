"""The operator's commands against a running stack: ``es status``, ``es tasks``,
``es collections`` (through the API, as a user runs them)."""

from __future__ import annotations

import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2
from es_cli.embedded import free_port
from es_harness.throwaway import StackInfo
from tests.cli_run import es

pytestmark = pytest.mark.e2e


def _env(stack: StackInfo) -> dict[str, str]:
    """What the stack's parts were started with (es status reads the same settings)."""
    return {
        "ES_POSTGRES_DSN": stack.postgres_dsn,
        "ES_REDIS_URL": stack.redis_url,
        "ES_REDIS_PASSWORD": (stack.data_dir / "redis" / "password").read_text().strip(),
        "ES_TRITON_URL": stack.triton_url,
        "ES_SERVE_WITH_TRITON": "true" if stack.triton_url else "false",
    }


def _states(said: str) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in said.splitlines()[1:] if line.split()}


def test_status_is_0_with_everything_up_and_1_when_postgresql_is_unreachable(
    stack: StackInfo, client: Client
) -> None:
    code, said = es("status", "--address", stack.grpc_address, env=_env(stack))
    assert code == 0, said
    states = _states(said)
    assert states["postgresql"] == states["broker"] == states["server"] == "up", said
    assert states["triton"] == ("up" if stack.triton_url else "unused")
    for service in ("SearchService", "UpsertService", "TaskService", "DeploymentService"):
        assert states[service] == "up", said

    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    env = {**_env(stack), "ES_POSTGRES_DSN": closed}
    code, said = es("status", "--address", stack.grpc_address, "--timeout", "2", env=env)
    assert code == 1, said
    assert _states(said)["postgresql"] == "down" and _states(said)["broker"] == "up"

    code, said = es("status", "--address", f"127.0.0.1:{free_port()}", env=_env(stack))
    assert code == 1 and _states(said)["server"] == "down", said


def test_tasks_list_watch_and_cancel(stack: StackInfo, client: Client) -> None:
    task = client.upsert_items(
        [{"object_id": "cli-task", "payload": {"n": 1}, "parts": [{"vector": [0.5] * 384}]}]
    )
    code, said = es("tasks", "watch", task.task_id, "--address", stack.grpc_address)
    assert code == 0, said
    assert f"{task.task_id}: done" in said.splitlines()
    assert "100%" in said  # the bar (on stderr) reached its end

    code, said = es("tasks", "list", "--kind", "upsertion", "--address", stack.grpc_address)
    assert code == 0, said
    row = next(line for line in said.splitlines() if line.startswith(task.task_id))
    assert row.split()[1:4] == ["upsertion", "done", "100%"]

    code, said = es(
        "tasks", "list", "--status", "failed", "--limit", "1", "--address", stack.grpc_address
    )
    assert code == 0 and task.task_id not in said, said

    # A task that already ended cannot be canceled: the server's answer, and it stays done.
    code, said = es("tasks", "cancel", task.task_id, "--address", stack.grpc_address)
    assert code == 1, said
    assert said.startswith("es tasks cancel: FAILED_PRECONDITION: "), said
    final = client.wait_for_task(task.task_id, 10)
    assert final.status == common_pb2.TASK_STATUS_DONE


def test_tasks_bad_input_is_named(stack: StackInfo) -> None:
    for action in ("watch", "cancel"):
        code, said = es("tasks", action, "not-a-task", "--address", stack.grpc_address)
        assert code == 1, said
        assert f"es tasks {action}: INVALID_ARGUMENT" in said or "NOT_FOUND" in said, said
    code, said = es("tasks", "list", "--limit", "0", "--address", stack.grpc_address)
    assert code == 2 and "--limit: at least 1" in said
    code, said = es("tasks", "list", "--kind", "nope")
    assert code == 2 and "invalid choice: 'nope'" in said


def test_collections_list_and_a_bad_switch(stack: StackInfo, client: Client) -> None:
    blue = client.get_blue_collection()
    code, said = es("collections", "list", "--address", stack.grpc_address)
    assert code == 0, said
    row = next(line for line in said.splitlines() if line.startswith(blue.collection_id))
    assert row.split()[1] == "blue" and row.split()[-1] == blue.model_id

    code, said = es("collections", "switch", "no-such-collection", "--address", stack.grpc_address)
    assert code == 1, said
    assert "es collections switch: " in said and ("NOT_FOUND" in said or "INVALID" in said)
    # Nothing moved.
    assert client.get_blue_collection().collection_id == blue.collection_id


def test_an_unreachable_server_is_named_not_a_traceback() -> None:
    code, said = es("collections", "list", "--address", f"127.0.0.1:{free_port()}")
    assert code == 1
    assert said.startswith("es collections list: UNAVAILABLE"), said
