"""Embedding Studio client: the generated stubs (``embedding_studio.v1``) and typed clients."""

from importlib import metadata

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


def _installed_version() -> str:
    """The installed distribution's version; a source tree that is not installed has none."""
    try:
        return metadata.version("embedding-studio-client")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


__version__ = _installed_version()

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
