"""`es up --mlflow-ui`: the UI's command line, and a real UI process that answers reads,
refuses writes and stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from es_cli.embedded import free_port
from es_cli.mlflow_ui import (
    mlflow_ui_answers,
    mlflow_ui_command,
    mlflow_ui_url,
    start_mlflow_ui,
    wait_for_mlflow_ui,
)
from es_cli.process_group import stop_group
from es_core.config import Settings

pytestmark = pytest.mark.integration


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_command_for_the_embedded_store(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", mlflow_ui_port=5123)
    argv = mlflow_ui_command(settings, python="/py")
    assert argv is not None
    assert argv[:3] == ["/py", "-m", "es_cli.mlflow_read_only"]
    db = (tmp_path / "data" / "mlflow" / "mlflow.db").resolve()
    assert _option(argv, "--backend-store-uri") == f"sqlite:///{db}"
    assert _option(argv, "--host") == "127.0.0.1"
    assert _option(argv, "--port") == "5123"
    artifacts = (tmp_path / "data" / "mlflow" / "artifacts").resolve().as_uri()
    assert _option(argv, "--artifacts") == artifacts


@pytest.mark.parametrize(
    "uri", ["http://mlflow.example:5000", "https://mlflow.example", "databricks"]
)
def test_no_ui_of_its_own_for_an_external_tracking_server(tmp_path: Path, uri: str) -> None:
    settings = Settings(data_dir=tmp_path, mlflow_tracking_uri=uri)
    assert mlflow_ui_command(settings) is None
    assert start_mlflow_ui(settings, tmp_path / "logs" / "mlflow-ui.log") is None
    assert not (tmp_path / "mlflow").exists()


def test_a_configured_database_store_is_served_as_is(tmp_path: Path) -> None:
    uri = "postgresql://u@db.example/mlflow"
    argv = mlflow_ui_command(Settings(data_dir=tmp_path, mlflow_tracking_uri=uri))
    assert argv is not None
    assert _option(argv, "--backend-store-uri") == uri
    assert "--artifacts" not in argv


def _group_members(pgid: int) -> list[str]:
    out = subprocess.run(
        ["ps", "-o", "pid=,args=", "-g", str(pgid)], capture_output=True, text=True
    ).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def test_the_ui_answers_and_stops_leaving_no_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, mlflow_ui_port=free_port())
    log_path = data_dir / "logs" / "mlflow-ui.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    process = start_mlflow_ui(settings, log_path, env)
    assert process is not None
    url = mlflow_ui_url(settings)
    try:
        assert (data_dir / "mlflow").is_dir() and settings.mlflow_artifacts_dir.is_dir()
        started = time.monotonic()
        ready = wait_for_mlflow_ui(process, url, timeout=120)
        log_text = log_path.read_text(errors="replace")
        assert ready, f"no answer from {url} (exit code {process.poll()}):\n{log_text}"
        print(f"MLflow UI answered after {time.monotonic() - started:.1f}s", file=sys.stderr)
        with urllib.request.urlopen(f"{url}/", timeout=10) as reply:
            assert reply.status == 200
        assert (data_dir / "mlflow" / "mlflow.db").is_file()
        _reads_answer_and_writes_are_refused(url)
        assert len(_group_members(process.pid)) >= 1
    finally:
        stop_group(process, "the MLflow UI")
    assert process.returncode is not None
    assert _group_members(process.pid) == []
    assert not mlflow_ui_answers(url, timeout=1)


def _call(url: str, method: str, path: str, body: dict[str, object] | None = None) -> int:
    request = urllib.request.Request(
        f"{url}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _experiment_names(url: str) -> list[str]:
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/experiments/search",
        method="POST",
        data=json.dumps({"max_results": 100}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return [e["name"] for e in json.loads(reply.read())["experiments"]]


def _reads_answer_and_writes_are_refused(url: str) -> None:
    api = "/api/2.0/mlflow"
    # Reads: a GET, and a search that MLflow takes as a POST.
    assert _call(url, "GET", f"{api}/experiments/get-by-name?experiment_name=Default") == 200
    before = _experiment_names(url)
    assert "Default" in before
    # Writes, by every method: refused, and nothing changed.
    assert _call(url, "POST", f"{api}/experiments/create", {"name": "intruder"}) == 403
    assert _call(url, "POST", f"{api}/experiments/delete", {"experiment_id": "0"}) == 403
    assert _call(url, "POST", f"{api}/registered-models/create", {"name": "m"}) == 403
    assert _call(url, "PATCH", f"{api}/registered-models/update", {"name": "m"}) == 403
    assert _call(url, "DELETE", f"{api}/registered-models/delete", {"name": "m"}) == 403
    assert _call(url, "PUT", "/api/2.0/mlflow-artifacts/artifacts/0/x.txt", {}) == 403
    assert _call(url, "POST", "/ajax-api/2.0/mlflow/runs/create", {"experiment_id": "0"}) == 403
    assert _experiment_names(url) == before
    assert _call(url, "GET", f"{api}/registered-models/get?name=m") == 404
