"""TaskService through gRPC: watching, listing, canceling, restarting, and the pending-task sweeper.

Some tasks are written straight into the tasks table (as the server would write them) to get
states a client cannot hold on to: a task that stays pending, one that failed, one that was
committed but never sent to the broker. Objects here use ids "tk-" and payload suite "tasks_api".
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import grpc
import numpy as np
import pytest

from embedding_studio.client import Client, from_struct, to_value
from embedding_studio.v1 import common_pb2, search_pb2, task_pb2, upsert_pb2
from es_core.config import Settings
from es_core.item_input import ItemInput, PartInput
from es_core.upsertion import write_batch_size
from es_harness.throwaway import StackInfo
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

DIMS = 384
SUITE = "tasks_api"
S = common_pb2  # statuses and kinds
TERMINAL = {S.TASK_STATUS_DONE, S.TASK_STATUS_FAILED, S.TASK_STATUS_CANCELED}
# Each lifecycle step comes after the previous one; DONE, FAILED and CANCELED all end it.
STEP = {
    S.TASK_STATUS_PENDING: 0,
    S.TASK_STATUS_PROCESSING: 1,
    S.TASK_STATUS_WAITING: 2,
    S.TASK_STATUS_DONE: 3,
    S.TASK_STATUS_FAILED: 3,
    S.TASK_STATUS_CANCELED: 3,
}


def unit(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=DIMS).astype(np.float32)
    return [float(x) for x in v / np.linalg.norm(v)]


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on a fresh loop in another thread (tests here are synchronous)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _insert_task(
    dsn: str,
    status: str,
    object_id: str,
    *,
    sent: bool,
    age_seconds: float,
    attempts: int,
    error: str,
    lease_seconds: float | None,
) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        collection_id = await conn.fetchval("SELECT collection_id FROM blue_collection")
        item = ItemInput(
            object_id,
            {"suite": SUITE, "via": "sql"},
            None,
            [PartInput("0", None, unit(len(object_id)))],
        )
        version = await conn.fetchval("SELECT nextval('item_write_versions')")
        params = {"collection_id": collection_id, "items": [item.to_json()], "version": version}
        task_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO tasks (task_id, kind, status, params, attempts, error, create_time,"
            " update_time, sent_time, finish_time, lease_owner, lease_expires_at)"
            " VALUES ($1, 'upsertion', $2, $3::jsonb, $4, $5, now() - make_interval(secs => $6),"
            " now() - make_interval(secs => $6), CASE WHEN $7 THEN now() END,"
            " CASE WHEN $2 = 'failed' THEN now() END,"
            " CASE WHEN $8::float8 IS NOT NULL THEN 'killed-worker' END,"
            " now() + make_interval(secs => $8::float8))",
            task_id,
            status,
            json.dumps(params),
            attempts,
            error,
            age_seconds,
            sent,
            lease_seconds,
        )
        return str(task_id)
    finally:
        await conn.close()


def insert_task(
    stack: StackInfo,
    status: str,
    object_id: str,
    *,
    sent: bool = True,
    age_seconds: float = 0.0,
    attempts: int = 0,
    error: str = "",
    lease_seconds: float | None = None,
) -> str:
    """An upsertion task row of one item, with a write version taken as the server takes it.
    ``sent`` = sent_time is now, so the sweeper leaves the row alone for
    task_resend_after_seconds (ten minutes): it stays pending until acted on. ``lease_seconds``:
    a worker holds it (status "processing") and died; its lease runs out that much later."""
    return str(
        run_async(
            _insert_task(
                stack.postgres_dsn,
                status,
                object_id,
                sent=sent,
                age_seconds=age_seconds,
                attempts=attempts,
                error=error,
                lease_seconds=lease_seconds,
            )
        )
    )


def get_task(client: Client, task_id: str) -> common_pb2.Task:
    task: common_pb2.Task = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id)).task
    return task


def watch(client: Client, task_id: str, timeout: float = 120) -> list[common_pb2.Task]:
    """Every message of a WatchTask stream, read until the server ends it."""
    return [
        r.task
        for r in client.tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=task_id), timeout=timeout)
    ]


def item_ids(client: Client, object_ids: list[str]) -> list[str]:
    return [
        i.object_id
        for i in client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=object_ids)).items
    ]


def list_all(client: Client, page_size: int, **filters: Any) -> list[list[common_pb2.Task]]:
    pages: list[list[common_pb2.Task]] = []
    token = ""
    while True:
        reply = client.tasks.ListTasks(
            task_pb2.ListTasksRequest(page_size=page_size, page_token=token, **filters)
        )
        pages.append(list(reply.tasks))
        token = reply.next_page_token
        if not token:
            return pages
        assert len(pages) < 1000


def ids_of(tasks: list[common_pb2.Task]) -> list[str]:
    return [t.task_id for t in tasks]


def barrier(client: Client) -> None:
    """Wait until the worker has finished everything queued before now: the stack runs one solo
    worker, and deletions share the upsertion queue, so a deletion sent now runs after them."""
    task = client.upsert.DeleteItems(upsert_pb2.DeleteItemsRequest(object_ids=["tk-barrier"])).task
    assert client.wait_for_task(task.task_id, timeout_seconds=300).status == S.TASK_STATUS_DONE


# --- WatchTask ------------------------------------------------------------------------------------


def test_watch_task_streams_to_the_terminal_state_and_ends(client: Client) -> None:
    task = client.upsert_items(
        [{"object_id": "tk-watch", "payload": {"suite": SUITE}, "parts": [{"vector": unit(1)}]}]
    )
    seen = watch(client, task.task_id)
    assert seen, "the stream sent nothing"
    assert {t.task_id for t in seen} == {task.task_id}
    last = seen[-1]
    assert last.status == S.TASK_STATUS_DONE, last.error
    assert all(t.status not in TERMINAL for t in seen[:-1])
    steps = [STEP[t.status] for t in seen]
    assert steps == sorted(steps)
    assert last.progress == 1.0 and last.attempts == 1
    assert from_struct(last.result) == {"upserted_count": 1}
    assert last.WhichOneof("outcome") == "upsertion" and last.upsertion.upserted_count == 1
    assert last.finish_time.seconds > 0 and last.start_time.seconds > 0
    assert item_ids(client, ["tk-watch"]) == ["tk-watch"]
    # Watching a finished task: its state once, then the end of the stream.
    again = watch(client, task.task_id)
    assert len(again) == 1 and again[0] == get_task(client, task.task_id)


def test_wait_for_task_of_many_items_reports_progress(client: Client) -> None:
    ids = [f"tk-progress-{i}" for i in range(300)]
    items = [
        {"object_id": oid, "payload": {"suite": SUITE}, "text": f"note number {i}"}
        for i, oid in enumerate(ids)
    ]
    task = client.upsert_items(items)
    seen = watch(client, task.task_id, timeout=300)
    assert seen[-1].status == S.TASK_STATUS_DONE, seen[-1].error
    progress = [t.progress for t in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert seen[-1].progress_message == "upserted 300 of 300 items"
    delete = client.upsert.DeleteItems(upsert_pb2.DeleteItemsRequest(object_ids=ids)).task
    assert client.wait_for_task(delete.task_id, 120).status == S.TASK_STATUS_DONE


# --- ListTasks ------------------------------------------------------------------------------------


def test_list_tasks_pages_newest_first(client: Client) -> None:
    mine = []
    for i in range(5):
        mine.append(
            client.upsert.DeleteItems(
                upsert_pb2.DeleteItemsRequest(object_ids=[f"tk-none-{i}"])
            ).task.task_id
        )
    for task_id in mine:
        assert client.wait_for_task(task_id, 120).status == S.TASK_STATUS_DONE

    (full,) = list_all(client, 1000)
    pages = list_all(client, 3)
    assert all(len(p) == 3 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 3
    paged = [t for p in pages for t in p]
    assert ids_of(paged) == ids_of(full)
    assert len(set(ids_of(paged))) == len(paged)
    keys = [(t.create_time.ToDatetime(), uuid.UUID(t.task_id)) for t in paged]
    assert all(a > b for a, b in zip(keys, keys[1:], strict=False)), "not newest first"
    assert ids_of(paged)[:5] == mine[::-1]  # nothing was created after them

    deletions = [t for p in list_all(client, 2, kind=S.TASK_KIND_DELETION) for t in p]
    assert ids_of(deletions) == [t.task_id for t in full if t.kind == S.TASK_KIND_DELETION]
    assert set(mine) <= set(ids_of(deletions))
    assert {t.kind for t in full} - {S.TASK_KIND_DELETION}, (
        "only deletions: the kind filter is untested"
    )

    for kind, statuses in [
        (S.TASK_KIND_DELETION, [S.TASK_STATUS_DONE]),
        (S.TASK_KIND_UNSPECIFIED, [S.TASK_STATUS_CANCELED, S.TASK_STATUS_FAILED]),
        (S.TASK_KIND_UPSERTION, [S.TASK_STATUS_DONE, S.TASK_STATUS_PENDING]),
    ]:
        filtered = [t for p in list_all(client, 2, kind=kind, statuses=statuses) for t in p]
        assert len(set(ids_of(filtered))) == len(filtered)
        assert all(t.status in statuses for t in filtered)
        assert all(t.kind == kind for t in filtered) or kind == S.TASK_KIND_UNSPECIFIED
        order = {task_id: i for i, task_id in enumerate(ids_of(full))}
        positions = [order[t.task_id] for t in filtered if t.task_id in order]
        assert positions == sorted(positions)
        if S.TASK_STATUS_DONE in statuses and kind == S.TASK_KIND_DELETION:
            assert set(mine) <= set(ids_of(filtered))
        else:
            assert not set(mine) & set(ids_of(filtered))


# --- CancelTask and RestartTask -------------------------------------------------------------------


def test_cancel_a_pending_task_then_restart_runs_it_to_done(
    client: Client, stack: StackInfo
) -> None:
    task_id = insert_task(stack, "pending", "tk-restart")
    assert get_task(client, task_id).status == S.TASK_STATUS_PENDING

    canceled = client.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=task_id)).task
    assert canceled.status == S.TASK_STATUS_CANCELED
    assert canceled.finish_time.seconds > 0 and canceled.attempts == 0
    assert get_task(client, task_id) == canceled
    assert watch(client, task_id) == [canceled]
    assert item_ids(client, ["tk-restart"]) == []

    restarted = client.tasks.RestartTask(task_pb2.RestartTaskRequest(task_id=task_id)).task
    assert restarted.status == S.TASK_STATUS_PENDING
    assert (
        not restarted.HasField("finish_time") and restarted.error == "" and restarted.progress == 0
    )
    final = client.wait_for_task(task_id, timeout_seconds=120)
    assert final.status == S.TASK_STATUS_DONE, final.error
    assert final.attempts == 1 and from_struct(final.result) == {"upserted_count": 1}
    (stored,) = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=["tk-restart"])).items
    assert from_struct(stored.payload) == {"suite": SUITE, "via": "sql"}
    expect_error(
        lambda: client.tasks.RestartTask(task_pb2.RestartTaskRequest(task_id=task_id)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "task_id",
    )


def test_restart_a_failed_task_runs_it_again(client: Client, stack: StackInfo) -> None:
    task_id = insert_task(stack, "failed", "tk-failed", attempts=1, error="boom")
    failed = get_task(client, task_id)
    assert failed.status == S.TASK_STATUS_FAILED and failed.error == "boom"
    restarted = client.tasks.RestartTask(task_pb2.RestartTaskRequest(task_id=task_id)).task
    assert restarted.status == S.TASK_STATUS_PENDING and restarted.error == ""
    final = client.wait_for_task(task_id, timeout_seconds=120)
    assert final.status == S.TASK_STATUS_DONE and final.error == ""
    assert item_ids(client, ["tk-failed"]) == ["tk-failed"]


def test_restart_counts_attempts_afresh(client: Client, stack: StackInfo) -> None:
    task_id = insert_task(stack, "failed", "tk-attempts", attempts=2, error="worker lost 2 times")
    restarted = client.tasks.RestartTask(task_pb2.RestartTaskRequest(task_id=task_id)).task
    client.wait_for_task(task_id, timeout_seconds=120)
    assert restarted.attempts == 0


def test_cancel_racing_a_running_upsertion_is_consistent(client: Client) -> None:
    """Cancel right after UpsertItems: either the cancel wins (the task stays canceled, whole
    batches at most were written) or the task had finished (FAILED_PRECONDITION, all written)."""
    n = 1000
    ids = [f"tk-race-{i:04d}" for i in range(n)]
    task = client.upsert_items(
        [
            {
                "object_id": oid,
                "payload": {"suite": "tasks_api_race", "i": i},
                "parts": [{"vector": unit(1000 + i)}],
            }
            for i, oid in enumerate(ids)
        ]
    )
    race = common_pb2.Filter(
        term=common_pb2.TermFilter(field="suite", value=to_value("tasks_api_race"))
    )

    def count() -> int:
        return int(client.search.CountItems(search_pb2.CountItemsRequest(filter=race)).count)

    try:
        canceled = client.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=task.task_id)).task
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert get_task(client, task.task_id).status == S.TASK_STATUS_DONE
        assert count() == n
    else:
        assert canceled.status == S.TASK_STATUS_CANCELED
        barrier(client)  # the worker has stopped working on it
        after = get_task(client, task.task_id)
        assert after.status == S.TASK_STATUS_CANCELED
        assert after.finish_time == canceled.finish_time and after.error == ""
        written = count()
        size = write_batch_size(n, Settings())  # the worker writes in batches of this size
        whole = {min(n, k * size) for k in range(-(-n // size) + 1)}
        assert written in whole, f"{written} items: a partial batch was committed"
        assert watch(client, task.task_id) == [after]
        restarted = client.tasks.RestartTask(task_pb2.RestartTaskRequest(task_id=task.task_id)).task
        assert restarted.status == S.TASK_STATUS_PENDING
        final = client.wait_for_task(task.task_id, timeout_seconds=300)
        assert final.status == S.TASK_STATUS_DONE, final.error
        assert from_struct(final.result) == {"upserted_count": n}
        assert count() == n
    delete = client.upsert.DeleteItems(upsert_pb2.DeleteItemsRequest(object_ids=ids)).task
    assert client.wait_for_task(delete.task_id, 120).status == S.TASK_STATUS_DONE
    assert count() == 0


# --- the sweeper ----------------------------------------------------------------------------------


def test_sweeper_sends_a_task_that_was_committed_but_never_sent(
    client: Client, stack: StackInfo
) -> None:
    task_id = insert_task(stack, "pending", "tk-swept", sent=False, age_seconds=30)
    assert get_task(client, task_id).status == S.TASK_STATUS_PENDING
    deadline = time.monotonic() + 60
    task = get_task(client, task_id)
    while task.status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        task = get_task(client, task_id)
    assert task.status == S.TASK_STATUS_DONE, f"still {S.TaskStatus.Name(task.status)} after 60 s"
    assert task.attempts == 1 and from_struct(task.result) == {"upserted_count": 1}
    (stored,) = client.upsert.GetItems(
        upsert_pb2.GetItemsRequest(object_ids=["tk-swept"], include_vectors=True)
    ).items
    assert from_struct(stored.payload) == {"suite": SUITE, "via": "sql"}
    assert np.allclose(np.asarray(stored.parts[0].vector), unit(len("tk-swept")), atol=1e-6)


def test_sweeper_replay_of_an_older_upsert_leaves_the_newer_item(
    client: Client, stack: StackInfo
) -> None:
    """Upsert A of an item was accepted, and its worker died mid-task; upsert B of the item is
    accepted after it and runs. When A's lease runs out the sweeper replays it: B's item stays,
    and A's result names the item it skipped."""
    older = insert_task(stack, "processing", "tk-ordered", attempts=1, lease_seconds=6)
    newer = client.upsert_items(
        [
            {
                "object_id": "tk-ordered",
                "payload": {"suite": SUITE, "via": "api"},
                "parts": [{"part_id": "0", "vector": unit(7)}],
            }
        ]
    )
    assert client.wait_for_task(newer.task_id, timeout_seconds=120).status == S.TASK_STATUS_DONE
    deadline = time.monotonic() + 60
    replayed = get_task(client, older)
    while replayed.status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        replayed = get_task(client, older)
    assert replayed.status == S.TASK_STATUS_DONE and replayed.attempts == 2
    assert replayed.WhichOneof("outcome") == "upsertion"
    assert replayed.upsertion.upserted_count == 0 and replayed.upsertion.superseded_count == 1
    assert list(replayed.upsertion.superseded_object_ids) == ["tk-ordered"]
    (stored,) = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=["tk-ordered"])).items
    assert from_struct(stored.payload) == {"suite": SUITE, "via": "api"}
    versions = run_async(_write_versions(stack.postgres_dsn, [older, newer.task_id]))
    assert versions[older] < versions[newer.task_id] == stored.version


async def _write_versions(dsn: str, task_ids: list[str]) -> dict[str, int]:
    """The write version each task was given when accepted (tasks' params are not in the API)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT task_id::text, (params ->> 'version')::bigint AS version FROM tasks"
            " WHERE task_id = ANY($1::uuid[])",
            task_ids,
        )
    finally:
        await conn.close()
    return {r["task_id"]: r["version"] for r in rows}
