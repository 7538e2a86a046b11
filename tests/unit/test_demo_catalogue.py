"""The built-in demo catalogue: deterministic, valid BEIR, judgements that point at real products,
and nicknames that only the queries use."""

from __future__ import annotations

from pathlib import Path

import pytest

from es_cli.demo_catalogue import KINDS, generate_catalogue, write_beir
from es_harness.beir import load_dataset


def test_the_same_seed_gives_the_same_catalogue_and_another_seed_another() -> None:
    first, again = generate_catalogue(3), generate_catalogue(3)
    assert first == again
    other = generate_catalogue(4)
    assert other.corpus != first.corpus or other.queries != first.queries


def test_default_size_is_small_but_big_enough_to_learn_from() -> None:
    data = generate_catalogue()
    assert len(data.corpus) == len(KINDS) * 50 == 400
    assert 150 <= len(data.queries) <= 200
    assert list(data.queries) == [str(i) for i in range(1, len(data.queries) + 1)]


def test_it_round_trips_through_the_beir_layout(tmp_path: Path) -> None:
    data = generate_catalogue(1, kinds=3, items_per_kind=12, queries_per_kind=6)
    write_beir(data, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "qrels", "queries.jsonl"]
    assert load_dataset(tmp_path) == data


def test_judgements_point_at_products_of_the_named_kind() -> None:
    data = generate_catalogue(2)
    nouns = {kind.nickname: kind.noun for kind in KINDS}
    for query_id, judged in data.qrels.items():
        assert query_id in data.queries
        assert 2 in judged.values(), "every query has a product that matches it fully"
        assert set(judged.values()) <= {1, 2}
        nickname = next(n for n in nouns if n in data.queries[query_id])
        for doc_id in judged:
            assert doc_id in data.corpus
            assert nouns[nickname] in data.corpus[doc_id].full_text


def test_no_product_text_contains_a_nickname() -> None:
    data = generate_catalogue()
    texts = " ".join(doc.full_text.lower() for doc in data.corpus.values())
    for kind in KINDS:
        assert kind.nickname not in texts
        assert any(kind.nickname in q for q in data.queries.values())


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="kinds"):
        generate_catalogue(kinds=len(KINDS) + 1)
    with pytest.raises(ValueError, match="at least 1"):
        generate_catalogue(items_per_kind=0)
