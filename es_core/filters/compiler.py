"""Compiles a filter to one SQL boolean expression over a jsonb document.

Every user value (field names, values, patterns, queries) travels as a bind parameter; the SQL
text holds only fixed fragments and parameter numbers (and the paths of a collection's declared
filterable fields, as constants: es_core/filters/declared.py). Each leaf is wrapped so that it is
true or false, never NULL, which keeps NOT and the should-count exact (compile_filter says where
a clause on a declared field may be NULL). Parameters carrying ``jsonb``
are Python values: the connection needs the JSON codec the project's pool installs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

from es_core.domain import FilterableField
from es_core.filters.declared import field_expression
from es_core.filters.model import (
    Bool,
    Exists,
    Filter,
    Match,
    Nested,
    Range,
    Term,
    Terms,
    Wildcard,
)
from es_core.filters.validation import validate_filter
from es_core.filters.words import words

# A segment PostgreSQL's #> would read as an array position (strtol: blanks, sign, digits).
_POSITION_LIKE = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class SqlParams:
    """Bind values of one statement; ``add`` returns the placeholder for the next one."""

    def __init__(self, start: int = 1) -> None:
        """``start`` is the number of the first placeholder; the caller owns ``$1..$start-1``."""
        self.start = start
        self.values: list[object] = []

    def add(self, value: object) -> str:
        self.values.append(value)
        return f"${self.start + len(self.values) - 1}"


def compile_filter(
    f: Filter | None,
    params: SqlParams,
    document: str = "payload",
    *,
    field: str = "filter",
    declared: Iterable[FilterableField] = (),
) -> str:
    """An SQL boolean expression for ``f`` over ``document`` (trusted SQL that yields the jsonb
    document, e.g. ``"p.payload"``), for a WHERE clause; ``"true"`` when there is no filter.

    ``declared``: the collection's filterable fields (es_core/collections/filterable.py). A
    range (bounds of the field's type) or a term (a string, on a keyword field) on one of them
    that decides the filter positively (not under must_not, nor counted by minimum_should_match)
    compiles to a test of its indexed expression instead: the same rows, but the planner can
    read the index and estimate from its statistics. Such a test is NULL rather than false
    where it fails, which in a WHERE selects the same rows; every other clause is never NULL,
    which keeps NOT and the should-count exact.

    Raises InvalidArgument, with field paths under ``field``, if ``f`` is not a valid filter.
    """
    if f is None:
        return "true"
    validate_filter(f, field)
    return _Compiler(params, {d.field: d for d in declared}).compile(f, document, 0, True)


class _Compiler:
    def __init__(self, params: SqlParams, declared: dict[str, FilterableField]) -> None:
        self.params = params
        self.declared = declared

    def compile(self, f: Filter, doc: str, level: int, positive: bool) -> str:
        """``positive``: the clause's value reaches the WHERE through AND and OR alone."""
        params = self.params
        if isinstance(f, Bool):
            return _bool(f, self, doc, level, positive)
        if isinstance(f, Nested):
            return _nested(f, self, doc, level)
        if isinstance(f, (Term, Range)) and positive and level == 0:
            indexed = self._indexed(f, doc)
            if indexed is not None:
                return indexed
        if isinstance(f, Term):
            return _term(f, params, doc, top_level=level == 0)
        if isinstance(f, Terms):
            return _terms(f, params, doc)
        if isinstance(f, Range):
            return _range(f, params, doc)
        return _leaf(f, params, doc)

    def _indexed(self, f: Term | Range, doc: str) -> str | None:
        """The test of ``f`` over its declared field's indexed expression; None when the field
        is not declared, or the clause compares values of another type."""
        declared = self.declared.get(f.field)
        if declared is None:
            return None
        indexed = field_expression(doc, declared)
        if isinstance(f, Range):
            bounds = [(op, getattr(f, name)) for name, op in _OPERATORS.items()]
            given = [(op, b) for op, b in bounds if b is not None]
            strings = isinstance(given[0][1], str)
            if strings != (declared.type == "keyword"):
                return None
            # The expression is NULL unless the field holds a value of the bounds' type: what
            # the exact range tests first (an array never matches a range).
            cast = "text" if strings else "numeric"
            values = [(op, b if isinstance(b, str) else _decimal(b)) for op, b in given]
            tests = [f"{indexed} {op} {self.params.add(v)}::{cast}" for op, v in values]
            return f"({' AND '.join(tests)})"
        if declared.type != "keyword" or not isinstance(f.value, str):
            return None
        # As the term's containment test: the field is the string (the index answers), or an
        # array holding it (the payload's GIN index answers).
        listed = _nest(f.field.split("."), [f.value])
        equal = f"{indexed} = {self.params.add(f.value)}::text"
        return f"({equal} OR {doc} @> {self.params.add(listed)}::jsonb)"


def _leaf(f: Exists | Match | Wildcard, params: SqlParams, doc: str) -> str:
    if isinstance(f, Exists):
        return _exists(f, params, doc)
    if isinstance(f, Match):
        return _match(f, params, doc)
    return _wildcard(f, params, doc)


def _value(field: str, params: SqlParams, doc: str) -> str:
    """The jsonb at ``field``, or NULL. Only objects are walked: where a segment looks like an
    array position, the value before it must be an object, or #> would index an array."""
    segments = field.split(".")
    p = params.add(segments)
    value = f"({doc} #> {p}::text[])"
    guards = [
        f"jsonb_typeof({doc} #> ({p}::text[])[1:{i}]) = 'object'"
        for i, segment in enumerate(segments)
        if _POSITION_LIKE.fullmatch(segment)
    ]
    if guards:
        value = f"(CASE WHEN {' AND '.join(guards)} THEN {value} END)"
    return value


def _when_type(value: str, json_type: str, condition: str) -> str:
    """``condition`` evaluated only when ``value`` has ``json_type``; false otherwise."""
    return f"coalesce(CASE WHEN jsonb_typeof({value}) = '{json_type}' THEN {condition} END, false)"


def _term(f: Term, params: SqlParams, doc: str, *, top_level: bool) -> str:
    # jsonb @> with a scalar: equal scalars, or an array holding an equal element.
    exact = f"coalesce({_value(f.field, params, doc)} @> {params.add(f.value)}::jsonb, false)"
    segments = f.field.split(".")
    if not top_level or any(_POSITION_LIKE.fullmatch(s) for s in segments):
        return exact
    # The same test as containment of the whole document, which a GIN (jsonb_path_ops) index
    # on it answers: the field holds the value, or an array holding it (nested, containment
    # asks for the array form). Implied by the exact test, so the pair means what it alone does.
    scalar, listed = _nest(segments, f.value), _nest(segments, [f.value])
    contains = f"{doc} @> {params.add(scalar)}::jsonb OR {doc} @> {params.add(listed)}::jsonb"
    return f"(({contains}) AND {exact})"


def _nest(segments: list[str], value: object) -> object:
    """``{"a": {"b": value}}`` for the path ``a.b``."""
    for segment in reversed(segments):
        value = {segment: value}
    return value


def _terms(f: Terms, params: SqlParams, doc: str) -> str:
    value = _value(f.field, params, doc)
    return f"coalesce({value} @> ANY({params.add(list(f.values))}::jsonb[]), false)"


def _range(f: Range, params: SqlParams, doc: str) -> str:
    value = _value(f.field, params, doc)
    bounds: list[tuple[str, int | float | str]] = [
        (op, getattr(f, name)) for name, op in _OPERATORS.items() if getattr(f, name) is not None
    ]
    if isinstance(bounds[0][1], str):
        text = f"({value} #>> '{{}}') COLLATE \"C\""
        tests = [f"{text} {op} {params.add(bound)}::text" for op, bound in bounds]
        return _when_type(value, "string", " AND ".join(tests))
    tests = [
        f"{value}::numeric {op} {params.add(_decimal(bound))}::numeric"
        for op, bound in bounds
        if not isinstance(bound, str)
    ]
    return _when_type(value, "number", " AND ".join(tests))


def _decimal(number: float) -> Decimal:
    """The number as JSON writes it: floats by their shortest repr, like the stored payloads."""
    return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)


def _exists(f: Exists, params: SqlParams, doc: str) -> str:
    return f"coalesce(jsonb_typeof({_value(f.field, params, doc)}) <> 'null', false)"


def _match(f: Match, params: SqlParams, doc: str) -> str:
    value = _value(f.field, params, doc)
    field_words = (
        f"regexp_split_to_array(lower(({value} #>> '{{}}') COLLATE pg_unicode_fast), "
        "'[^[:alnum:]_]+')"
    )
    op = "@>" if f.operator == "and" else "&&"
    return _when_type(value, "string", f"{field_words} {op} {params.add(words(f.query))}::text[]")


def like_pattern(pattern: str) -> str:
    """The LIKE pattern (escape character ``\\``) for a wildcard pattern."""
    out = []
    for ch in pattern:
        if ch in "\\%_":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def _wildcard(f: Wildcard, params: SqlParams, doc: str) -> str:
    value = _value(f.field, params, doc)
    pattern = params.add(like_pattern(f.pattern))
    if f.case_insensitive:
        # ILIKE lower-cases both sides with the collation's rules: full Unicode case mapping.
        test = f"({value} #>> '{{}}') COLLATE pg_unicode_fast ILIKE {pattern}::text ESCAPE '\\'"
    else:
        test = f"({value} #>> '{{}}') COLLATE \"C\" LIKE {pattern}::text ESCAPE '\\'"
    return _when_type(value, "string", test)


def _bool(f: Bool, compiler: _Compiler, doc: str, level: int, positive: bool) -> str:
    parts = [compiler.compile(c, doc, level, positive) for c in f.must]
    parts += [f"NOT {compiler.compile(c, doc, level, False)}" for c in f.must_not]
    wanted = f.minimum_should_match or (1 if f.should and not f.must else 0)
    # Should clauses ORed (one wanted) or ANDed (all wanted) stay positive; counted ones not.
    counted = wanted not in (1, len(f.should))
    # An unused should list adds no parameters: PostgreSQL rejects a parameter it never sees.
    should = (
        [compiler.compile(c, doc, level, positive and not counted) for c in f.should]
        if wanted
        else []
    )
    if wanted == 1:
        parts.append("(" + " OR ".join(should) + ")")
    elif wanted == len(should):
        parts += should
    elif wanted > 0:
        parts.append("(" + " + ".join(f"({s})::int" for s in should) + f") >= {wanted}")
    return "(" + " AND ".join(parts) + ")" if parts else "true"


def _nested(f: Nested, compiler: _Compiler, doc: str, level: int) -> str:
    alias = f"_nested{level + 1}"
    array = _value(f.path, compiler.params, doc)
    inner = compiler.compile(f.filter, f"{alias}.elem", level + 1, False)
    return (
        f"EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({array}) = 'array' "
        f"THEN {array} ELSE '[]'::jsonb END) AS {alias}(elem) "
        f"WHERE jsonb_typeof({alias}.elem) = 'object' AND {inner})"
    )
