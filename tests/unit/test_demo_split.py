"""The dev split: integer ids by id % 5, any other ids by a stable hash; the two sides partition
the queries."""

from __future__ import annotations

import hashlib

from es_harness.beir import Dataset, Document
from es_harness.lifecycle import (
    HASHED_DEV_RULE,
    NUMERIC_DEV_RULE,
    is_dev_hashed,
    judged_query_ids,
    split_dev,
)


def test_integer_ids_split_by_id_mod_5() -> None:
    queries = {str(i): f"query {i}" for i in range(1, 21)}
    split = split_dev(queries)
    assert split.rule == NUMERIC_DEV_RULE
    assert sorted(split.dev, key=int) == ["5", "10", "15", "20"]
    assert set(split.train) | set(split.dev) == set(queries)
    assert not set(split.train) & set(split.dev)
    assert split.dev["10"] == "query 10"


def test_other_ids_split_by_a_stable_hash() -> None:
    queries = {f"q-{i}": f"query {i}" for i in range(500)}
    queries["7"] = "an integer id among others is hashed too"
    split = split_dev(queries)
    assert split.rule == HASHED_DEV_RULE
    expected = {q for q in queries if int(hashlib.sha256(q.encode()).hexdigest()[:8], 16) % 5 == 0}
    assert set(split.dev) == expected
    assert set(split.train) == set(queries) - expected
    assert 0.12 < len(split.dev) / len(queries) < 0.28
    assert split_dev(queries) == split  # the same in every run and process


def test_hashed_rule_does_not_depend_on_python_hash_seed() -> None:
    # sha256("q-0") starts with these 8 hex digits whatever PYTHONHASHSEED is.
    digits = hashlib.sha256(b"q-0").hexdigest()[:8]
    assert is_dev_hashed("q-0") == (int(digits, 16) % 5 == 0)


def test_judged_queries_need_a_relevant_document_in_the_corpus() -> None:
    data = Dataset(
        corpus={"d1": Document("d1", "", "text")},
        queries={"1": "a", "2": "b", "3": "c"},
        qrels={"1": {"d1": 1}, "2": {"missing": 1}, "3": {}, "4": {"d1": 2}},
    )
    assert judged_query_ids(data) == ["1"]
