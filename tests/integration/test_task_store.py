"""The task store on a real PostgreSQL: idempotency, leases, cancel/restart, resend, listing."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from es_core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from es_core.observability import request_context
from es_core.tasks import store
from tests.integration.helpers import unique_id
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration


async def _new(pool: asyncpg.Pool, kind: str = "upsertion", **params: object) -> str:
    async with pool.acquire() as conn:
        task, created = await store.create_task(conn, kind, {"n": unique_id("p"), **params})  # type: ignore[arg-type]
    assert created and task.status == "pending" and task.attempts == 0
    return task.task_id


async def _status(pool: asyncpg.Pool, task_id: str) -> str:
    async with pool.acquire() as conn:
        return (await store.get_task(conn, task_id)).status


# ---- create_task ----


async def test_a_retry_from_another_request_is_the_same_task(pg_pool: asyncpg.Pool) -> None:
    """The request id a task carries is not part of what its idempotency key stands for."""
    key = unique_id("key")
    params = {"collection_id": "c", "items": [1]}
    created = []
    async with pg_pool.acquire() as conn:
        for request in ("first-request", "retry-request"):
            token = request_context.request_id.set(request)
            try:
                created.append(
                    await store.create_task(conn, "upsertion", params, idempotency_key=key)
                )
            finally:
                request_context.request_id.reset(token)
    (first, created1), (again, created2) = created
    assert (created1, created2) == (True, False)
    assert again.task_id == first.task_id
    assert again.params == {**params, "request_id": "first-request"}


async def test_same_key_and_params_returns_the_first_task(pg_pool: asyncpg.Pool) -> None:
    key = unique_id("key")
    params = {"collection_id": "c", "items": [1, 2, {"a": "b"}]}
    async with pg_pool.acquire() as conn:
        first, created1 = await store.create_task(conn, "upsertion", params, idempotency_key=key)
        # Same params in another key order: same request.
        again, created2 = await store.create_task(
            conn, "upsertion", dict(reversed(list(params.items()))), idempotency_key=key
        )
        count = await conn.fetchval("SELECT count(*) FROM tasks WHERE idempotency_key = $1", key)
    assert (created1, created2) == (True, False)
    assert again.task_id == first.task_id
    assert again.params == params
    assert again.idempotency_key == key
    assert count == 1


async def test_same_key_other_params_is_already_exists(pg_pool: asyncpg.Pool) -> None:
    key = unique_id("key")
    async with pg_pool.acquire() as conn:
        await store.create_task(conn, "upsertion", {"a": 1}, idempotency_key=key)
        with pytest.raises(AlreadyExists) as info:
            await store.create_task(conn, "upsertion", {"a": 2}, idempotency_key=key)
    assert [v.field for v in info.value.violations] == ["idempotency_key"]


async def test_same_key_other_kind_is_another_task(pg_pool: asyncpg.Pool) -> None:
    key = unique_id("key")
    async with pg_pool.acquire() as conn:
        up, c1 = await store.create_task(conn, "upsertion", {"a": 1}, idempotency_key=key)
        ft, c2 = await store.create_task(conn, "fine_tuning", {"a": 1}, idempotency_key=key)
    assert c1 and c2 and up.task_id != ft.task_id
    assert (up.kind, ft.kind) == ("upsertion", "fine_tuning")


async def test_no_key_always_creates(pg_pool: asyncpg.Pool) -> None:
    async with pg_pool.acquire() as conn:
        a, c1 = await store.create_task(conn, "upsertion", {"a": 1})
        b, c2 = await store.create_task(conn, "upsertion", {"a": 1})
    assert c1 and c2 and a.task_id != b.task_id
    assert a.idempotency_key is None


async def test_concurrent_creates_with_one_key_make_one_task(pg_pool: asyncpg.Pool) -> None:
    key = unique_id("key")

    async def create() -> tuple[str, bool]:
        async with pg_pool.acquire() as conn, conn.transaction():
            task, created = await store.create_task(conn, "reindex", {"x": 1}, idempotency_key=key)
            await asyncio.sleep(0.05)  # hold the transaction open while the other one waits
            return task.task_id, created

    results = await asyncio.gather(*(create() for _ in range(4)))
    assert len({task_id for task_id, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, False, False, True]


async def test_overlong_key_is_invalid(pg_pool: asyncpg.Pool) -> None:
    async with pg_pool.acquire() as conn:
        with pytest.raises(InvalidArgument) as info:
            await store.create_task(conn, "upsertion", {}, idempotency_key="k" * 257)
    assert info.value.violations[0].field == "idempotency_key"


# ---- claim / lease ----


async def test_only_one_of_two_concurrent_claims_wins(pg_pool: asyncpg.Pool) -> None:
    for _ in range(5):
        task_id = await _new(pg_pool)

        async def claim(owner: str, task_id: str = task_id) -> object:
            async with pg_pool.acquire() as conn:
                return await store.claim_task(conn, task_id, owner, 30)

        a, b = await asyncio.gather(claim("worker-a"), claim("worker-b"))
        winners = [t for t in (a, b) if t is not None]
        assert len(winners) == 1
        assert winners[0].status == "processing" and winners[0].attempts == 1
        assert winners[0].start_time is not None
        async with pg_pool.acquire() as conn:
            owner = await conn.fetchval(
                "SELECT lease_owner FROM tasks WHERE task_id = $1", uuid.UUID(task_id)
            )
        assert owner == ("worker-a" if a is not None else "worker-b")


async def test_claimed_task_cannot_be_claimed_again_while_leased(pg_pool: asyncpg.Pool) -> None:
    task_id = await _new(pg_pool)
    assert await store.claim_task(pg_pool, task_id, "a", 30) is not None
    assert await store.claim_task(pg_pool, task_id, "b", 30) is None
    assert await store.claim_task(pg_pool, task_id, "a", 30) is None


async def test_expired_lease_is_taken_over_and_first_owner_is_locked_out(
    pg_pool: asyncpg.Pool,
) -> None:
    task_id = await _new(pg_pool)
    first = await store.claim_task(pg_pool, task_id, "first", 0.05)
    assert first is not None
    await asyncio.sleep(0.2)
    second = await store.claim_task(pg_pool, task_id, "second", 30)
    assert second is not None and second.attempts == 2
    assert second.start_time == first.start_time  # the first start is kept
    assert not await store.report_progress(pg_pool, task_id, "first", 0.5, "half", 30)
    assert not await store.renew_lease(pg_pool, task_id, "first", 30)
    assert not await store.finish_task(pg_pool, task_id, "first", "done")
    assert await store.report_progress(pg_pool, task_id, "second", 0.5, "half", 30, {"r": 1})
    task = await store.get_task(pg_pool, task_id)
    assert (task.status, task.progress, task.progress_message, task.result) == (
        "processing",
        0.5,
        "half",
        {"r": 1},
    )
    assert await store.finish_task(pg_pool, task_id, "second", "done", result={"ok": True})
    task = await store.get_task(pg_pool, task_id)
    assert (task.status, task.progress, task.result) == ("done", 1.0, {"ok": True})
    assert task.finish_time is not None
    # Done is final: nobody can claim it or finish it again.
    assert await store.claim_task(pg_pool, task_id, "third", 30) is None
    assert not await store.finish_task(pg_pool, task_id, "second", "failed", error="x")


async def test_progress_is_clamped(pg_pool: asyncpg.Pool) -> None:
    task_id = await _new(pg_pool)
    await store.claim_task(pg_pool, task_id, "w", 30)
    assert await store.report_progress(pg_pool, task_id, "w", 7.0, "", 30)
    assert (await store.get_task(pg_pool, task_id)).progress == 1.0
    assert await store.report_progress(pg_pool, task_id, "w", -1.0, "", 30)
    assert (await store.get_task(pg_pool, task_id)).progress == 0.0


async def test_report_progress_after_cancel_is_false(pg_pool: asyncpg.Pool) -> None:
    task_id = await _new(pg_pool)
    assert await store.claim_task(pg_pool, task_id, "w", 30) is not None
    canceled = await store.cancel_task(pg_pool, task_id)
    assert canceled.status == "canceled" and canceled.finish_time is not None
    assert not await store.report_progress(pg_pool, task_id, "w", 0.9, "late", 30)
    assert not await store.renew_lease(pg_pool, task_id, "w", 30)
    assert not await store.finish_task(pg_pool, task_id, "w", "done")
    task = await store.get_task(pg_pool, task_id)
    assert task.status == "canceled" and task.progress_message == ""


async def test_cancel_pending_task(pg_pool: asyncpg.Pool) -> None:
    task_id = await _new(pg_pool)
    assert (await store.cancel_task(pg_pool, task_id)).status == "canceled"
    assert await store.claim_task(pg_pool, task_id, "w", 30) is None


@pytest.mark.parametrize("final", ["done", "failed", "canceled"])
async def test_cancel_of_finished_task_is_failed_precondition(
    pg_pool: asyncpg.Pool, final: str
) -> None:
    task_id = await _new(pg_pool)
    if final == "canceled":
        await store.cancel_task(pg_pool, task_id)
    else:
        await store.claim_task(pg_pool, task_id, "w", 30)
        assert await store.finish_task(pg_pool, task_id, "w", final)  # type: ignore[arg-type]
    with pytest.raises(FailedPrecondition) as info:
        await store.cancel_task(pg_pool, task_id)
    assert info.value.violations[0].field == "task_id"
    assert await _status(pg_pool, task_id) == final


# ---- restart ----


@pytest.mark.parametrize("final", ["failed", "canceled"])
async def test_restart_puts_the_task_back_pending_with_attempts_zero(
    pg_pool: asyncpg.Pool, final: str
) -> None:
    task_id = await _new(pg_pool)
    await store.claim_task(pg_pool, task_id, "w", 30)
    await store.report_progress(pg_pool, task_id, "w", 0.4, "going", 30)
    if final == "failed":
        assert await store.finish_task(pg_pool, task_id, "w", "failed", error="boom")
    else:
        await store.cancel_task(pg_pool, task_id)
    await store.mark_sent(pg_pool, task_id)
    task = await store.restart_task(pg_pool, task_id)
    assert (task.status, task.attempts, task.error, task.progress, task.finish_time) == (
        "pending",
        0,
        "",
        0.0,
        None,
    )
    sent = await pg_pool.fetchval(
        "SELECT sent_time FROM tasks WHERE task_id = $1", uuid.UUID(task_id)
    )
    assert sent is None
    again = await store.claim_task(pg_pool, task_id, "w2", 30)
    assert again is not None and again.attempts == 1


@pytest.mark.parametrize("state", ["pending", "processing", "done"])
async def test_restart_of_unfinished_or_done_task_is_failed_precondition(
    pg_pool: asyncpg.Pool, state: str
) -> None:
    task_id = await _new(pg_pool)
    if state != "pending":
        await store.claim_task(pg_pool, task_id, "w", 30)
    if state == "done":
        await store.finish_task(pg_pool, task_id, "w", "done")
    with pytest.raises(FailedPrecondition):
        await store.restart_task(pg_pool, task_id)
    assert await _status(pg_pool, task_id) == state


# ---- resend sweep ----


async def _age(
    pool: asyncpg.Pool, task_id: str, seconds: float, column: str = "create_time"
) -> None:
    await pool.execute(
        f"UPDATE tasks SET {column} = now() - make_interval(secs => $2) WHERE task_id = $1",
        uuid.UUID(task_id),
        float(seconds),
    )


async def test_tasks_to_resend(pg_pool: asyncpg.Pool) -> None:
    never_sent_old = await _new(pg_pool)
    await _age(pg_pool, never_sent_old, 60)
    fresh = await _new(pg_pool)
    sent_recently = await _new(pg_pool)
    await _age(pg_pool, sent_recently, 60)
    await store.mark_sent(pg_pool, sent_recently)
    sent_long_ago = await _new(pg_pool)
    await _age(pg_pool, sent_long_ago, 3600)
    await store.mark_sent(pg_pool, sent_long_ago)
    await _age(pg_pool, sent_long_ago, 1000, "sent_time")
    # Processing, lease expired, attempts left: resent, not failed.
    quiet = await _new(pg_pool)
    await store.claim_task(pg_pool, quiet, "w", 0.01)
    # Processing, lease expired, out of attempts: failed by the sweep.
    lost = await _new(pg_pool)
    for owner in ("w1", "w2", "w3"):
        assert await store.claim_task(pg_pool, lost, owner, 0.01) is not None
        await asyncio.sleep(0.05)
    # Processing with a live lease: left alone.
    alive = await _new(pg_pool)
    await store.claim_task(pg_pool, alive, "w", 60)
    # Finished and canceled tasks are never resent.
    done = await _new(pg_pool)
    await _age(pg_pool, done, 60)
    await store.claim_task(pg_pool, done, "w", 30)
    await store.finish_task(pg_pool, done, "w", "done")
    canceled = await _new(pg_pool)
    await _age(pg_pool, canceled, 60)
    await store.cancel_task(pg_pool, canceled)
    await asyncio.sleep(0.05)

    resend = {t.task_id: t for t in await store.tasks_to_resend(pg_pool, 600, 3)}
    mine = {never_sent_old, fresh, sent_recently, sent_long_ago, quiet, lost, alive, done, canceled}
    assert set(resend) & mine == {never_sent_old, sent_long_ago, quiet}
    assert resend[quiet].status == "processing"
    lost_task = await store.get_task(pg_pool, lost)
    assert lost_task.status == "failed" and lost_task.attempts == 3
    assert "worker lost 3 times" in lost_task.error
    assert lost_task.finish_time is not None
    assert await _status(pg_pool, quiet) == "processing"
    # The failed task is final: the lost worker cannot report into it.
    assert not await store.finish_task(pg_pool, lost, "w3", "done")


# ---- get / list ----


async def test_get_task_errors(pg_pool: asyncpg.Pool) -> None:
    with pytest.raises(InvalidArgument) as info:
        await store.get_task(pg_pool, "not-a-uuid")
    assert info.value.violations[0].field == "task_id"
    with pytest.raises(NotFound):
        await store.get_task(pg_pool, str(uuid.uuid4()))
    for call in (store.cancel_task, store.restart_task):
        with pytest.raises(NotFound):
            await call(pg_pool, str(uuid.uuid4()))
        with pytest.raises(InvalidArgument):
            await call(pg_pool, "1234")


async def _all_pages(pool: asyncpg.Pool, page_size: int, **filters: object) -> list[str]:
    seen: list[str] = []
    token = ""
    for _ in range(10_000):
        page, token = await store.list_tasks(
            pool,
            TOKENS,
            page_size=page_size,
            page_token=token,
            **filters,  # type: ignore[arg-type]
        )
        assert len(page) <= page_size
        if token:
            assert len(page) == page_size
        seen.extend(t.task_id for t in page)
        if not token:
            return seen
    raise AssertionError("paging did not end")


async def test_list_tasks_pages_newest_first_without_dups_or_gaps(pg_pool: asyncpg.Pool) -> None:
    # Many tasks in one transaction share create_time exactly: the task_id breaks the tie.
    async with pg_pool.acquire() as conn, conn.transaction():
        same_time = [
            (await store.create_task(conn, "deployment", {"i": i}))[0].task_id for i in range(23)
        ]
    later = [await _new(pg_pool, "deployment") for _ in range(6)]
    await store.claim_task(pg_pool, later[0], "w", 30)
    await store.cancel_task(pg_pool, later[1])

    expected = [
        str(r["task_id"])
        for r in await pg_pool.fetch(
            "SELECT task_id FROM tasks WHERE kind = 'deployment'"
            " ORDER BY create_time DESC, task_id DESC"
        )
    ]
    assert set(same_time + later) <= set(expected)
    for page_size in (1, 4, 7, 1000):
        assert await _all_pages(pg_pool, page_size, kind="deployment") == expected

    # Newest first: the later tasks come before the batch.
    got = await _all_pages(pg_pool, 5, kind="deployment")
    assert max(got.index(t) for t in later) < min(got.index(t) for t in same_time)

    # Status filter.
    pending = await _all_pages(pg_pool, 3, kind="deployment", statuses=["pending"])
    assert later[0] not in pending and later[1] not in pending
    assert set(same_time) | set(later[2:]) <= set(pending)
    both = await _all_pages(pg_pool, 3, kind="deployment", statuses=["processing", "canceled"])
    assert {later[0], later[1]} <= set(both)
    for task_id in both:
        assert (await store.get_task(pg_pool, task_id)).status in ("processing", "canceled")

    # Unfiltered listing sees tasks of every kind.
    everything = await _all_pages(pg_pool, 50)
    assert len(everything) == len(set(everything))
    assert set(expected) < set(everything)


async def test_list_tasks_token_with_another_filter_is_invalid(pg_pool: asyncpg.Pool) -> None:
    for _ in range(3):
        await _new(pg_pool, "improvement")
    _, token = await store.list_tasks(
        pg_pool, TOKENS, page_size=1, page_token="", kind="improvement"
    )
    assert token
    with pytest.raises(InvalidArgument) as info:
        await store.list_tasks(pg_pool, TOKENS, page_size=1, page_token=token, kind="reindex")
    assert info.value.violations[0].field == "page_token"
    with pytest.raises(InvalidArgument):
        await store.list_tasks(
            pg_pool, TOKENS, page_size=1, page_token=token, kind="improvement", statuses=["pending"]
        )
    with pytest.raises(InvalidArgument):
        await store.list_tasks(pg_pool, TOKENS, page_size=1, page_token="junk", kind="improvement")
    # The same filter, with statuses given in another order, is the same query.
    _, token = await store.list_tasks(
        pg_pool, TOKENS, page_size=1, page_token="", statuses=["pending", "done"]
    )
    page, _ = await store.list_tasks(
        pg_pool, TOKENS, page_size=1, page_token=token, statuses=["done", "pending"]
    )
    assert len(page) == 1


# ---- waiting for the tasks it started ----


async def _waiting(pool: asyncpg.Pool) -> str:
    task_id = await _new(pool, "reindex")
    assert await store.claim_task(pool, task_id, "w", 30) is not None
    assert await store.start_waiting(pool, task_id, "w", {"subtasks": 1}, "waiting for 1")
    return task_id


async def test_a_waiting_task_holds_no_lease_and_is_neither_claimed_nor_resent(
    pg_pool: asyncpg.Pool,
) -> None:
    task_id = await _waiting(pg_pool)
    task = await store.get_task(pg_pool, task_id)
    assert task.status == "waiting" and task.result == {"subtasks": 1}
    assert task.finish_time is None and not task.is_terminal
    # Its worker no longer holds it: it reports nothing more, and no one else claims it.
    assert not await store.report_progress(pg_pool, task_id, "w", 0.5, "", 30)
    assert not await store.finish_task(pg_pool, task_id, "w", "done")
    assert await store.claim_task(pg_pool, task_id, "other", 30) is None
    await pg_pool.execute(
        "UPDATE tasks SET create_time = now() - interval '1 day', sent_time = NULL"
        " WHERE task_id = $1::uuid",
        task_id,
    )
    resent = await store.tasks_to_resend(pg_pool, 0, max_attempts=3)
    assert task_id not in {t.task_id for t in resent}
    assert await _status(pg_pool, task_id) == "waiting"


async def test_only_a_waiting_task_is_moved_on_by_update_waiting(pg_pool: asyncpg.Pool) -> None:
    task_id = await _waiting(pg_pool)
    assert await store.update_waiting(pg_pool, task_id, progress=0.5, message="half")
    task = await store.get_task(pg_pool, task_id)
    assert (task.status, task.progress, task.progress_message) == ("waiting", 0.5, "half")
    assert await store.update_waiting(pg_pool, task_id, status="done", result={"copied": 3})
    task = await store.get_task(pg_pool, task_id)
    assert (task.status, task.progress, task.result) == ("done", 1.0, {"copied": 3})
    assert task.finish_time is not None
    # Ended, it is not moved on again; nor is a task a worker runs.
    assert not await store.update_waiting(pg_pool, task_id, status="failed", error="late")
    assert await _status(pg_pool, task_id) == "done"
    running = await _new(pg_pool)
    assert await store.claim_task(pg_pool, running, "w", 30) is not None
    assert not await store.update_waiting(pg_pool, running, status="done")
    assert await _status(pg_pool, running) == "processing"


async def test_a_waiting_task_can_be_canceled_and_restarted(pg_pool: asyncpg.Pool) -> None:
    task_id = await _waiting(pg_pool)
    canceled = await store.cancel_task(pg_pool, task_id)
    assert canceled.status == "canceled" and canceled.finish_time is not None
    assert not await store.update_waiting(pg_pool, task_id, status="done")
    assert (await store.restart_task(pg_pool, task_id)).status == "pending"


async def test_a_subtask_names_its_parent_and_the_key_still_means_one_request(
    pg_pool: asyncpg.Pool,
) -> None:
    parent_id = await _new(pg_pool, "reindex")
    async with pg_pool.acquire() as conn:
        child, created = await store.create_task(
            conn,
            "reindex",
            {"range_index": 0},
            idempotency_key=f"{parent_id}/0",
            parent_task_id=parent_id,
        )
        again, created_again = await store.create_task(
            conn,
            "reindex",
            {"range_index": 0},
            idempotency_key=f"{parent_id}/0",
            parent_task_id=parent_id,
        )
        assert created and not created_again and again.task_id == child.task_id
        with pytest.raises(AlreadyExists):  # the same key under another parent
            await store.create_task(
                conn,
                "reindex",
                {"range_index": 0},
                idempotency_key=f"{parent_id}/0",
                parent_task_id=await _new(pg_pool, "reindex"),
            )
        with pytest.raises(InvalidArgument) as info:
            await store.create_task(conn, "reindex", {}, parent_task_id="not-a-task")
    assert info.value.violations[0].field == "parent_task_id"
    assert child.parent_task_id == parent_id and "parent_task_id" not in child.params
    assert (await store.get_task(pg_pool, child.task_id)).parent_task_id == parent_id
    assert (await store.get_task(pg_pool, parent_id)).parent_task_id is None
