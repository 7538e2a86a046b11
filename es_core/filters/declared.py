"""The SQL expressions over a declared filterable field (es_core/collections/filterable.py):
one text for the index that is built on it and for the filter clauses that use that index.

The planner matches a clause to an expression index only when both hold the same expression,
so the field's path is a constant in the SQL text (a ``text[]`` literal), not a parameter. It is
built from the path's segments alone, each quoted as an array element and the whole as a
standard string literal, so no segment can end the literal early.
"""

from __future__ import annotations

from es_core.domain import FilterableField


def path_literal(field: str) -> str:
    """The dotted path as a SQL ``text[]`` constant: ``'{"a","b"}'::text[]`` for ``a.b``."""
    elements = []
    for segment in field.split("."):
        if "\x00" in segment:
            raise ValueError("a field path cannot hold NUL characters")
        escaped = segment.replace("\\", "\\\\").replace('"', '\\"')
        elements.append(f'"{escaped}"')
    array = "{" + ",".join(elements) + "}"
    return "'" + array.replace("'", "''") + "'::text[]"


def field_expression(document: str, declared: FilterableField) -> str:
    """The indexed value of the field in ``document`` (trusted SQL yielding the jsonb payload):
    its number, or its string compared by code point; NULL when the value is of another type."""
    value = f"{document} #> {path_literal(declared.field)}"
    if declared.type == "number":
        return f"es_payload_number({value})"
    return f'(es_payload_keyword({value}) COLLATE "C")'
