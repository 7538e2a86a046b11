"""The whole spine through gRPC: real abstracts in, judged claims find them."""

from __future__ import annotations

import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2, search_pb2
from es_harness.beir import Dataset
from tests.e2e.conftest import N_DOCS

pytestmark = pytest.mark.e2e


def test_judged_abstracts_are_found_for_most_claims(
    client: Client, scifact_slice: tuple[Dataset, dict[str, str]]
) -> None:
    data, claims = scifact_slice
    assert len(claims) >= 40
    found = 0
    for query_id, claim in claims.items():
        reply = client.search.Search(search_pb2.SearchRequest(query_text=claim, limit=10))
        returned = [r.object_id for r in reply.results]
        assert len(returned) == 10 and len(set(returned)) == 10
        found += any(doc_id in returned for doc_id in data.qrels[query_id])
    assert found / len(claims) >= 0.8, f"judged abstract in top 10 for {found}/{len(claims)}"


def test_count_and_payload_filter_see_the_upserted_abstracts(
    client: Client, scifact_slice: tuple[Dataset, dict[str, str]]
) -> None:
    source = common_pb2.Filter(term=common_pb2.TermFilter(field="source"))
    source.term.value.string_value = "scifact"
    reply = client.search.CountItems(search_pb2.CountItemsRequest(filter=source))
    assert reply.count == N_DOCS
