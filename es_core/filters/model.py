"""The payload filter language: one frozen dataclass per clause kind.

A field is a dotted path through nested objects (``"author.name"``): every segment names an
object key, never an array position (``"tags.0"`` looks for the key ``"0"``, so it never reaches
into an array). Leaves that compare values (term, terms) also look inside an array field: the
field matches when one of its elements does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

JsonValue: TypeAlias = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

MAX_DEPTH = 16
"""Bool/Nested levels one filter may stack."""

MAX_CLAUSES = 1024
"""Leaf clauses in one whole filter."""

MAX_TERMS = 1024
"""Values in one Terms clause."""

MAX_SEGMENTS = 16
"""Segments of one dotted field path."""

MAX_SEGMENT_LENGTH = 128
"""Characters in one segment of a field path."""


@dataclass(frozen=True)
class Term:
    """The field equals ``value`` (JSON equality: 1 == 1.0, true != 1, "1" != 1), or is an array
    with an element that does. ``value`` is a string, number or boolean."""

    field: str
    value: JsonValue


@dataclass(frozen=True)
class Terms:
    """Like Term, for any of ``values`` (1 to 1024 strings, numbers or booleans)."""

    field: str
    values: tuple[JsonValue, ...]


@dataclass(frozen=True)
class Range:
    """The field lies within the bounds given (at least one). Bounds are all numbers, compared
    numerically with number fields, or all strings, compared by code point with string fields;
    a field of any other type (arrays included) never matches."""

    field: str
    gt: int | float | str | None = None
    gte: int | float | str | None = None
    lt: int | float | str | None = None
    lte: int | float | str | None = None


@dataclass(frozen=True)
class Exists:
    """The field is present and not JSON null (an empty array or string exists)."""

    field: str


@dataclass(frozen=True)
class Match:
    """Word match on a string field; words are runs of letters, digits and ``_``, lower-cased.
    ``"or"``: some query word is among the field's words; ``"and"``: every one is."""

    field: str
    query: str
    operator: Literal["or", "and"] = "or"


@dataclass(frozen=True)
class Wildcard:
    """The whole string field matches ``pattern``: ``*`` is any run of characters, ``?`` exactly
    one; every other character stands for itself. Case-insensitive compares lower-cased forms."""

    field: str
    pattern: str
    case_insensitive: bool = False


@dataclass(frozen=True)
class Bool:
    """Every ``must`` clause, none of ``must_not``, and at least ``minimum_should_match`` of
    ``should``. 0 means 1 when there are should clauses and no must, else 0. Empty matches all."""

    must: tuple[Filter, ...] = ()
    should: tuple[Filter, ...] = ()
    must_not: tuple[Filter, ...] = ()
    minimum_should_match: int = 0


@dataclass(frozen=True)
class Nested:
    """``path`` is an array with an object element that matches ``filter`` on its own; the
    inner field paths are relative to the element. A field that is not an array never matches."""

    path: str
    filter: Filter


Filter: TypeAlias = Term | Terms | Range | Exists | Match | Wildcard | Bool | Nested
