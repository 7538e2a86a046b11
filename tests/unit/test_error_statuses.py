"""How the server's interceptor turns what a handler raised into a gRPC status."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from es_core.errors import (
    MAX_REASON_CHARS,
    Aborted,
    AlreadyExists,
    EsError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    connection_reason,
    failure_reason,
)
from es_server.interceptors import _abort, status_for, unreachable


class Aborting(Exception):
    """What grpc.aio's abort does to the handler: it does not return."""


class RecordingContext:
    """Stands in for grpc.aio.ServicerContext: records how the call was aborted."""

    def __init__(self) -> None:
        self.status: grpc.Status | None = None
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

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


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            ConnectionRefusedError(111, "Connect call failed ('10.1.2.3', 5432)"),
            "Connection refused",
        ),
        (
            asyncpg.exceptions.ConnectionDoesNotExistError(
                "connection was closed in the middle of operation"
            ),
            "connection was closed in the middle of operation",
        ),
        (
            asyncpg.exceptions.AdminShutdownError(
                "terminating connection due to administrator command"
            ),
            "terminating connection",
        ),
        (
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            "starting up",
        ),
        (
            asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
            "too many clients",
        ),
        (
            ConnectionResetError(104, "Connection reset by peer ('10.1.2.3', 6379)"),
            "Connection reset by peer",
        ),
    ],
)
def test_an_unreachable_database_or_service_is_unavailable_without_its_address(
    error: Exception, reason: str
) -> None:
    status = _aborted_by(error).status
    assert status is not None and status.code == grpc.StatusCode.UNAVAILABLE
    assert reason in status.details and "10.1.2.3" not in status.details
    assert unreachable(error) is not None


def test_other_database_errors_are_not_unavailable() -> None:
    assert unreachable(asyncpg.exceptions.UniqueViolationError("duplicate key")) is None
    assert unreachable(asyncpg.exceptions.QueryCanceledError("canceling statement")) is None
    assert unreachable(FileNotFoundError(2, "No such file or directory")) is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (KeyError("items"), "KeyError: 'items'"),
        (ValueError("first line\n  File 'x.py', line 3\nsecond"), "ValueError: first line"),
        (RuntimeError(), "RuntimeError"),
        (InvalidArgument("items[0].text: too long\nmore"), "items[0].text: too long"),
        (ValueError("x" * 2000), "ValueError: " + "x" * (MAX_REASON_CHARS - 13) + "…"),
    ],
)
def test_a_task_failure_reason_is_one_line(error: Exception, reason: str) -> None:
    assert failure_reason(error) == reason
    assert "\n" not in failure_reason(error) and len(failure_reason(error)) <= MAX_REASON_CHARS


def test_connection_reasons_are_short() -> None:
    assert connection_reason(TimeoutError()) == "timed out"
    assert connection_reason(OSError("Multiple exceptions: [Errno 111] ('::1', 5432)")) == (
        "no address accepted a connection"
    )
