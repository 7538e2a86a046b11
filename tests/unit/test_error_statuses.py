"""How the server's interceptor turns what a handler raised into a gRPC status."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest

from es_core.errors import InvalidArgument, NotFound
from es_server.interceptors import _abort, status_for


class Aborting(Exception):
    """What grpc.aio's abort does to the handler: it does not return."""


class RecordingContext:
    """Stands in for grpc.aio.ServicerContext: records how the call was aborted."""

    def __init__(self) -> None:
        self.status: grpc.Status | None = None
        self.code: grpc.StatusCode | None = None
        self.details = ""

    async def abort_with_status(self, status: grpc.Status) -> None:
        self.status = status
        raise Aborting

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborting


def _aborted_by(error: BaseException) -> RecordingContext:
    context = RecordingContext()
    with pytest.raises(Aborting):
        asyncio.run(_abort(context, error, "/embedding_studio.v1.SearchService/Search"))  # type: ignore[arg-type]
    return context


def test_a_table_dropped_under_a_request_is_aborted_to_be_retried() -> None:
    dropped = asyncpg.exceptions.UndefinedTableError('relation "items_x" does not exist')
    status = _aborted_by(dropped).status
    assert status is not None and status.code == grpc.StatusCode.ABORTED
    assert "was deleted while the request ran" in status.details
    assert "SearchService/Search" in status.details


def test_library_errors_keep_their_codes_and_fields() -> None:
    assert status_for(NotFound("no such item")).code == grpc.StatusCode.NOT_FOUND
    status = _aborted_by(InvalidArgument.field_error("limit", "must be at most 1000")).status
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT


def test_anything_else_is_internal_and_says_where_to_look() -> None:
    context = _aborted_by(RuntimeError("boom"))
    assert context.status is None
    assert context.code == grpc.StatusCode.INTERNAL
    assert "see server log" in context.details and "boom" not in context.details
