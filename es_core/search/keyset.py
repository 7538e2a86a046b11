"""Keyset conditions and orderings for pages with no duplicates and no gaps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from es_core.errors import InvalidArgument
from es_core.filters.compiler import SqlParams
from es_core.search.query import SortSpec


@dataclass(frozen=True)
class SortKey:
    """SQL expressions (over one result row) and the directions a page is ordered by."""

    columns: list[tuple[str, bool]]  # (expression, descending)

    def order_by(self) -> str:
        return ", ".join(f"{expr} {'DESC' if desc else 'ASC'}" for expr, desc in self.columns)

    def after(self, cursor: list[Any], casts: list[str], params: SqlParams) -> str:
        """Rows strictly after ``cursor`` in this order, as one boolean expression."""
        condition = "false"
        for i in reversed(range(len(self.columns))):
            expr, desc = self.columns[i]
            value = f"{params.add(cursor[i])}::{casts[i]}"
            if casts[i] == "jsonb":
                # A JSON null in the cursor arrives as Python None, i.e. SQL NULL: restore it.
                value = f"coalesce({value}, 'null'::jsonb)"
            strictly = f"{expr} {'<' if desc else '>'} {value}"
            condition = (
                strictly
                if i == len(self.columns) - 1
                else (f"({strictly} OR ({expr} = {value} AND {condition}))")
            )
        return condition


def _fits(value: Any, cast: str) -> bool:
    if cast == "float8":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if cast == "text":
        return isinstance(value, str)
    if cast == "boolean":
        return isinstance(value, bool)
    return cast == "jsonb"


def cursor_key(cursor: dict[str, Any], casts: list[str], field: str = "page_token") -> list[Any]:
    """The sort key values a page cursor resumes after ("k"), one per column and of its type,
    else INVALID_ARGUMENT naming ``field`` (never a database error)."""
    key = cursor.get("k")
    if (
        not isinstance(key, list)
        or len(key) != len(casts)
        or not all(_fits(value, cast) for value, cast in zip(key, casts, strict=True))
    ):
        raise InvalidArgument.field_error(field, "is not a page token this service issued")
    return key


def distance_key() -> tuple[SortKey, list[str]]:
    return SortKey([("distance", False), ("object_id", False)]), ["float8", "text"]


def payload_sort_key(sort: SortSpec, params: SqlParams) -> tuple[SortKey, list[str]]:
    """Present values before missing ones in both directions; ties broken by object_id."""
    path = params.add(sort.field.split("."))
    value = f"coalesce(payload #> {path}::text[], 'null'::jsonb)"
    missing = f"((payload #> {path}::text[]) IS NULL)"
    desc = sort.descending
    return (
        SortKey([(missing, False), (value, desc), ("object_id", desc)]),
        ["boolean", "jsonb", "text"],
    )
