"""FineTuneService: start training on a batch of sessions; read the fine-tuning tasks."""

from __future__ import annotations

import grpc

from embedding_studio.v1 import fine_tune_pb2, fine_tune_pb2_grpc
from es_core.errors import NotFound
from es_core.fine_tuning.start import start_fine_tuning
from es_core.pagination import check_page_size
from es_core.tasks import store
from es_core.tasks.model import Task
from es_server.convert import fine_tuning_task_to_proto, struct_to_dict
from es_server.state import ServerState


class FineTuneService(fine_tune_pb2_grpc.FineTuneServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def StartFineTuning(
        self, request: fine_tune_pb2.StartFineTuningRequest, context: grpc.aio.ServicerContext
    ) -> fine_tune_pb2.StartFineTuningResponse:
        """The batch is released and the task created in one transaction; the task is sent
        only after it commits (a retry with the same key sends nothing)."""
        hyperparameters = struct_to_dict(request.hyperparameters, "hyperparameters")
        async with self.state.pool.acquire() as conn, conn.transaction():
            task, created = await start_fine_tuning(
                conn,
                self.state.plugin,
                idempotency_key=request.idempotency_key,
                deploy_as_blue=request.deploy_as_blue,
                batch_id=request.batch_id,
                hyperparameters=hyperparameters,
            )
        if created:
            await self.state.dispatch(task)
        return fine_tune_pb2.StartFineTuningResponse(task=fine_tuning_task_to_proto(task))

    async def GetFineTuningTask(
        self, request: fine_tune_pb2.GetFineTuningTaskRequest, context: grpc.aio.ServicerContext
    ) -> fine_tune_pb2.GetFineTuningTaskResponse:
        task = await self._fine_tuning_task(request.task_id)
        return fine_tune_pb2.GetFineTuningTaskResponse(task=fine_tuning_task_to_proto(task))

    async def ListFineTuningTasks(
        self, request: fine_tune_pb2.ListFineTuningTasksRequest, context: grpc.aio.ServicerContext
    ) -> fine_tune_pb2.ListFineTuningTasksResponse:
        page_size = check_page_size(request.page_size, default=50, maximum=1000)
        tasks, next_token = await store.list_tasks(
            self.state.pool,
            page_size=page_size,
            page_token=request.page_token,
            kind="fine_tuning",
        )
        return fine_tune_pb2.ListFineTuningTasksResponse(
            tasks=[fine_tuning_task_to_proto(t) for t in tasks], next_page_token=next_token
        )

    async def _fine_tuning_task(self, task_id: str) -> Task:
        """The task, or NOT_FOUND naming task_id when it is unknown or of another kind (the
        same answer for both, so this service never reveals other kinds of task)."""
        try:
            task = await store.get_task(self.state.pool, task_id)
        except NotFound:
            task = None
        if task is None or task.kind != "fine_tuning":
            raise NotFound.field_error("task_id", f"fine-tuning task {task_id} does not exist")
        return task
