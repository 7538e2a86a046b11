"""SetFilterableFields through gRPC on an in-process server (es_server.app.build_server) and a
real PostgreSQL: the client's method, ListCollections reporting the declaration, and refusals
that name the field."""

from __future__ import annotations

import asyncpg
import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from embedding_studio.client import AsyncClient
from embedding_studio.v1 import deployment_pb2 as dp
from embedding_studio.v1 import deployment_pb2_grpc
from es_cli.embedded import EmbeddedPostgres
from es_core.config import Settings
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
    async with serving(pg_server, settings) as (channel, _):
        client = AsyncClient(channel)
        declared = await client.set_filterable_fields(
            {"price": "number", "brand.name": "keyword"}, cid
        )
        expected = [_field("price", NUMBER), _field("brand.name", KEYWORD)]
        assert declared.collection_id == cid and declared.item_count == 5
        assert list(declared.filterable_fields) == expected
        listed = {c.collection_id: c for c in await client.list_collections()}
        assert list(listed[cid].filterable_fields) == expected

        stub = deployment_pb2_grpc.DeploymentServiceStub(channel)
        bad = [
            ([_field("price", UNSET)], "fields[0].type"),
            ([_field("price", NUMBER), _field("", KEYWORD)], "fields[1].field"),
            ([_field("a.1", NUMBER)], "fields[0].field"),
            ([_field("a", NUMBER), _field("a", KEYWORD)], "fields[1].field"),
            ([_field(f"f{i}", NUMBER) for i in range(17)], "fields"),
        ]
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
        # Refusals changed nothing; an empty set drops the declaration.
        listed = {c.collection_id: c for c in await client.list_collections()}
        assert list(listed[cid].filterable_fields) == expected
        cleared = await client.set_filterable_fields({}, cid)
        assert list(cleared.filterable_fields) == []
