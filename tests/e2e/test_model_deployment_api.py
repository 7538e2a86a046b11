"""DeployModel, UndeployModel and ListModels through gRPC, on the stack `es up` starts (its own
Triton on free ports): a model version goes into Triton and out again by deployment tasks the
worker runs, and bad requests are refused naming the field."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import grpc
import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2
from embedding_studio.v1 import deployment_pb2 as D
from es_core.encoders.local import BASE_MODEL_ID, BASE_MODEL_SOURCE
from es_core.encoders.triton import models_ready, triton_model_names
from es_harness.throwaway import StackInfo
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

DONE = common_pb2.TASK_STATUS_DONE


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _insert_model(dsn: str, model_id: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO models (model_id, name, version, dimensions, metric, aggregation, source,"
            " parent_model_id) VALUES ($1, 'all-MiniLM-L6-v2', '2', 384, 'cosine', 'min', $2, $3)",
            model_id,
            BASE_MODEL_SOURCE,
            BASE_MODEL_ID,
        )
    finally:
        await conn.close()


def all_models(client: Client, page_size: int = 1000) -> list[D.Model]:
    models: list[D.Model] = []
    token = ""
    while True:
        reply = client.deployment.ListModels(
            D.ListModelsRequest(page_size=page_size, page_token=token), timeout=30
        )
        models += reply.models
        token = reply.next_page_token
        if not token:
            return models


def model(client: Client, model_id: str) -> D.Model:
    return next(m for m in all_models(client) if m.model_id == model_id)


def test_a_model_version_is_deployed_into_triton_and_undeployed_by_tasks(
    client: Client, stack: StackInfo
) -> None:
    assert stack.triton_url, "es up serves from its own Triton by default"
    model_id = f"api-copy-{uuid.uuid4().hex[:8]}"
    names = list(triton_model_names(model_id))
    run_async(_insert_model(stack.postgres_dsn, model_id))
    listed = model(client, model_id)
    assert not listed.deployed and listed.dimensions == 384
    assert listed.metric == common_pb2.METRIC_COSINE
    assert listed.parent_model_id == BASE_MODEL_ID and listed.HasField("create_time")
    assert model(client, BASE_MODEL_ID).deployed

    started = client.deployment.DeployModel(D.DeployModelRequest(model_id=model_id), timeout=30)
    assert started.task.kind == common_pb2.TASK_KIND_DEPLOYMENT
    repeat = client.deployment.DeployModel(D.DeployModelRequest(model_id=model_id), timeout=30)
    assert repeat.task.task_id == started.task.task_id
    final = client.wait_for_task(started.task.task_id, timeout_seconds=300)
    assert final.status == DONE, final.error
    assert list(final.result["triton_models"]) == names
    assert model(client, model_id).deployed
    assert all(models_ready(stack.triton_url, names).values())
    expect_error(
        lambda: client.deployment.DeployModel(D.DeployModelRequest(model_id=model_id)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "model_id",
    )

    stopping = client.deployment.UndeployModel(
        D.UndeployModelRequest(model_id=model_id), timeout=30
    )
    final = client.wait_for_task(stopping.task.task_id, timeout_seconds=300)
    assert final.status == DONE, final.error
    assert not model(client, model_id).deployed
    assert not any(models_ready(stack.triton_url, names).values())
    assert model(client, BASE_MODEL_ID).deployed


def test_deploy_rpcs_refuse_bad_input_naming_the_field(client: Client) -> None:
    cases = [
        ("DeployModel", D.DeployModelRequest(), grpc.StatusCode.INVALID_ARGUMENT, "model_id"),
        (
            "DeployModel",
            D.DeployModelRequest(model_id="x" * 129),
            grpc.StatusCode.INVALID_ARGUMENT,
            "model_id",
        ),
        (
            "DeployModel",
            D.DeployModelRequest(model_id="no-such-model"),
            grpc.StatusCode.NOT_FOUND,
            "model_id",
        ),
        (
            "DeployModel",
            D.DeployModelRequest(model_id=BASE_MODEL_ID),
            grpc.StatusCode.FAILED_PRECONDITION,
            "model_id",
        ),
        ("UndeployModel", D.UndeployModelRequest(), grpc.StatusCode.INVALID_ARGUMENT, "model_id"),
        (
            "UndeployModel",
            D.UndeployModelRequest(model_id="no-such-model"),
            grpc.StatusCode.NOT_FOUND,
            "model_id",
        ),
        (
            "UndeployModel",
            D.UndeployModelRequest(model_id=BASE_MODEL_ID),
            grpc.StatusCode.FAILED_PRECONDITION,
            "model_id",
        ),
        (
            "ListModels",
            D.ListModelsRequest(page_size=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_size",
        ),
        (
            "ListModels",
            D.ListModelsRequest(page_token="not-a-token"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_token",
        ),
    ]
    before = [(m.model_id, m.deployed) for m in all_models(client)]
    for rpc, request, code, field in cases:
        expect_error(
            lambda rpc=rpc, request=request: getattr(client.deployment, rpc)(request, timeout=30),
            code,
            field,
        )
    assert [(m.model_id, m.deployed) for m in all_models(client)] == before


def test_list_models_pages_newest_first_without_repeats(client: Client, stack: StackInfo) -> None:
    for _ in range(3):
        run_async(_insert_model(stack.postgres_dsn, f"page-{uuid.uuid4().hex[:8]}"))
    whole = all_models(client)
    paged = all_models(client, page_size=1)
    assert [m.model_id for m in paged] == [m.model_id for m in whole]
    assert len({m.model_id for m in paged}) == len(paged) >= 4
    times = [m.create_time.ToDatetime() for m in whole]
    assert times == sorted(times, reverse=True)
