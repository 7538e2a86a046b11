"""The filter budget (es_core/filters/cost.py): what each clause costs, and a filter over the
budget refused naming ``filter`` before it reaches the database."""

from __future__ import annotations

import pytest

from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.filters.cost import check_filter_cost, exact_is_cheaper, filter_cost
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


@pytest.mark.parametrize(
    ("matches", "items", "exact"),
    [
        (0, 100_000, True),  # nothing to walk for
        (5, 100_000, True),  # fewer than the page wants
        (1_000, 100_000, True),  # 1%: a walk would read ~1,100 parts
        (10_000, 100_000, False),  # 10%: ~110 parts, about the first pass
        (50_000, 100_000, False),
        (200, 2_000, True),
        (1_000, 2_000, False),
    ],
)
def test_exact_scoring_is_chosen_for_selective_filters(
    matches: float, items: float, exact: bool
) -> None:
    assert exact_is_cheaper(matches, items, 11, 100) is exact
