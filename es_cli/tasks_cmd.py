"""``es tasks list|watch|cancel``: the long-running tasks, through TaskService."""

from __future__ import annotations

import argparse
from typing import Any

import grpc

from embedding_studio.client import TERMINAL_TASK_STATUSES
from embedding_studio.v1 import common_pb2, task_pb2
from es_cli.api_options import add_api_arguments, api_client, call_failed, enum_label
from es_core.config import Settings

KINDS = [enum_label(n, "TASK_KIND_") for n in common_pb2.TaskKind.keys()[1:]]
STATUSES = [enum_label(n, "TASK_STATUS_") for n in common_pb2.TaskStatus.keys()[1:]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the newest tasks first")
    listing.add_argument("--kind", choices=KINDS, help="only tasks of this kind")
    listing.add_argument(
        "--status", choices=STATUSES, action="append", help="only these statuses (repeatable)"
    )
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    watch = actions.add_parser("watch", help="a progress bar until the task ends")
    watch.add_argument("task_id")
    cancel = actions.add_parser("cancel", help="stop a task (its work so far is kept or undone)")
    cancel.add_argument("task_id")
    for action in (listing, watch, cancel):
        add_api_arguments(action)


def run_tasks(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list" and args.limit < 1:
        print("es tasks list: --limit: at least 1")
        return 2
    with api_client(settings, args) as client:
        try:
            if args.action == "list":
                tasks = _list(client.tasks, args)
                print(format_tasks(tasks))
                return 0
            if args.action == "cancel":
                reply = client.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=args.task_id))
                print(f"{reply.task.task_id}: {_status(reply.task)}")
                return 0
            return _watch(client.tasks, args.task_id)
        except grpc.RpcError as error:
            return call_failed(f"tasks {args.action}", error)


def _list(stub: object, args: argparse.Namespace) -> list[common_pb2.Task]:
    statuses = [f"TASK_STATUS_{s.upper()}" for s in args.status or []]
    request = task_pb2.ListTasksRequest(
        page_size=min(args.limit, 1000),
        kind=f"TASK_KIND_{(args.kind or 'unspecified').upper()}",
        statuses=statuses,
    )
    tasks: list[common_pb2.Task] = []
    while len(tasks) < args.limit:
        reply = stub.ListTasks(request)  # type: ignore[attr-defined]
        tasks.extend(reply.tasks)
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    return tasks[: args.limit]


def format_tasks(tasks: list[common_pb2.Task]) -> str:
    lines = [f"{'TASK':<36}  {'KIND':<17}  {'STATUS':<10}  {'PROGRESS':>8}  MESSAGE"]
    for task in tasks:
        message = task.error or task.progress_message
        lines.append(
            f"{task.task_id:<36}  {_kind(task):<17}  {_status(task):<10}  "
            f"{task.progress:>8.0%}  {message}"
        )
    return "\n".join(lines)


def _watch(stub: object, task_id: str) -> int:
    """Follow the task until it ends (resuming a watch the server ends at its cap); exit 0
    when it is done, 1 when it failed or was canceled."""
    from tqdm import tqdm

    with tqdm(total=100, unit="%", bar_format="{desc} {bar} {n:.0f}%{postfix}") as bar:
        task = _follow(stub, task_id, bar)
    ending = f": {task.error}" if task.error else ""
    print(f"{task_id}: {_status(task)}{ending}")
    return 0 if task.status == common_pb2.TASK_STATUS_DONE else 1


def _follow(stub: object, task_id: str, bar: Any) -> common_pb2.Task:
    """The task's final state, drawing each state the watch sends on ``bar``."""
    request = task_pb2.WatchTaskRequest(task_id=task_id)
    while True:
        try:
            for reply in stub.WatchTask(request):  # type: ignore[attr-defined]
                task: common_pb2.Task = reply.task
                bar.set_description_str(f"{task_id[:8]} {_kind(task)} {_status(task)}")
                bar.set_postfix_str(task.error or task.progress_message)
                bar.n = round(task.progress * 100, 1)
                bar.refresh()
                if task.status in TERMINAL_TASK_STATUSES:
                    return task
        except grpc.RpcError as error:
            if not (isinstance(error, grpc.Call) and error.code() == _CAPPED):
                raise


# What a watch the server ends at its cap (ES_WATCH_TASK_MAX_SECONDS) answers: watch again.
_CAPPED = grpc.StatusCode.DEADLINE_EXCEEDED


def _kind(task: common_pb2.Task) -> str:
    return enum_label(common_pb2.TaskKind.Name(task.kind), "TASK_KIND_")


def _status(task: common_pb2.Task) -> str:
    return enum_label(common_pb2.TaskStatus.Name(task.status), "TASK_STATUS_")
