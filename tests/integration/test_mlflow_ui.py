"""`es up --mlflow-ui`: the UI's command line, and a real UI process that answers and stops."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from es_cli.embedded import free_port
from es_cli.mlflow_ui import (
    mlflow_ui_answers,
    mlflow_ui_command,
    mlflow_ui_url,
    start_mlflow_ui,
    stop_mlflow_ui,
    wait_for_mlflow_ui,
)
from es_core.config import Settings

pytestmark = pytest.mark.integration


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_command_for_the_embedded_store(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", mlflow_ui_port=5123)
    argv = mlflow_ui_command(settings, python="/py")
    assert argv is not None
    assert argv[:4] == ["/py", "-m", "mlflow", "server"]
    db = (tmp_path / "data" / "mlflow" / "mlflow.db").resolve()
    assert _option(argv, "--backend-store-uri") == f"sqlite:///{db}"
    assert _option(argv, "--host") == "127.0.0.1"
    assert _option(argv, "--port") == "5123"
    assert _option(argv, "--workers") == "1"
    artifacts = (tmp_path / "data" / "mlflow" / "artifacts").resolve().as_uri()
    assert _option(argv, "--default-artifact-root") == artifacts
    assert _option(argv, "--artifacts-destination") == artifacts


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
    assert "--default-artifact-root" not in argv and "--artifacts-destination" not in argv


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
        # The launcher and the uvicorn process it spawned share the group.
        assert len(_group_members(process.pid)) >= 2
    finally:
        stop_mlflow_ui(process)
    assert process.returncode is not None
    assert _group_members(process.pid) == []
    assert not mlflow_ui_answers(url, timeout=1)
