"""What a filter costs to run on one row, checked against a budget (ES_MAX_FILTER_COST) before
the filter reaches the database.

Every leaf reads its field out of the row's payload, so a filter's work per row grows with its
leaves times the size of the payloads (up to ES_MAX_PAYLOAD_BYTES). The weights follow times
measured on 60 KB payloads (PostgreSQL 18, one core): a term, range or exists clause takes
about 0.05 ms per row and counts 1; a match clause splits the field's whole text into words,
4 to 6 ms per row whatever its query, and counts 100; a wildcard scans the text, 0.15 ms
(0.4 ms case-insensitive), and counts 10; a terms clause of 1024 values takes 0.08 ms and
counts 1 more per 128 values. With the default budget a filter may hold 1024 cheap clauses or
10 match clauses; 64 match clauses are refused before they can hold a connection.
"""

from __future__ import annotations

from es_core.errors import InvalidArgument
from es_core.filters.model import Bool, Filter, Match, Nested, Terms, Wildcard

LEAF_COST = 1
MATCH_COST = 100
WILDCARD_COST = 10
TERMS_VALUES_PER_COST = 128


def filter_cost(f: Filter) -> int:
    """The cost of a valid filter: the sum of its leaves' weights (bool and nested add none)."""
    if isinstance(f, Bool):
        return sum(filter_cost(c) for c in (*f.must, *f.should, *f.must_not))
    if isinstance(f, Nested):
        return filter_cost(f.filter)
    if isinstance(f, Match):
        return MATCH_COST
    if isinstance(f, Wildcard):
        return WILDCARD_COST
    if isinstance(f, Terms):
        return LEAF_COST + len(f.values) // TERMS_VALUES_PER_COST
    return LEAF_COST


def check_filter_cost(f: Filter | None, budget: int, field: str = "filter") -> None:
    """InvalidArgument naming ``field`` when the filter costs more than ``budget``."""
    if f is None:
        return
    cost = filter_cost(f)
    if cost > budget:
        raise InvalidArgument.field_error(
            field,
            f"costs {cost}, over the budget of {budget} per filter (ES_MAX_FILTER_COST): "
            f"a match clause costs {MATCH_COST}, a wildcard {WILDCARD_COST}, a terms clause "
            f"{LEAF_COST} plus 1 per {TERMS_VALUES_PER_COST} values, any other clause "
            f"{LEAF_COST}",
        )


# What a filtered vector search reads, in buffers, measured with EXPLAIN (ANALYZE, BUFFERS) on
# 100,000 single-part items of 384 dimensions (HNSW m=16, ef_construction=64, ef_search=100):
# scoring a matching item exactly reads about 5 (its head through the payload index, its parts
# through the unique index); the HNSW index's first pass about 1,800 whatever it returns; each
# part the iterative scan reads past that pass about 30 (graph pages, the part, its head).
EXACT_BUFFERS_PER_MATCH = 5
INDEX_FIRST_PASS_BUFFERS = 1800
INDEX_BUFFERS_PER_EXTRA_PART = 30


def exact_is_cheaper(matches: float, items: float, wanted: int, ef_search: int) -> bool:
    """Whether scoring every item a filter admits (``matches``, as the planner estimates them
    out of ``items``) reads less than walking the HNSW index until ``wanted`` parts match: the
    walk reads about ``wanted * items / matches`` parts, the first ``ef_search`` at once."""
    if matches < wanted:
        return True
    walked = wanted * max(items, matches) / matches
    index = INDEX_FIRST_PASS_BUFFERS + INDEX_BUFFERS_PER_EXTRA_PART * max(0.0, walked - ef_search)
    return EXACT_BUFFERS_PER_MATCH * matches <= index
