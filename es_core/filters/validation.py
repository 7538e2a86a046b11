"""Checks a filter before it is compiled; every error names the offending field of the request.

Field paths in errors look like ``filter.bool.must[2].term.field``. PostgreSQL text cannot hold
NUL characters, so no string anywhere in a filter may contain one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from es_core.errors import InvalidArgument
from es_core.filters.model import (
    MAX_CLAUSES,
    MAX_DEPTH,
    MAX_SEGMENT_LENGTH,
    MAX_SEGMENTS,
    MAX_TERMS,
    Bool,
    Exists,
    Filter,
    JsonValue,
    Match,
    Nested,
    Range,
    Term,
    Terms,
    Wildcard,
)
from es_core.filters.words import words

_MAX_NUMBER = 1e308
MAX_TEXT_LENGTH = 1024
"""Characters in a match query or a wildcard pattern."""


def validate_filter(f: Filter, field: str = "filter") -> None:
    """Raise InvalidArgument if ``f`` breaks a rule of the filter language or its limits."""
    _Validator().check(f, field, depth=0)


def _error(field: str, description: str) -> InvalidArgument:
    return InvalidArgument.field_error(field, description)


def _check_text(
    value: object, field: str, *, allow_empty: bool = True, max_length: int | None = None
) -> str:
    if not isinstance(value, str):
        raise _error(field, "must be a string")
    if not allow_empty and not value:
        raise _error(field, "must not be empty")
    if max_length is not None and len(value) > max_length:
        raise _error(field, f"must be at most {max_length} characters")
    if "\x00" in value:
        raise _error(field, "must not contain NUL characters")
    return value


def check_field_path(value: object, field_path: str) -> list[str]:
    """The segments of a dotted field path (``value``), or InvalidArgument at ``field_path``."""
    path = _check_text(value, field_path, allow_empty=False)
    segments = path.split(".")
    if len(segments) > MAX_SEGMENTS:
        raise _error(field_path, f"must have at most {MAX_SEGMENTS} dot-separated segments")
    for segment in segments:
        if not segment:
            raise _error(
                field_path, "must not have an empty segment (leading, trailing or double dot)"
            )
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise _error(field_path, f"segments must be at most {MAX_SEGMENT_LENGTH} characters")
    return segments


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_number(value: float, field: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _error(field, "must be a finite number")
    if abs(value) > _MAX_NUMBER:
        raise _error(field, f"must be at most {_MAX_NUMBER:g} in magnitude")


def _check_scalar(value: JsonValue, field: str) -> None:
    if isinstance(value, bool):
        return
    if _is_number(value):
        assert isinstance(value, (int, float))
        _check_number(value, field)
    elif isinstance(value, str):
        _check_text(value, field)
    else:
        raise _error(field, "must be a string, a number or a boolean")


class _Validator:
    """One walk over the tree, counting leaves across all branches."""

    def __init__(self) -> None:
        self.leaves = 0

    def check(self, f: Filter, field: str, depth: int) -> None:
        if isinstance(f, (Bool, Nested)):
            if depth >= MAX_DEPTH:
                raise _error(field, f"filters may nest at most {MAX_DEPTH} bool/nested levels")
            if isinstance(f, Bool):
                self._bool(f, f"{field}.bool", depth + 1)
            else:
                check_field_path(f.path, f"{field}.nested.path")
                self.check(f.filter, f"{field}.nested.filter", depth + 1)
            return
        self.leaves += 1
        if self.leaves > MAX_CLAUSES:
            raise _error(field, f"a filter may have at most {MAX_CLAUSES} clauses")
        if isinstance(f, Term):
            check_field_path(f.field, f"{field}.term.field")
            _check_scalar(f.value, f"{field}.term.value")
        elif isinstance(f, Terms):
            self._terms(f, f"{field}.terms")
        elif isinstance(f, Range):
            self._range(f, f"{field}.range")
        elif isinstance(f, Exists):
            check_field_path(f.field, f"{field}.exists.field")
        elif isinstance(f, Match):
            self._match(f, f"{field}.match")
        elif isinstance(f, Wildcard):
            check_field_path(f.field, f"{field}.wildcard.field")
            _check_text(f.pattern, f"{field}.wildcard.pattern", max_length=MAX_TEXT_LENGTH)
            if not isinstance(f.case_insensitive, bool):
                raise _error(f"{field}.wildcard.case_insensitive", "must be a boolean")
        else:
            raise _error(
                field, "must be one of term, terms, range, exists, match, wildcard, bool or nested"
            )

    def _bool(self, f: Bool, field: str, depth: int) -> None:
        for name in ("must", "should", "must_not"):
            clauses = getattr(f, name)
            if not isinstance(clauses, Sequence) or isinstance(clauses, str):
                raise _error(f"{field}.{name}", "must be a list of filters")
            for i, clause in enumerate(clauses):
                self.check(clause, f"{field}.{name}[{i}]", depth)
        msm = f.minimum_should_match
        if not isinstance(msm, int) or isinstance(msm, bool) or msm < 0:
            raise _error(f"{field}.minimum_should_match", "must be a non-negative integer")
        if msm > len(f.should):
            raise _error(
                f"{field}.minimum_should_match",
                f"must be at most the number of should clauses ({len(f.should)})",
            )

    def _terms(self, f: Terms, field: str) -> None:
        check_field_path(f.field, f"{field}.field")
        if not isinstance(f.values, Sequence) or isinstance(f.values, str):
            raise _error(f"{field}.values", "must be a list")
        if not 1 <= len(f.values) <= MAX_TERMS:
            raise _error(f"{field}.values", f"must have 1 to {MAX_TERMS} values")
        for i, value in enumerate(f.values):
            _check_scalar(value, f"{field}.values[{i}]")

    def _range(self, f: Range, field: str) -> None:
        check_field_path(f.field, f"{field}.field")
        bounds = [(name, getattr(f, name)) for name in ("gt", "gte", "lt", "lte")]
        given = [(name, value) for name, value in bounds if value is not None]
        if not given:
            raise _error(field, "needs at least one of gt, gte, lt, lte")
        first_is_number = _is_number(given[0][1])
        for name, value in given:
            if _is_number(value):
                _check_number(value, f"{field}.{name}")
            elif isinstance(value, str):
                _check_text(value, f"{field}.{name}")
            else:
                raise _error(f"{field}.{name}", "must be a number or a string")
            if _is_number(value) != first_is_number:
                raise _error(
                    f"{field}.{name}",
                    "must be of the same type as the other bounds (all numbers or all strings)",
                )

    def _match(self, f: Match, field: str) -> None:
        check_field_path(f.field, f"{field}.field")
        query = _check_text(f.query, f"{field}.query", max_length=MAX_TEXT_LENGTH)
        if not words(query):
            raise _error(f"{field}.query", "must contain at least one word (letters or digits)")
        if f.operator not in ("or", "and"):
            raise _error(f"{field}.operator", 'must be "or" or "and"')
