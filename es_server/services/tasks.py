"""TaskService: the state of long work, streamed while it runs; cancel and restart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from embedding_studio.v1 import task_pb2, task_pb2_grpc
from es_core.pagination import PageRequest
from es_core.serving.deploy_as_blue import cancel_with_chain
from es_core.tasks import store
from es_core.tasks.use_case import ListTasksInput, list_tasks, restart_task, watch_task
from es_server.convert import task_kind_from_proto, task_statuses_from_proto, task_to_proto
from es_server.state import ServerState


class TaskService(task_pb2_grpc.TaskServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def GetTask(
        self, request: task_pb2.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.GetTaskResponse:
        task = await store.get_task(self.state.pool, request.task_id)
        return task_pb2.GetTaskResponse(task=task_to_proto(task))

    async def ListTasks(
        self, request: task_pb2.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.ListTasksResponse:
        page = await list_tasks(
            self.state.context,
            ListTasksInput(
                PageRequest(request.page_size, request.page_token),
                kind=task_kind_from_proto(request.kind),
                statuses=task_statuses_from_proto(request.statuses),
            ),
        )
        return task_pb2.ListTasksResponse(
            tasks=[task_to_proto(t) for t in page.items], next_page_token=page.next_page_token
        )

    async def WatchTask(
        self, request: task_pb2.WatchTaskRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[task_pb2.WatchTaskResponse]:
        async for task in watch_task(self.state.context, request.task_id):
            yield task_pb2.WatchTaskResponse(task=task_to_proto(task))

    async def CancelTask(
        self, request: task_pb2.CancelTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.CancelTaskResponse:
        # A fine-tuning task's deploy_as_blue chain stops with it.
        task = await cancel_with_chain(self.state.pool, request.task_id)
        return task_pb2.CancelTaskResponse(task=task_to_proto(task))

    async def RestartTask(
        self, request: task_pb2.RestartTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.RestartTaskResponse:
        task = await restart_task(self.state.context, request.task_id)
        return task_pb2.RestartTaskResponse(task=task_to_proto(task))
