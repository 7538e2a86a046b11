"""What every request passes before a servicer sees it: it decodes, every enum value in it is
one the contract knows, and no string in it holds a NUL character.

One walk over the decoded message at the server's edge, so no RPC can forget a field: an unknown
enum value would otherwise be read as a default (an unknown ``MatchOperator`` as OR), and a NUL
would reach PostgreSQL, which cannot store it in text or jsonb. Each refusal names the field by
its path in the request (``filter.bool.must[0].match.operator``), as the use cases' checks do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from es_core.errors import InvalidArgument

NUL = "must not contain NUL characters"
# Only these can hold a NUL or an unknown enum value (numbers, bools and bytes are skipped).
_CHECKED_TYPES = {
    FieldDescriptor.TYPE_STRING,
    FieldDescriptor.TYPE_ENUM,
    FieldDescriptor.TYPE_MESSAGE,
}
# Free-form JSON (payloads, metadata, filter values): checked as a whole, named by its field.
_JSON_TYPES = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}


@dataclass(frozen=True)
class RefusedRequest:
    """Stands in for a request that failed to decode or check: grpc.aio answers an exception
    raised while decoding with UNKNOWN and the Python exception's class, so the decoder returns
    this instead and the interceptor refuses the call with ``error``."""

    error: InvalidArgument


def checking_decoder(decode: Callable[[bytes], Any], rpc: str) -> Callable[[bytes], Any]:
    """``decode`` for the requests of ``rpc`` (a name for the message), returning a
    ``RefusedRequest`` for bytes that are not a valid request or a request that fails
    ``check_request``."""

    def checked(data: bytes) -> Any:
        try:
            message = decode(data)
        except DecodeError:
            return RefusedRequest(
                InvalidArgument(
                    f"the {rpc} request cannot be decoded: it is truncated, malformed or nested"
                    " more than 100 messages deep"
                )
            )
        try:
            check_request(message)
        except InvalidArgument as error:
            return RefusedRequest(error)
        return message

    return checked


def check_request(message: Message) -> None:
    """InvalidArgument naming the first field with an unknown enum value or a NUL character."""
    _check_message(message, "")


def _check_message(message: Message, path: str) -> None:
    for field, value in message.ListFields():
        if field.type not in _CHECKED_TYPES:
            continue
        where = f"{path}.{field.name}" if path else field.name
        entry = field.message_type
        if not field.is_repeated:
            _check_value(field, value, where)
        elif entry is not None and entry.GetOptions().map_entry:
            _check_map(entry.fields_by_name["value"], value, where)
        else:
            for i, item in enumerate(value):
                _check_value(field, item, f"{where}[{i}]")


def _check_value(field: FieldDescriptor, value: Any, where: str) -> None:
    if field.type == FieldDescriptor.TYPE_STRING:
        if "\x00" in value:
            raise InvalidArgument.field_error(where, NUL)
    elif field.enum_type is not None:
        if value not in field.enum_type.values_by_number:
            raise InvalidArgument.field_error(
                where, f"{value} is not a known {field.enum_type.name} value"
            )
    elif field.message_type is not None:
        if field.message_type.full_name in _JSON_TYPES:
            if _json_has_nul(value):
                raise InvalidArgument.field_error(where, NUL)
        else:
            _check_message(value, where)


def _check_map(value_field: FieldDescriptor, entries: Any, where: str) -> None:
    for key in entries:
        if isinstance(key, str) and "\x00" in key:
            raise InvalidArgument.field_error(where, NUL)
        _check_value(value_field, entries[key], f"{where}[{key!r}]")


def _json_has_nul(message: Any) -> bool:
    """Whether a Struct, Value or ListValue holds a NUL in any key or string."""
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Struct":
        return any("\x00" in k or _json_has_nul(v) for k, v in message.fields.items())
    if name == "google.protobuf.ListValue":
        return any(_json_has_nul(v) for v in message.values)
    kind = message.WhichOneof("kind")
    if kind == "string_value":
        return "\x00" in message.string_value
    if kind in ("struct_value", "list_value"):
        return _json_has_nul(getattr(message, kind))
    return False
