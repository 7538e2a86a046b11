"""The filter budget (es_core/filters/cost.py): what each clause costs, and a filter over the
budget refused naming ``filter`` before it reaches the database."""

from __future__ import annotations

import pytest

from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.filters.cost import check_filter_cost, filter_cost
from es_core.filters.model import Bool, Exists, Match, Nested, Range, Term, Terms, Wildcard

BUDGET = Settings().max_filter_cost


@pytest.mark.parametrize(
    ("f", "cost"),
    [
        (Term("a", 1), 1),
        (Range("a", gt=1), 1),
        (Exists("a"), 1),
        (Terms("a", tuple(range(127))), 1),
        (Terms("a", tuple(range(1024))), 9),
        (Match("text", "one two three"), 100),
        (Wildcard("text", "*a*"), 10),
        (Bool(must=(Term("a", 1),), should=(Match("t", "x"),), must_not=(Exists("b"),)), 102),
        (Nested("tags", Bool(must=(Term("k", 1), Wildcard("v", "x*")))), 11),
        (Bool(), 0),
    ],
)
def test_each_clause_costs_its_weight(f: object, cost: int) -> None:
    assert filter_cost(f) == cost  # type: ignore[arg-type]


def test_the_default_budget_admits_every_cheap_filter_and_ten_match_clauses() -> None:
    check_filter_cost(Bool(should=tuple(Term("a", i) for i in range(1024))), BUDGET)
    check_filter_cost(Bool(must_not=tuple(Match("t", f"w{i}") for i in range(10))), BUDGET)
    check_filter_cost(None, BUDGET)


def test_sixty_four_match_clauses_are_refused_naming_the_filter_and_the_budget() -> None:
    f = Bool(should=tuple(Match("text", f"word{i}") for i in range(64)))
    with pytest.raises(InvalidArgument) as caught:
        check_filter_cost(f, BUDGET)
    [violation] = caught.value.violations
    assert violation.field == "filter"
    assert f"costs 6400, over the budget of {BUDGET}" in violation.description
    assert "ES_MAX_FILTER_COST" in violation.description
