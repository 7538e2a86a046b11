"""Bad filters are INVALID_ARGUMENT naming the field; compiled SQL carries no user value."""

from __future__ import annotations

from typing import Any

import pytest

from es_core.errors import InvalidArgument
from es_core.filters import (
    MAX_CLAUSES,
    MAX_DEPTH,
    Bool,
    Exists,
    Filter,
    Match,
    Nested,
    Range,
    SqlParams,
    Term,
    Terms,
    Wildcard,
    compile_filter,
    validate_filter,
)
from es_core.filters.compiler import like_pattern
from es_core.filters.words import words


def _deep(levels: int) -> Filter:
    f: Filter = Term("a", 1)
    for i in range(levels):
        f = Bool(must=(f,)) if i % 2 else Nested("items", f)
    return f


BAD: list[tuple[Any, str]] = [
    (Term("", 1), "filter.term.field"),
    (Term("a..b", 1), "filter.term.field"),
    (Term(".a", 1), "filter.term.field"),
    (Term("a.", 1), "filter.term.field"),
    (Term("x" * 129, 1), "filter.term.field"),
    (Term(".".join("a" * 17), 1), "filter.term.field"),
    (Term("a\x00", 1), "filter.term.field"),
    (Term(3, 1), "filter.term.field"),  # type: ignore[arg-type]
    (Term("a", {"b": 1}), "filter.term.value"),
    (Term("a", [1]), "filter.term.value"),
    (Term("a", None), "filter.term.value"),
    (Term("a", float("nan")), "filter.term.value"),
    (Term("a", float("inf")), "filter.term.value"),
    (Term("a", 10**400), "filter.term.value"),
    (Term("a", "x\x00"), "filter.term.value"),
    (Terms("a", ()), "filter.terms.values"),
    (Terms("a", tuple(range(1025))), "filter.terms.values"),
    (Terms("a", (1, "x", None)), "filter.terms.values[2]"),
    (Terms("a", "abc"), "filter.terms.values"),  # type: ignore[arg-type]
    (Range("a"), "filter.range"),
    (Range("a", gt=1, lt="z"), "filter.range.lt"),
    (Range("a", gte="a", lte=2), "filter.range.lte"),
    (Range("a", gt=True), "filter.range.gt"),  # booleans are not numbers
    (Range("a", lt=float("nan")), "filter.range.lt"),
    (Range("", gt=1), "filter.range.field"),
    (Exists("a..b"), "filter.exists.field"),
    (Match("a", "  ,.;!  "), "filter.match.query"),
    (Match("a", ""), "filter.match.query"),
    (Match("a", "word", "xor"), "filter.match.operator"),  # type: ignore[arg-type]
    (Match("", "word"), "filter.match.field"),
    (Wildcard("a", "x\x00*"), "filter.wildcard.pattern"),
    (Wildcard("a", "*", "yes"), "filter.wildcard.case_insensitive"),  # type: ignore[arg-type]
    (Nested("", Exists("a")), "filter.nested.path"),
    (Nested("items", Term("a..", 1)), "filter.nested.filter.term.field"),
    (Bool(must=(Exists("a"), Exists("b"), Term("", 1))), "filter.bool.must[2].term.field"),
    (Bool(should=(Exists("a"),), minimum_should_match=2), "filter.bool.minimum_should_match"),
    (Bool(minimum_should_match=-1), "filter.bool.minimum_should_match"),
    (Bool(must_not=(Bool(should=(Range("a"),)),)), "filter.bool.must_not[0].bool.should[0].range"),
    (Bool(must=("a",)), "filter.bool.must[0]"),  # type: ignore[arg-type]
    (
        Bool(must=(_deep(MAX_DEPTH),)),  # the 17th level is the innermost nested
        "filter.bool.must[0]" + ".bool.must[0].nested.filter" * 7 + ".bool.must[0]",
    ),
]


@pytest.mark.parametrize(("f", "field"), BAD)
def test_bad_filter_names_the_field(f: Filter, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_filter(f)
    assert [v.field for v in info.value.violations] == [field]
    with pytest.raises(InvalidArgument):
        compile_filter(f, SqlParams())


def test_limits_allow_the_maximum() -> None:
    validate_filter(_deep(MAX_DEPTH))
    validate_filter(Bool(should=tuple(Exists(f"f{i}") for i in range(MAX_CLAUSES))))
    validate_filter(Terms("a", tuple(range(1024))))
    validate_filter(Term(".".join(["x" * 128] * 16), 1))


def test_too_many_clauses_names_the_first_one_over() -> None:
    half = tuple(Exists("a") for _ in range(MAX_CLAUSES // 2))
    f = Bool(must=(Bool(should=half), Nested("items", Bool(must=half + (Exists("b"),)))))
    with pytest.raises(InvalidArgument) as info:
        validate_filter(f)
    assert info.value.violations[0].field == (
        f"filter.bool.must[1].nested.filter.bool.must[{MAX_CLAUSES // 2}]"
    )


def test_custom_root_field() -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_filter(Exists(""), field="query.filter")
    assert info.value.violations[0].field == "query.filter.exists.field"


USER_TEXT = "ZQX'\"; DROP TABLE t; --$1"
ALL_KINDS: list[Filter] = [
    Term(USER_TEXT, USER_TEXT),
    Terms(USER_TEXT, (USER_TEXT, 7)),
    Range(USER_TEXT, gt=USER_TEXT, lte=USER_TEXT + "z"),
    Range(USER_TEXT, gte=31337),
    Exists(USER_TEXT),
    Match(USER_TEXT, USER_TEXT, "and"),
    Wildcard(USER_TEXT, USER_TEXT + "*%_\\", True),
    Nested(USER_TEXT, Bool(should=(Exists(USER_TEXT), Term("x", 4242)), minimum_should_match=1)),
]


@pytest.mark.parametrize("f", ALL_KINDS)
def test_compiled_sql_holds_no_user_value(f: Filter) -> None:
    params = SqlParams(start=3)
    sql = compile_filter(f, params, "p.payload")
    for needle in ("ZQX", "zqx", "DROP", "drop", "31337", "4242", "--"):
        assert needle not in sql
    assert params.values
    assert f"${3 + len(params.values) - 1}" in sql
    assert f"${3 + len(params.values)}" not in sql


def test_numeric_looking_segment_is_guarded() -> None:
    params = SqlParams()
    sql = compile_filter(Exists("arr.0"), params)
    assert "[1:1]" in sql and params.values == [["arr", "0"]]
    assert "CASE" not in compile_filter(Exists("arr.x"), SqlParams())


def test_no_filter_is_true() -> None:
    params = SqlParams()
    assert compile_filter(None, params) == "true"
    assert compile_filter(Bool(), params) == "true"
    assert params.values == []


def test_unused_should_adds_no_parameters() -> None:
    params = SqlParams()
    compile_filter(Bool(must=(Exists("a"),), should=(Term("b", 1),)), params)
    assert params.values == [["a"]]


def test_like_pattern() -> None:
    assert like_pattern("a*b?c%d_e\\f") == "a%b_c\\%d\\_e\\\\f"


def test_words() -> None:
    assert words("Hello, WORLD! hello_world x2 — Straße ΣΑΣ 日本") == [
        "hello",
        "world",
        "hello_world",
        "x2",
        "straße",
        "σας",
        "日本",
    ]
    assert words(" ,.; ") == []
