"""A plain-Python evaluator of the filter language, written apart from the SQL compiler.

Tests compare what PostgreSQL selects with what this says. It follows the documented semantics
directly: paths walk objects only, JSON numbers compare by their decimal text (as jsonb does),
booleans are never numbers, strings order by code point.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

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

_MISSING = object()


def evaluate(f: Filter, payload: dict[str, Any]) -> bool:
    """Whether ``payload`` matches ``f``."""
    if isinstance(f, Bool):
        return _bool(f, payload)
    if isinstance(f, Nested):
        value = _lookup(payload, f.path)
        return isinstance(value, list) and any(
            isinstance(e, dict) and evaluate(f.filter, e) for e in value
        )
    value = _lookup(payload, f.field)
    if isinstance(f, Term):
        return _term(value, f.value)
    if isinstance(f, Terms):
        return any(_term(value, v) for v in f.values)
    if isinstance(f, Range):
        return _range(value, f)
    if isinstance(f, Exists):
        return value is not _MISSING and value is not None
    if isinstance(f, Match):
        return _match(value, f)
    if isinstance(f, Wildcard):
        return _wildcard(value, f)
    raise TypeError(f"not a filter: {f!r}")


def _lookup(doc: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return _MISSING
        doc = doc[key]
    return doc


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _decimal(v: int | float) -> Decimal:
    return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return _decimal(a) == _decimal(b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def _term(value: Any, wanted: Any) -> bool:
    if isinstance(value, list):
        return any(_json_equal(e, wanted) for e in value)
    return _json_equal(value, wanted)


def _range(value: Any, f: Range) -> bool:
    bounds = {k: getattr(f, k) for k in ("gt", "gte", "lt", "lte") if getattr(f, k) is not None}
    if all(isinstance(b, str) for b in bounds.values()):
        if not isinstance(value, str):
            return False
        v: Any = value
        key: Any = lambda b: b  # noqa: E731
    else:
        if not _is_number(value):
            return False
        v = _decimal(value)
        key = _decimal
    checks = {
        "gt": lambda b: v > key(b),
        "gte": lambda b: v >= key(b),
        "lt": lambda b: v < key(b),
        "lte": lambda b: v <= key(b),
    }
    return all(checks[name](b) for name, b in bounds.items())


def _words(text: str) -> set[str]:
    """Letters, decimal digits and underscore make words (see es_core.filters.words)."""
    out: set[str] = set()
    word = ""
    for ch in text.lower():
        category = unicodedata.category(ch)
        if ch == "_" or category[0] == "L" or category in ("Nd", "Nl"):
            word += ch
        else:
            if word:
                out.add(word)
            word = ""
    if word:
        out.add(word)
    return out


def _match(value: Any, f: Match) -> bool:
    if not isinstance(value, str):
        return False
    have, want = _words(value), _words(f.query)
    return want <= have if f.operator == "and" else bool(want & have)


def _wildcard(value: Any, f: Wildcard) -> bool:
    if not isinstance(value, str):
        return False
    pattern = f.pattern.lower() if f.case_insensitive else f.pattern
    text = value.lower() if f.case_insensitive else value
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, flags=re.DOTALL) is not None


def _bool(f: Bool, payload: dict[str, Any]) -> bool:
    if not all(evaluate(c, payload) for c in f.must):
        return False
    if any(evaluate(c, payload) for c in f.must_not):
        return False
    wanted = f.minimum_should_match or (1 if f.should and not f.must else 0)
    return sum(evaluate(c, payload) for c in f.should) >= wanted
