"""TaskService: the state of long work, streamed while it runs; cancel and restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from embedding_studio.v1 import task_pb2, task_pb2_grpc
from es_core.pagination import check_page_size
from es_core.serving.promotion import cancel_with_chain
from es_core.tasks import store
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
        page_size = check_page_size(request.page_size, default=50, maximum=1000)
        tasks, next_token = await store.list_tasks(
            self.state.pool,
            page_size=page_size,
            page_token=request.page_token,
            kind=task_kind_from_proto(request.kind),
            statuses=task_statuses_from_proto(request.statuses),
        )
        return task_pb2.ListTasksResponse(
            tasks=[task_to_proto(t) for t in tasks], next_page_token=next_token
        )

    async def WatchTask(
        self, request: task_pb2.WatchTaskRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[task_pb2.WatchTaskResponse]:
        """The current state, then every change, until a terminal status has been sent."""
        last = None
        while True:
            task = await store.get_task(self.state.pool, request.task_id)
            seen = (task.status, task.progress, task.progress_message, task.attempts)
            if seen != last:
                yield task_pb2.WatchTaskResponse(task=task_to_proto(task))
                last = seen
            if task.is_terminal:
                return
            await asyncio.sleep(self.state.settings.task_watch_poll_seconds)

    async def CancelTask(
        self, request: task_pb2.CancelTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.CancelTaskResponse:
        # A fine-tuning task's deploy_as_blue chain stops with it.
        task = await cancel_with_chain(self.state.pool, request.task_id)
        return task_pb2.CancelTaskResponse(task=task_to_proto(task))

    async def RestartTask(
        self, request: task_pb2.RestartTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.RestartTaskResponse:
        task = await store.restart_task(self.state.pool, request.task_id)
        await self.state.dispatch(task)
        return task_pb2.RestartTaskResponse(task=task_to_proto(task))
