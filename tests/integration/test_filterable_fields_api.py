"""SetFilterableFields through gRPC on an in-process server (es_server.app.build_server) and a
real PostgreSQL: the client's method answering with a task (run here as a bulk worker runs it),
ListCollections reporting the declaration once it is done, refusals that name the field and
record no task, and a second declaration refused while one has not ended."""

from __future__ import annotations

import asyncpg
import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from embedding_studio.client import AsyncClient
from embedding_studio.v1 import common_pb2, deployment_pb2_grpc
from embedding_studio.v1 import deployment_pb2 as dp
from es_cli.embedded import EmbeddedPostgres
from es_core.config import Settings
from es_core.storage.catalog import items_table
from tests.integration.filterable_tasks import run_task
from tests.integration.helpers import load_items, new_collection
from tests.integration.test_budgets import refusal, serving

pytestmark = pytest.mark.integration


def _violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad_request)
    return [v.field for v in bad_request.field_violations]


def _field(name: str, kind: dp.FieldType) -> dp.FilterableField:
    return dp.FilterableField(field=name, type=kind)


NUMBER, KEYWORD, UNSET = dp.FIELD_TYPE_NUMBER, dp.FIELD_TYPE_KEYWORD, dp.FIELD_TYPE_UNSPECIFIED


async def test_declare_list_and_refuse_through_grpc(
    pg_server: EmbeddedPostgres, settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    collection = await new_collection(pg_pool)
    await load_items(
        pg_pool,
        collection,
        [(f"i{i}", np.ones((1, 8)), {"price": i, "brand": {"name": f"b{i}"}}) for i in range(5)],
    )
    cid = collection.collection_id
    async with serving(pg_server, settings) as (channel, state):
        client = AsyncClient(channel)
        response = await client.set_filterable_fields(
            {"price": "number", "brand.name": "keyword"}, cid
        )
        expected = [_field("price", NUMBER), _field("brand.name", KEYWORD)]
        # Answered at once: the task pending (sent to the workers), the collection as it is.
        task = response.task
        assert task.kind == common_pb2.TASK_KIND_FILTERABLE_FIELDS
        assert task.status == common_pb2.TASK_STATUS_PENDING
        assert state.context.sender.sent[-1] == task.task_id  # type: ignore[attr-defined]
        assert response.collection.collection_id == cid and response.collection.item_count == 5
        assert list(response.collection.filterable_fields) == []
        assert (await run_task(pg_pool, task.task_id)).status == "done"
        done = await client.wait_for_task(task.task_id, timeout_seconds=60)
        assert done.status == common_pb2.TASK_STATUS_DONE and done.progress == 1.0
        assert done.result["indexes_built"] == 2 and done.result["collection_id"] == cid
        listed = {c.collection_id: c for c in await client.list_collections()}
        assert list(listed[cid].filterable_fields) == expected
        assert (
            await pg_pool.fetchval(
                "SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
                " WHERE x.indrelid = $1::regclass AND x.indisvalid AND c.relname LIKE '%\\_pf\\_%'",
                items_table(collection),
            )
            == 2
        )

        stub = deployment_pb2_grpc.DeploymentServiceStub(channel)
        bad = [
            ([_field("price", UNSET)], "fields[0].type"),
            ([_field("price", NUMBER), _field("", KEYWORD)], "fields[1].field"),
            ([_field("a.1", NUMBER)], "fields[0].field"),
            ([_field("a", NUMBER), _field("a", KEYWORD)], "fields[1].field"),
            ([_field(f"f{i}", NUMBER) for i in range(17)], "fields"),
        ]
        tasks_before = await _declaration_tasks(pg_pool)
        for fields, named in bad:
            error = await refusal(
                stub.SetFilterableFields(
                    dp.SetFilterableFieldsRequest(collection_id=cid, fields=fields)
                )
            )
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, named
            assert _violations(error) == [named]
        error = await refusal(
            stub.SetFilterableFields(
                dp.SetFilterableFieldsRequest(collection_id="no-such", fields=expected)
            )
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert _violations(error) == ["collection_id"]
        # Refusals recorded no task and changed nothing.
        assert await _declaration_tasks(pg_pool) == tasks_before
        listed = {c.collection_id: c for c in await client.list_collections()}
        assert list(listed[cid].filterable_fields) == expected

        # A second declaration while the first has not ended: ABORTED, naming its task.
        cleared = await client.set_filterable_fields({}, cid, idempotency_key="clear")
        error = await refusal(
            stub.SetFilterableFields(dp.SetFilterableFieldsRequest(collection_id=cid))
        )
        assert error.code() == grpc.StatusCode.ABORTED
        assert cleared.task.task_id in (error.details() or "")
        # A retry with the same key: the same task; an empty set drops the declaration.
        retried = await client.set_filterable_fields({}, cid, idempotency_key="clear")
        assert retried.task.task_id == cleared.task.task_id
        assert (await run_task(pg_pool, cleared.task.task_id)).status == "done"
        done = await client.wait_for_task(cleared.task.task_id, timeout_seconds=60)
        assert done.result["indexes_dropped"] == 2
        listed = {c.collection_id: c for c in await client.list_collections()}
        assert list(listed[cid].filterable_fields) == []


async def _declaration_tasks(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM tasks WHERE kind = 'filterable_fields'"))
