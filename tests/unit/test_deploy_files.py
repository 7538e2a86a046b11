"""The committed deploy/ files: compose, kustomize manifests and Dockerfiles pass the checks of
scripts/check_deploy.py, and hold the topology the README promises."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from es_server.dependency_health import LIVENESS
from es_workers.app import QUEUES

ROOT = Path(__file__).resolve().parents[2]


def _load_checks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_deploy", ROOT / "scripts/check_deploy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_deploy"] = module
    spec.loader.exec_module(module)
    return module


checks = _load_checks()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return checks.load_compose()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return checks.render_kustomization()  # type: ignore[no-any-return]


def _named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_compose_passes_dclint_and_its_structure_checks(compose: dict[str, Any]) -> None:
    assert checks.dclint_problems() == []
    assert checks.compose_problems(compose) == []


def test_every_depends_on_names_a_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    named = {t for s in services.values() for t in checks.depends_on_names(s)}
    assert named and named <= set(services)
    # Migrations run before every process of ours that keeps the `es` entrypoint.
    for command in checks.compose_commands(compose):
        name = command.where.removeprefix("compose:")
        if name != "migrate":
            conditions = services[name]["depends_on"]
            assert conditions["migrate"]["condition"] == "service_completed_successfully"


def test_compose_has_the_processes_of_the_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("pgvector", "redis", "triton", "migrate", "server", "beat", "mlflow"):
        assert name in services
    assert "prometheus" in services
    by_service = {c.where: c.subcommand for c in checks.compose_commands(compose)}
    assert by_service["compose:server"] == ("server",)
    assert by_service["compose:migrate"] == ("migrate",)
    assert by_service["compose:beat"] == ("beat",)
    assert by_service["compose:triton"] == ("triton",)
    # mlflow runs our image with its own entrypoint: no `es` command to resolve.
    assert "compose:mlflow" not in by_service
    assert "compose:pgvector" not in by_service


@pytest.mark.parametrize("source", ["compose", "k8s"])
def test_each_queue_group_runs_once_and_all_queues_are_covered(
    source: str, compose: dict[str, Any], objects: list[dict[str, Any]]
) -> None:
    commands = (
        checks.compose_commands(compose) if source == "compose" else checks.k8s_commands(objects)
    )
    assert checks.worker_group_problems(commands, QUEUES, source) == []
    workers = [c for c in commands if c.subcommand == ("worker",)]
    assert len(workers) == len(checks.QUEUE_GROUPS)
    consumed = {q for c in workers for q in checks.option_value(c.args, "--queues").split(",")}
    assert consumed == set(QUEUES)


def test_prometheus_scrapes_every_compose_process_of_ours(compose: dict[str, Any]) -> None:
    import yaml

    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    names = {
        name
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    ours = {c.where.removeprefix("compose:") for c in checks.compose_commands(compose)}
    assert ours - {"migrate"} <= names
    assert names <= set(compose["services"])


def test_k8s_renders_with_the_namespace_and_image(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        if obj["kind"] == "Namespace":
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == "embedding-studio"
    images = {c["image"] for o in objects for c in checks.containers(o)}
    assert images == {"embedding-studio:0.1.0"}


def test_k8s_objects_are_valid_kubernetes(objects: list[dict[str, Any]]) -> None:
    assert checks.schema_problems(objects) == []


def test_k8s_objects_keep_the_promises_beyond_the_schemas(objects: list[dict[str, Any]]) -> None:
    assert checks.k8s_problems(objects) == []


def test_k8s_has_the_topology(objects: list[dict[str, Any]]) -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for name in (
        "server",
        "beat",
        "triton",
        "mlflow",
        "worker-upsertion",
        "worker-bulk",
        "worker-improvement",
        "worker-fine-tuning",
        "worker-deployment",
    ):
        assert ("Deployment", name) in kinds
    assert ("Job", "es-migrate") in kinds
    assert ("PodDisruptionBudget", "server") in kinds
    assert {n for k, n in kinds if k == "HorizontalPodAutoscaler"} == {"server", "worker-upsertion"}
    # Settings come from one ConfigMap and one Secret, and every process of ours reads both.
    for command in checks.k8s_commands(objects):
        kind, name, container = command.where.removeprefix("k8s:").split("/")
        [spec] = [
            c for c in checks.containers(_named(objects, kind, name)) if c["name"] == container
        ]
        refs = [next(iter(source.values()))["name"] for source in spec["envFrom"]]
        assert refs == ["es-config", "es-secrets"]


def test_server_probes_are_native_grpc(objects: list[dict[str, Any]]) -> None:
    [server] = checks.containers(_named(objects, "Deployment", "server"))
    for probe in ("startupProbe", "readinessProbe"):
        assert server[probe]["grpc"] == {"port": 50051}
    # Liveness asks for the service that needs nothing: an outage of PostgreSQL restarts no pod.
    assert server["livenessProbe"]["grpc"] == {"port": 50051, "service": LIVENESS}


def test_secret_is_a_template_of_placeholders(objects: list[dict[str, Any]]) -> None:
    secret = _named(objects, "Secret", "es-secrets")
    assert "REPLACE_ME" in secret["stringData"]["ES_POSTGRES_DSN"]
    config = _named(objects, "ConfigMap", "es-config")
    # Nothing secret in the ConfigMap.
    assert not set(config["data"]) & set(secret["stringData"])
    assert not any("PASSWORD" in key or "DSN" in key for key in config["data"])


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_pass_hadolint_and_the_structure_check(name: str) -> None:
    path = ROOT / "deploy" / name
    assert checks.dockerfile_problems(path) == []
    assert checks.hadolint_problems([path]) == []
    text = path.read_text()
    # Torch pinned as pyproject.toml pins it; the CPU image takes it from the CPU index.
    assert '"torch==2.13.0"' in text
    if name == "Dockerfile":
        assert "FROM python:3.11-slim" in text
        assert "--index-url https://download.pytorch.org/whl/cpu" in text


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".es-data", "node_modules", "*.pem", "*.key"):
        assert entry in ignored
