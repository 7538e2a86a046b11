"""Reading the gRPC error statuses of the API: code, message and the BadRequest field paths."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def violated_fields(error: grpc.RpcError) -> list[str]:
    """The ``google.rpc.BadRequest`` field paths in the error's status details (may be empty)."""
    assert isinstance(error, grpc.Call)
    status = rpc_status.from_call(error)
    fields: list[str] = []
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            fields += [v.field for v in bad_request.field_violations]
    return fields


def expect_error(
    call: Callable[[], object], code: grpc.StatusCode, field: str | None = None
) -> grpc.RpcError:
    """Run ``call`` (a response stream is read to its end); it must fail with ``code`` and, when
    ``field`` is given, exactly one BadRequest violation naming ``field``."""
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if hasattr(result, "__next__"):
            list(result)  # type: ignore[call-overload]
    error = info.value
    assert isinstance(error, grpc.Call)
    assert error.code() == code, f"{error.code()}: {error.details()}"
    if field is not None:
        assert violated_fields(error) == [field], error.details()
    return error
