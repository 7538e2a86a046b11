"""FineTuneService: start training on a batch of sessions; read the fine-tuning tasks."""

from __future__ import annotations

import grpc

from embedding_studio.v1 import fine_tune_pb2, fine_tune_pb2_grpc
from es_core.fine_tuning.start import StartFineTuningInput, start_fine_tuning
from es_core.pagination import PageRequest
from es_core.tasks.use_case import ListTasksInput, get_task_of_kind, list_tasks
from es_server.convert import fine_tuning_task_to_proto, struct_to_dict
from es_server.state import ServerState

# Unknown enum values become "" and are refused by the use case, naming the field.
_TARGETS = {
    fine_tune_pb2.FINE_TUNING_TARGET_UNSPECIFIED: "items",
    fine_tune_pb2.FINE_TUNING_TARGET_ITEMS: "items",
    fine_tune_pb2.FINE_TUNING_TARGET_CATEGORIES: "categories",
}


class FineTuneService(fine_tune_pb2_grpc.FineTuneServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def StartFineTuning(
        self, request: fine_tune_pb2.StartFineTuningRequest, context: grpc.aio.ServicerContext
    ) -> fine_tune_pb2.StartFineTuningResponse:
        task = await start_fine_tuning(
            self.state.context,
            self.state.plugin,
            StartFineTuningInput(
                idempotency_key=request.idempotency_key,
                deploy_as_blue=request.deploy_as_blue,
                batch_id=request.batch_id,
                hyperparameters=struct_to_dict(request.hyperparameters, "hyperparameters"),
                target=_TARGETS.get(request.target, ""),
            ),
        )
        return fine_tune_pb2.StartFineTuningResponse(task=fine_tuning_task_to_proto(task))

    async def GetFineTuningTask(
        self, request: fine_tune_pb2.GetFineTuningTaskRequest, context: grpc.aio.ServicerContext
    ) -> fine_tune_pb2.GetFineTuningTaskResponse:
        task = await get_task_of_kind(self.state.context, request.task_id, "fine_tuning")
        return fine_tune_pb2.GetFineTuningTaskResponse(task=fine_tuning_task_to_proto(task))

    async def ListFineTuningTasks(
        self, request: fine_tune_pb2.ListFineTuningTasksRequest, context: grpc.aio.ServicerContext
    ) -> fine_tune_pb2.ListFineTuningTasksResponse:
        page = await list_tasks(
            self.state.context,
            ListTasksInput(PageRequest(request.page_size, request.page_token), kind="fine_tuning"),
        )
        return fine_tune_pb2.ListFineTuningTasksResponse(
            tasks=[fine_tuning_task_to_proto(t) for t in page.items],
            next_page_token=page.next_page_token,
        )
