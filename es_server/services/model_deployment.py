"""DeployModel, UndeployModel and ListModels, which DeploymentService delegates to here.

The deploy RPCs return a ``deployment`` task at once (AIP-151); the model serves once it is
TASK_STATUS_DONE. The task is sent only after its row commits (a repeat returns the same task
and sends nothing)."""

from __future__ import annotations

from embedding_studio.v1 import deployment_pb2
from es_core.pagination import check_page_size
from es_core.serving.deploy import start_deploy, start_undeploy
from es_core.serving.models import list_models as list_catalogue_models
from es_server.convert import model_to_proto, task_to_proto
from es_server.state import ServerState


async def deploy_model(
    state: ServerState, request: deployment_pb2.DeployModelRequest
) -> deployment_pb2.DeployModelResponse:
    async with state.pool.acquire() as conn:
        task, created = await start_deploy(conn, state.settings, request.model_id)
    if created:
        await state.dispatch(task)
    return deployment_pb2.DeployModelResponse(task=task_to_proto(task))


async def undeploy_model(
    state: ServerState, request: deployment_pb2.UndeployModelRequest
) -> deployment_pb2.UndeployModelResponse:
    async with state.pool.acquire() as conn:
        task, created = await start_undeploy(conn, state.settings, request.model_id, required=True)
    assert task is not None  # required=True raises instead
    if created:
        await state.dispatch(task)
    return deployment_pb2.UndeployModelResponse(task=task_to_proto(task))


async def list_models(
    state: ServerState, request: deployment_pb2.ListModelsRequest
) -> deployment_pb2.ListModelsResponse:
    page_size = check_page_size(request.page_size, default=50, maximum=1000)
    models, next_token = await list_catalogue_models(
        state.pool, page_size=page_size, page_token=request.page_token
    )
    return deployment_pb2.ListModelsResponse(
        models=[model_to_proto(m) for m in models], next_page_token=next_token
    )
