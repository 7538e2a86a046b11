"""Typed payload filters compiled to one parameterised SQL boolean expression."""

from es_core.filters.compiler import SqlParams, compile_filter
from es_core.filters.model import (
    MAX_CLAUSES,
    MAX_DEPTH,
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
from es_core.filters.validation import validate_filter

__all__ = [
    "MAX_CLAUSES",
    "MAX_DEPTH",
    "Bool",
    "Exists",
    "Filter",
    "JsonValue",
    "Match",
    "Nested",
    "Range",
    "SqlParams",
    "Term",
    "Terms",
    "Wildcard",
    "compile_filter",
    "validate_filter",
]
