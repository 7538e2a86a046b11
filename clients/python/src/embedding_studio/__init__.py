"""Embedding Studio client: generated stubs in ``embedding_studio.v1`` and typed clients over them."""

from embedding_studio.client import (
    TERMINAL_TASK_STATUSES,
    AsyncClient,
    Client,
    ItemInput,
    TaskTimeoutError,
    build_search_request,
    build_upsert_item,
    from_struct,
    to_struct,
    to_value,
)

__all__ = [
    "TERMINAL_TASK_STATUSES",
    "AsyncClient",
    "Client",
    "ItemInput",
    "TaskTimeoutError",
    "build_search_request",
    "build_upsert_item",
    "from_struct",
    "to_struct",
    "to_value",
]
