"""Errors the library raises; the server maps each to a gRPC status with field violations."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: a dotted path into the request ("items[3].object_id") and why."""

    field: str
    description: str


class EsError(Exception):
    """Base of every error a caller can act on."""

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations or []

    @classmethod
    def field_error(cls, field: str, description: str) -> Self:
        """The error for one named field of the request."""
        return cls(f"{field}: {description}", [FieldViolation(field, description)])


class InvalidArgument(EsError):
    """The request itself is wrong; retrying it unchanged will fail again."""


class NotFound(EsError):
    """A named resource does not exist."""


class AlreadyExists(EsError):
    """The resource the request would create exists already."""


class FailedPrecondition(EsError):
    """The system is not in a state where the request can run (e.g. task already finished)."""


class Aborted(EsError):
    """A concurrent change got in the way (a collection the request read was deleted while it
    ran); the same request may succeed when sent again."""


class Unavailable(EsError):
    """A service the request needs (e.g. the Triton inference server) cannot be reached now;
    the same request may succeed later."""


class ResourceExhausted(EsError):
    """The request would cost more than a budget allows (a filter, a stream, a search space,
    a database statement); the message names the budget. The same request fails again;
    a cheaper one may not."""


class DeadlineExceeded(EsError):
    """A call ran into its time cap (a stream open longer than its setting allows); what it
    did before stays done, and the message says how to go on."""


# The most of a task's failure reason a caller is shown.
MAX_REASON_CHARS = 500


def first_line(error: BaseException) -> str:
    """The first line of an error's message; empty when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def connection_reason(error: BaseException) -> str:
    """Why a connection failed, in a few words and without the address its message may name
    (``Connection refused``, ``timed out``, ``the database system is starting up``)."""
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError):  # errno None: several addresses failed, each its own way
        return os.strerror(error.errno) if error.errno else "no address accepted a connection"
    return first_line(error) or type(error).__name__


def failure_reason(error: BaseException) -> str:
    """What a caller is told of an error that failed its task: one line, the message of a library
    error, else the exception's class and the first line of its message (at most
    ``MAX_REASON_CHARS``). The traceback belongs in the log of the process that raised it."""
    line = first_line(error)
    if not isinstance(error, EsError):
        line = f"{type(error).__name__}: {line}" if line else type(error).__name__
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"
