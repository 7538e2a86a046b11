"""Which requests the read-only MLflow UI lets through."""

from __future__ import annotations

import pytest

from es_cli.mlflow_read_only import is_read


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/2.0/mlflow/experiments/get-by-name"),
        ("HEAD", "/health"),
        ("OPTIONS", "/api/2.0/mlflow/runs/create"),
        ("POST", "/api/2.0/mlflow/runs/search"),
        ("POST", "/ajax-api/2.0/mlflow/experiments/search"),
        ("POST", "/api/3.0/mlflow/traces/search"),
        ("POST", "/graphql"),
    ],
)
def test_reads_pass(method: str, path: str) -> None:
    assert is_read(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/2.0/mlflow/runs/create"),
        ("POST", "/api/2.0/mlflow/experiments/delete"),
        ("POST", "/ajax-api/2.0/mlflow/registered-models/create"),
        ("POST", "/api/2.0/mlflow/runs/search/../delete"),
        ("POST", "/api/2.0/mlflow/runs/searchx"),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/model.pt"),
        ("PATCH", "/api/2.0/mlflow/registered-models/update"),
        ("DELETE", "/api/2.0/mlflow/registered-models/delete"),
        ("POST", "/some/unknown/path"),
        ("TRACE", "/"),
    ],
)
def test_writes_and_unknowns_are_refused(method: str, path: str) -> None:
    assert not is_read(method, path)
