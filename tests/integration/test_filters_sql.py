"""The compiled SQL selects exactly what the reference evaluator says, and no input escapes it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from es_core.errors import InvalidArgument
from es_core.filters import (
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
)
from es_core.filters.words import words
from tests.filter_reference import evaluate

pytestmark = pytest.mark.integration


async def _select(conn: asyncpg.Connection, table: str, f: Filter) -> set[int]:
    params = SqlParams()
    where = compile_filter(f, params, "t.payload")
    rows = await conn.fetch(f"SELECT t.id FROM {table} AS t WHERE {where}", *params.values)
    return {r["id"] for r in rows}


def _expected(payloads: list[dict[str, Any]], f: Filter) -> set[int]:
    return {i for i, p in enumerate(payloads, 1) if evaluate(f, p)}


async def _load(conn: asyncpg.Connection, table: str, payloads: list[dict[str, Any]]) -> None:
    await conn.execute(
        f"INSERT INTO {table} (id, payload) "
        "SELECT i, p FROM unnest($1::jsonb[]) WITH ORDINALITY AS u(p, i)",
        payloads,
    )


# ---- strategies: a small vocabulary, and filters built from values the payloads hold ----


def pick(*choices: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Each choice equally often (``st.one_of`` flattens nested one_ofs, skewing the odds)."""
    return st.sampled_from(choices).flatmap(lambda s: s)


ALPHABET = "aAbB zZ_-.'\"\\%*?éÉßΣσς日本٣1ⅫİЖж"
# Case variants and look-alikes, so that match and wildcard meet equal words often.
WORDS = [
    "héllo",
    "HÉLLO",
    "Héllo wörld",
    "wörld",
    "ΣΑΣ",
    "σας",
    "Straße",
    "STRASSE",
    "a_b c",
    "a b",
    "snake_case",
    "日本",
    "x'y",
    'q"z',
    "50%",
    "a\\b",
    "1",
    "İ",
    "Ⅻ",
    "ж Ж",
    "",
]
TEXT = pick(st.sampled_from(WORDS), st.text(ALPHABET, max_size=8))
SMALL_INTS = st.integers(-2, 2)
NUMBERS = pick(
    SMALL_INTS,
    SMALL_INTS,
    st.sampled_from([1.0, 0.5, -0.0, 2.5, 1e20, 10**20, 123456789012345678901234567890]),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
SCALARS = pick(NUMBERS, TEXT, st.booleans())
JSON_SCALARS = pick(SCALARS, SCALARS, SCALARS, st.none())
VALUES = pick(SCALARS, SCALARS, JSON_SCALARS, st.lists(JSON_SCALARS, max_size=4))
ELEMENT = st.fixed_dictionaries(
    {}, optional={"a": VALUES, "b": pick(TEXT, TEXT, VALUES), "tags": VALUES}
)
ELEMENTS = pick(ELEMENT, ELEMENT, ELEMENT, JSON_SCALARS, st.lists(ELEMENT, max_size=1))
PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "s": pick(TEXT, TEXT, TEXT, VALUES),
        "a": VALUES,
        "b": VALUES,
        "c": VALUES,
        "tags": st.lists(SCALARS, max_size=4),
        "n": pick(st.fixed_dictionaries({}, optional={"x": VALUES, "y": VALUES}), VALUES),
        "arr": pick(
            st.lists(JSON_SCALARS, max_size=3),
            st.dictionaries(st.sampled_from(["0", "1"]), JSON_SCALARS, max_size=2),
        ),
        "items": pick(st.lists(ELEMENTS, max_size=4), st.lists(ELEMENTS, max_size=4), JSON_SCALARS),
    },
)
FIELDS = ["s", "a", "b", "c", "tags", "n", "n.x", "n.x.y", "arr.0", "missing"]
TEXT_FIELDS = ["s", "s", "s", "a", "n.x", "tags"]
ELEMENT_FIELDS = ["a", "b", "tags", "missing"]
ELEMENT_TEXT_FIELDS = ["b", "b", "a"]
LEAF_KINDS = ["term", "terms", "range", "exists", "match", "wildcard"]
BOUNDS = ["gt", "gte", "lt", "lte"]
SIZES = st.integers(0, 3)


class FilterMaker:
    """Draws filters over ``docs`` whose values are, half the time, values the docs hold at
    the filtered field: boundaries (gte vs gt) and case variants then meet often.

    Plain draws from a few fixed strategies: building strategies per draw is many times slower.
    """

    def __init__(self, draw: st.DrawFn, docs: list[Any]) -> None:
        self.draw = draw
        self.docs = docs
        self._seen: dict[str, list[Any]] = {}

    def coin(self) -> bool:
        return self.draw(st.booleans())

    def choose(self, items: list[Any]) -> Any:
        return items[self.draw(st.integers(0, len(items) - 1))]

    def seen(self, field: str) -> list[Any]:
        if field not in self._seen:
            found: dict[str, Any] = {}
            for doc in self.docs:
                value = _lookup(doc, field)
                for v in value if isinstance(value, list) else [value]:
                    if v is not None and not isinstance(v, (list, dict)):
                        found.setdefault(repr(v), v)  # by repr: 1, 1.0 and True stay apart
            self._seen[field] = list(found.values())
        return self._seen[field]

    def text(self, field: str) -> str:
        seen = [v for v in self.seen(field) if isinstance(v, str)]
        return str(self.choose(seen) if seen and self.coin() else self.draw(TEXT))

    def number(self, field: str) -> Any:
        seen = [v for v in self.seen(field) if type(v) in (int, float)]
        return self.choose(seen) if seen and self.coin() else self.draw(NUMBERS)

    def scalar(self, field: str) -> Any:
        kind = self.choose(["number", "text", "bool"])
        if kind == "bool":
            return self.coin()
        return self.number(field) if kind == "number" else self.text(field)

    def recased(self, text: str, wild: bool = False) -> str:
        """Some characters upper- or lower-cased (and, if ``wild``, made ``?`` or ``*``)."""
        extra = ["?", "*"] if wild else []
        return "".join(self.choose([c, c, c.upper(), c.lower(), *extra]) for c in text)

    def query(self, field: str) -> str:
        parts = [self.text(field)]
        while len(parts) < 3 and self.coin():
            parts.append(self.choose(WORDS))
        query = self.recased(" ".join(parts))
        return query if words(query) else query + " héllo"

    def leaf(self, fields: list[str], text_fields: list[str]) -> Filter:
        field, kind = self.choose(fields), self.choose(LEAF_KINDS)
        if kind == "term":
            return Term(field, self.scalar(field))
        if kind == "terms":
            return Terms(field, tuple(self.scalar(field) for _ in range(self.draw(SIZES) + 1)))
        if kind == "range":
            value = self.number if self.coin() else self.text
            names = {self.choose(BOUNDS) for _ in range(self.draw(SIZES) % 2 + 1)}
            return Range(field, **{name: value(field) for name in names})
        if kind == "exists":
            return Exists(field)
        field = self.choose(text_fields)
        if kind == "match":
            return Match(field, self.query(field), self.choose(["or", "and"]))
        return Wildcard(field, self.recased(self.text(field), wild=True), self.coin())

    def bool(self, child: Callable[[], Filter]) -> Bool:
        must, should, must_not = (tuple(child() for _ in range(self.draw(SIZES))) for _ in "msn")
        return Bool(must, should, must_not, self.draw(st.integers(0, len(should))))

    def filter(self, depth: int) -> Filter:
        kind = self.choose(["leaf", "leaf", "nested", "bool"] if depth else ["leaf", "nested"])
        if kind == "leaf":
            return self.leaf(FIELDS, TEXT_FIELDS)
        if kind == "bool":
            return self.bool(lambda: self.filter(depth - 1))
        return self.nested()

    def nested(self) -> Nested:
        path = self.choose(["items", "items", "a"])
        arrays = [v for doc in self.docs if isinstance(v := _lookup(doc, path), list)]
        inner = FilterMaker(self.draw, [e for array in arrays for e in array])

        def leaf() -> Filter:
            return inner.leaf(ELEMENT_FIELDS, ELEMENT_TEXT_FIELDS)

        kind = self.choose(["leaf", "bool", "not"])
        if kind == "not":  # true on elements that are not objects, unless the SQL checks
            return Nested(path, Bool(must_not=(leaf(),)))
        return Nested(path, leaf() if kind == "leaf" else inner.bool(leaf))


def _lookup(doc: Any, field: str) -> Any:
    for key in field.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Filter]]:
    """30 payloads and 4 filters (Bool up to 3 levels, Nested) over them."""
    payloads = draw(st.lists(PAYLOADS, min_size=30, max_size=30))
    maker = FilterMaker(draw, payloads)
    return payloads, [maker.filter(3) for _ in range(4)]


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
async def test_sql_agrees_with_reference(
    pg_pool: asyncpg.Pool, case: tuple[list[dict[str, Any]], list[Filter]]
) -> None:
    payloads, fs = case
    async with pg_pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE filter_prop (id int PRIMARY KEY, payload jsonb) ON COMMIT DROP"
        )
        await _load(conn, "filter_prop", payloads)
        for f in fs:
            assert await _select(conn, "filter_prop", f) == _expected(payloads, f), f


# ---- hand-picked cases the property test may take long to find ----

EDGE_PAYLOADS: list[dict[str, Any]] = [
    {"a": 1, "s": "Hello, World!"},  # 1
    {"a": 1.0, "s": "hello_world 42"},  # 2
    {"a": True, "s": "HÉLLO wörld"},  # 3
    {"a": "1", "s": "ΣΑΣ"},  # 4
    {"a": [1, 2], "arr": [10, 20], "s": 5},  # 5
    {"a": [[1]], "arr": {"0": 10}, "s": ["hello"]},  # 6
    {"a": None, "n": {"x": 3}, "items": [{"a": 1}, 5, [{"a": 1}]]},  # 7
    {"n": {"x": "3"}, "items": [{"a": 2, "b": "x"}, {"a": 1, "b": "y"}]},  # 8
    {"n": [{"x": 3}], "items": {"a": 1}},  # 9
    {"a": 10**20, "s": "a%b_c\\d"},  # 10
]


@pytest.mark.parametrize(
    ("f", "ids"),
    [
        (Term("a", 1), {1, 2, 5}),
        (Term("a", True), {3}),
        (Term("a", "1"), {4}),
        (Terms("a", (2, "1")), {4, 5}),
        (Term("a", 1e20), {10}),
        (Term("arr.0", 10), {6}),  # "0" is a key, never an array position
        (Term("n.x", 3), {7}),
        (Range("n.x", gte=3), {7}),
        (Range("n.x", gte="3"), {8}),
        (Range("a", gt=0, lt=1.5), {1, 2}),
        (Exists("a"), {1, 2, 3, 4, 5, 6, 10}),
        (Match("s", "WORLD", "or"), {1}),  # "hello_world" is one word
        (Match("s", "héllo wörld", "and"), {3}),
        (Match("s", "σας", "or"), {4}),
        (Wildcard("s", "hello*", False), {2}),
        (Wildcard("s", "hello*", True), {1, 2}),
        (Wildcard("s", "héllo?wörld", True), {3}),
        (Wildcard("s", "a%b_c\\d", False), {10}),
        (Wildcard("s", "a?b?c?d", False), {10}),
        (Wildcard("s", "a%b%", False), set()),
        (Nested("items", Term("a", 1)), {7, 8}),
        (Nested("items", Bool(must=(Term("a", 1), Term("b", "x")))), set()),
        (Nested("items", Bool()), {7, 8}),
        (Nested("items", Bool(must_not=(Exists("a"),))), set()),
        (Bool(should=(Term("a", 1), Exists("n")), minimum_should_match=2), set()),
        (Bool(should=(Term("a", 1), Exists("n"))), {1, 2, 5, 7, 8, 9}),
        (Bool(must=(Exists("s"),), should=(Term("a", 1),)), {1, 2, 3, 4, 5, 6, 10}),
        (Bool(must_not=(Exists("a"),)), {7, 8, 9}),
        (Bool(), set(range(1, 11))),
    ],
)
async def test_edge_cases(pg_pool: asyncpg.Pool, f: Filter, ids: set[int]) -> None:
    assert _expected(EDGE_PAYLOADS, f) == ids
    async with pg_pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE filter_edge (id int PRIMARY KEY, payload jsonb) ON COMMIT DROP"
        )
        await _load(conn, "filter_edge", EDGE_PAYLOADS)
        assert await _select(conn, "filter_edge", f) == ids


async def test_caller_parameters_come_first(pg_pool: asyncpg.Pool) -> None:
    params = SqlParams(start=2)
    where = compile_filter(Term("a", 1), params, "p")
    async with pg_pool.acquire() as conn:
        got = await conn.fetchval(
            f"SELECT count(*) FROM unnest($1::jsonb[]) AS u(p) WHERE {where}",
            [{"a": 1}, {"a": 2}],
            *params.values,
        )
    assert got == 1


# ---- injection: hostile strings in every slot ----

HOSTILE = [
    "'; DROP TABLE filter_injection; --",
    "$1",
    "$2::text",
    "\\",
    "%",
    "_",
    "*",
    "?",
    "' OR '1'='1",
    '"); SELECT pg_sleep(5); --',
    "') OR pg_sleep(5) IS NULL OR ('",
    "{a,b}",
    "}",
    "x\x00y",
    "",
    "a..b",
    "$$ SELECT 1 $$",
    "E'\\x00'",
]
STORABLE = [s for s in HOSTILE if "\x00" not in s and s]


def _hostile_filters(s: str) -> list[Filter]:
    leaves: list[Filter] = [
        Term(s, "v"),
        Term("k", s),
        Terms(s, ("v", 1)),
        Terms("k", (s, "v")),
        Range(s, gte=""),
        Range("k", gt=s),
        Range("k", lte=s),
        Exists(s),
        Match(s, "word"),
        Match("k", s, "or"),
        Match("k", s + " word", "and"),
        Wildcard(s, "*", False),
        Wildcard("k", s, False),
        Wildcard("k", s, True),
        Nested(s, Exists("k")),
        Nested("items", Term(s, s)),
        Nested("items", Wildcard("k", s + "*", True)),
    ]
    return leaves + [Bool(must_not=(leaf,), should=(leaf, Exists(s))) for leaf in leaves]


async def test_hostile_strings_are_values_only(pg_pool: asyncpg.Pool) -> None:
    payloads: list[dict[str, Any]] = [{"k": s, s: "v", "items": [{"k": s, s: s}]} for s in STORABLE]
    payloads += [{"k": "word " + s} for s in STORABLE] + [{"k": "v", "v": s} for s in STORABLE]
    async with pg_pool.acquire() as conn:
        await conn.execute("DROP TABLE IF EXISTS filter_injection")
        await conn.execute("CREATE TABLE filter_injection (id int PRIMARY KEY, payload jsonb)")
        await _load(conn, "filter_injection", payloads)
        try:
            await conn.execute("SET statement_timeout = '3s'")
            started = time.monotonic()
            answered = rejected = 0
            for s in HOSTILE:
                for f in _hostile_filters(s):
                    try:
                        got = await _select(conn, "filter_injection", f)
                    except InvalidArgument:
                        rejected += 1
                        assert "\x00" in s or s == "" or ".." in s or "match" in repr(f).lower()
                        continue
                    assert got == _expected(payloads, f), f
                    answered += 1
            assert time.monotonic() - started < 20
            assert answered > rejected > 0
            count = await conn.fetchval("SELECT count(*) FROM filter_injection")
            assert count == len(payloads)
        finally:
            await conn.execute("RESET statement_timeout")
            await conn.execute("DROP TABLE IF EXISTS filter_injection")
