"""Which ranking a search runs: the one it asks for, else the collection's live spec as far as
the request allows (a collection that opts into hybrid ranking keeps answering vector-only and
sorted requests as before)."""

from __future__ import annotations

from dataclasses import dataclass

from es_core.config import Settings
from es_core.domain import Collection
from es_core.errors import InvalidArgument
from es_core.ranking.spec import VECTOR_RANKING, RankingSpec, check_ranking_spec, live_spec


@dataclass(frozen=True)
class Ranking:
    spec: RankingSpec
    # The collection's spec version it came from; 0 for the request's own spec or none set.
    version: int


def check_words(query_text: str, lexical_query: str, max_chars: int) -> str:
    """The words BM25 ranks by: the query text, else ``lexical_query`` (a vector query's)."""
    if lexical_query and query_text:
        raise InvalidArgument.field_error(
            "lexical_query", "must be empty with query_text (the query text is used)"
        )
    # Lexical ranking reads query_text without encoding it: check it here, as encoding would.
    for name, value in (("query_text", query_text), ("lexical_query", lexical_query)):
        if len(value) > max_chars or "\x00" in value:
            raise InvalidArgument.field_error(
                name, f"must be at most {max_chars} characters, without NUL"
            )
    return (query_text or lexical_query).strip()


def choose_ranking(
    requested: RankingSpec | None,
    collection: Collection,
    settings: Settings,
    *,
    words: str,
    sorted_by_field: bool,
    max_distance: float | None,
) -> Ranking:
    if requested is None:
        spec = live_spec(collection)
        if spec.uses_words and (not words or sorted_by_field):
            return Ranking(VECTOR_RANKING, 0)
        if spec.method == "lexical" and max_distance is not None:
            return Ranking(VECTOR_RANKING, 0)
        return Ranking(spec, collection.ranking_version or 0)
    check_ranking_spec(requested, collection, settings, "ranking")
    if requested.uses_words and not words:
        raise InvalidArgument.field_error(
            "ranking.method",
            f"{requested.method} ranking needs words: set query_text, or lexical_query beside"
            " query_vector",
        )
    if requested.method != "vector" and sorted_by_field:
        raise InvalidArgument.field_error(
            "sort", f"cannot be combined with {requested.method} ranking; use vector ranking"
        )
    if requested.method == "lexical" and max_distance is not None:
        raise InvalidArgument.field_error(
            "max_distance", "applies to the vector side: not with lexical ranking"
        )
    return Ranking(requested, 0)
