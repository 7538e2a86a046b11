"""How the server's interceptor turns what a handler raised into a gRPC status."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from es_core.errors import (
    Aborted,
    AlreadyExists,
    EsError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from es_server.interceptors import Unimplemented, _abort, status_for


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


def _violated_fields(status: grpc.Status) -> list[str]:
    """The BadRequest field paths in the status' details, as a client reads them."""
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    fields: list[str] = []
    for detail in status_pb2.Status.FromString(details).details:
        bad_request = error_details_pb2.BadRequest()
        assert detail.Unpack(bad_request)
        fields += [v.field for v in bad_request.field_violations]
    return fields


@pytest.mark.parametrize(
    ("error_type", "code"),
    [
        (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound, grpc.StatusCode.NOT_FOUND),
        (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
        (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
        (Unavailable, grpc.StatusCode.UNAVAILABLE),
        (Aborted, grpc.StatusCode.ABORTED),
        (Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
    ],
)
def test_each_library_error_has_its_status_naming_the_field(
    error_type: type[EsError], code: grpc.StatusCode
) -> None:
    """The unit tests of bad requests assert the library error and its field; this is how each
    reaches a caller: its code, its message, the field as a BadRequest violation."""
    status = status_for(error_type.field_error("items[3].object_id", "must not be empty"))
    assert status.code == code
    assert status.details == "items[3].object_id: must not be empty"
    assert _violated_fields(status) == ["items[3].object_id"]
    bare = status_for(error_type("task 1 does not exist"))
    assert (bare.code, bare.details) == (code, "task 1 does not exist")
    assert _violated_fields(bare) == []


def test_anything_else_is_internal_and_says_where_to_look() -> None:
    context = _aborted_by(RuntimeError("boom"))
    assert context.status is None
    assert context.code == grpc.StatusCode.INTERNAL
    assert "see server log" in context.details and "boom" not in context.details
