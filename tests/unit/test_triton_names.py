"""Triton model names carry the model id and are safe as directory names."""

from __future__ import annotations

import re

import pytest

from es_core.encoders.triton import grpc_target, triton_model_names

SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def test_a_plain_id_is_used_as_it_is() -> None:
    assert triton_model_names("all-minilm-l6-v2") == (
        "all-minilm-l6-v2-query",
        "all-minilm-l6-v2-item",
    )
    assert triton_model_names("all-minilm-l6-v2-ft-v3") == (
        "all-minilm-l6-v2-ft-v3-query",
        "all-minilm-l6-v2-ft-v3-item",
    )


@pytest.mark.parametrize(
    "model_id",
    [
        "models:/x/1",
        "a b",
        "../../etc",
        ".hidden",
        "ünïcode",
        "x" * 101,
        "a/b",
        "a\\b",
        "\x00",
        ".",
    ],
)
def test_any_other_id_maps_to_a_safe_name_that_still_shows_it(model_id: str) -> None:
    query, item = triton_model_names(model_id)
    for name in (query, item):
        assert SAFE.fullmatch(name), name
        assert len(name) <= 120
        assert name not in (".", "..")
    assert query.endswith("-query") and item.endswith("-item")
    assert query.removesuffix("-query") == item.removesuffix("-item")


def test_ids_that_clean_up_alike_keep_different_names() -> None:
    ids = ["a/b", "a:b", "a b", "a_b", "x" * 101, "x" * 102, "x" * 100]
    names = [triton_model_names(i)[0] for i in ids]
    assert len(set(names)) == len(ids)


def test_grpc_target_accepts_a_scheme() -> None:
    assert grpc_target("grpc://triton:8001") == "triton:8001"
    assert grpc_target("127.0.0.1:8001") == "127.0.0.1:8001"
