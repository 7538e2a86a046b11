"""Queued sessions are improved by the worker's own schedule, with no call to ask for it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import clickstream_pb2, common_pb2, search_pb2
from es_harness.throwaway import ThrowawayStack
from tests.e2e.conftest import NO_TRITON

pytestmark = pytest.mark.e2e


def _unit(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=384)
    return [float(x) for x in v / np.linalg.norm(v)]


async def _queue_and_wait(dsn: str, session_id: str, timeout: float) -> tuple[str, object]:
    conn = await asyncpg.connect(dsn)
    try:
        # Straight into the queue: no UseSessionsForImprovement call, so no task asked for it.
        await conn.execute("INSERT INTO improvement_queue (session_id) VALUES ($1)", session_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = await conn.fetchval(
                "SELECT state FROM improvement_queue WHERE session_id = $1", session_id
            )
            if state != "queued":
                params = json.loads(
                    await conn.fetchval(
                        "SELECT params FROM tasks WHERE kind = 'improvement'"
                        " ORDER BY create_time DESC LIMIT 1"
                    )
                )
                return str(state), params
            await asyncio.sleep(0.5)
        raise AssertionError(f"session {session_id} still queued after {timeout} s")
    finally:
        await conn.close()


def test_the_beat_improves_queued_sessions(tmp_path: Path) -> None:
    env = {"ES_IMPROVEMENT_SECONDS_INTERVAL": "2", **NO_TRITON}
    with (
        ThrowawayStack(tmp_path / "data", extra_env=env) as info,
        Client(info.grpc_address) as client,
    ):
        items = [
            {"object_id": f"beat-{i}", "payload": {"i": i}, "parts": [{"vector": _unit(i)}]}
            for i in range(5)
        ]
        task = client.upsert_items(items)
        assert client.wait_for_task(task.task_id, 120).status == common_pb2.TASK_STATUS_DONE
        query = search_pb2.SearchRequest(
            query_vector={"values": _unit(99)}, limit=5, user_id="beat-user", create_session=True
        )
        shown = client.search.Search(query)
        clicked = shown.results[2].object_id
        client.clickstream.PushEvents(
            clickstream_pb2.PushEventsRequest(
                events=[
                    {
                        "event_id": "beat-click",
                        "session_id": shown.session_id,
                        "object_id": clicked,
                        "event_type": "click",
                    }
                ]
            )
        )
        state, params = asyncio.run(_queue_and_wait(info.postgres_dsn, shown.session_id, 90))
        assert state == "done"
        assert params == {"trigger": "schedule"}
        query.create_session = False
        after = client.search.Search(query).results
        assert [r.user_id for r in after if r.object_id == clicked] == ["beat-user"]
