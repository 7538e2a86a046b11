"""deploy_as_blue waiting for the interleaving verdict (ES_PROMOTION_WAIT_FOR_INTERLEAVING) on a
real PostgreSQL: interleaved sessions and clicks stored as a search stores them move the chain
to the switch, or end it with blue kept and why."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from embedding_studio.v1 import fine_tune_pb2
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.clickstream.store import push_events, register_session
from es_core.interleaving.store import credits_of, record_interleaving
from es_core.interleaving.team_draft import seed_of, team_draft
from es_core.tasks.model import Task
from es_server.convert import fine_tuning_task_to_proto
from tests.integration.blue_green import World, run_reindex
from tests.integration.test_promotion import _advance, _chain, _promotion, world

pytestmark = pytest.mark.integration
__all__ = ["world"]  # the fixture, shared with test_promotion

BLUE_RANKING = ["b1", "b2", "b3", "b4"]
GREEN_RANKING = ["g1", "g2", "g3", "g4"]


async def _waiting(world: World, **settings: object) -> tuple[str, Task]:
    """A chain whose reindex is done, waiting for the verdict of its collection."""
    world.settings = world.settings.model_copy(
        update={"promotion_wait_for_interleaving": True, **settings}
    )
    task_id, _ = await _chain(world, deployed=True)
    started, _ = await _advance(world, task_id)
    assert (await run_reindex(world, started[0].task_id)).status == "done"
    sent, task = await _advance(world, task_id)
    assert sent == [] and task.status == "waiting"
    return task_id, task


async def _interleaved_session(world: World, green_id: str, click: str | None) -> str:
    """A page drafted from two rankings, stored with its credits, and a click on the best
    item of the ``click`` team (None: no click)."""
    session_id = uuid.uuid4().hex
    picks = team_draft(BLUE_RANKING, GREEN_RANKING, 4, seed_of(session_id))
    session = Session(
        session_id=session_id,
        results=[ShownResult(p.object_id, rank) for rank, p in enumerate(picks)],
        collection_id=world.blue.collection_id,
    )
    async with world.pool.acquire() as conn, conn.transaction():
        await register_session(conn, session, datetime.now(UTC), None)
        await record_interleaving(
            conn,
            session_id,
            blue_collection_id=world.blue.collection_id,
            green_collection_id=green_id,
            picks=picks,
        )
    if click is not None:
        clicked = next(p.object_id for p in picks if p.team == click)
        async with world.pool.acquire() as conn:
            await push_events(
                conn, [Event(f"{session_id}-0", session_id, clicked, "click")], datetime.now(UTC)
            )
    return session_id


async def test_the_chain_waits_then_switches_when_green_is_better(world: World) -> None:
    task_id, task = await _waiting(world)
    promotion = _promotion(task)
    green_id = promotion["collection_id"]
    assert promotion["step"] == "interleaving" and "no difference" in promotion["interleaving"]
    assert "waiting for the interleaving verdict" in task.progress_message
    proto = fine_tuning_task_to_proto(task).promotion
    assert proto.step == fine_tune_pb2.PROMOTION_STEP_INTERLEAVING
    assert proto.interleaving == promotion["interleaving"]
    assert await world.alias() == (world.blue.collection_id, None)

    first = await _interleaved_session(world, green_id, "green")
    credits = await credits_of(world.pool, first)
    assert len(credits) == 4 and set(credits.values()) == {"blue", "green"}
    for object_id, team in credits.items():
        assert object_id in (BLUE_RANKING if team == "blue" else GREEN_RANKING)
    for _ in range(4):  # 5 green wins: not a planned look (the first is at 10)
        await _interleaved_session(world, green_id, "green")
    _, task = await _advance(world, task_id)
    assert task.status == "waiting" and _promotion(task)["step"] == "interleaving"

    for _ in range(5):
        await _interleaved_session(world, green_id, "green")
    await _interleaved_session(world, green_id, None)  # no click: neither side's
    _, task = await _advance(world, task_id)
    promotion = _promotion(task)
    assert task.status == "done", task.error
    assert promotion["step"] == "switched"
    assert "green better: green won 10, blue won 0, 0 ties in 11" in promotion["interleaving"]
    assert await world.alias() == (green_id, world.blue.collection_id)


async def test_blue_better_keeps_blue_and_says_why(world: World) -> None:
    task_id, task = await _waiting(world)
    green_id = _promotion(task)["collection_id"]
    for _ in range(19):  # the second planned look, at 20 decided sessions, rejects a tie
        await _interleaved_session(world, green_id, "blue")
    await _interleaved_session(world, green_id, "green")
    _, task = await _advance(world, task_id)
    promotion = _promotion(task)
    assert task.status == "done" and task.error in ("", None)
    assert promotion["step"] == "skipped"
    assert promotion["reason"].startswith("the interleaving verdict: blue better")
    assert fine_tuning_task_to_proto(task).promotion.step == fine_tune_pb2.PROMOTION_STEP_SKIPPED
    assert await world.alias() == (world.blue.collection_id, None)
    assert (await _advance(world, task_id))[0] == []  # ended: nothing moves


async def test_no_verdict_within_the_session_limit_keeps_blue(world: World) -> None:
    task_id, task = await _waiting(world, interleaving_max_sessions=4)
    green_id = _promotion(task)["collection_id"]
    for team in ("green", "blue", "green", "blue"):
        await _interleaved_session(world, green_id, team)
    _, task = await _advance(world, task_id)
    promotion = _promotion(task)
    assert task.status == "done" and promotion["step"] == "skipped"
    assert "ES_INTERLEAVING_MAX_SESSIONS" in promotion["reason"]
    assert await world.alias() == (world.blue.collection_id, None)


async def test_without_the_setting_the_chain_does_not_wait(world: World) -> None:
    task_id, _ = await _chain(world, deployed=True)
    started, _ = await _advance(world, task_id)
    assert (await run_reindex(world, started[0].task_id)).status == "done"
    _, task = await _advance(world, task_id)
    assert task.status == "done" and _promotion(task)["step"] == "switched"
    assert "interleaving" not in _promotion(task)
