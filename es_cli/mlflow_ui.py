"""``es up --mlflow-ui``: the MLflow UI over the stack's tracking store, on localhost.

The UI is MLflow's server application (UI + REST API) behind a guard that refuses every write
(``es_cli.mlflow_read_only``), as one more child of ``es up``: one uvicorn process, no MLflow
job runner, bound to 127.0.0.1, in its own process group, stopped with it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from es_cli.process_group import spawn
from es_core.config import Settings

log = logging.getLogger("es.mlflow_ui")

HOST = "127.0.0.1"
# Tracking URIs with these schemes name a tracking *server*, which has a UI of its own.
SERVER_SCHEMES = frozenset({"http", "https", "databricks"})


def external_tracking_server(settings: Settings) -> str | None:
    """The configured tracking server whose UI is to be used, or None if the store is ours."""
    uri = settings.mlflow_tracking_uri
    # "databricks" alone (no "://") names a Databricks workspace too.
    if uri and uri.split(":", 1)[0].lower() in SERVER_SCHEMES:
        return uri
    return None


def mlflow_ui_url(settings: Settings) -> str:
    return f"http://{HOST}:{settings.mlflow_ui_port}"


def mlflow_ui_command(settings: Settings, python: str = sys.executable) -> list[str] | None:
    """The UI's command line, or None when the tracking URI is a server (use its UI instead).

    The embedded store (``ES_MLFLOW_TRACKING_URI`` empty) is the sqlite database in the data
    directory; experiments created from the UI then keep their artifacts next to the ones the
    workers log (``mlflow_artifacts_dir``). A configured database/file store is served as is.
    """
    if external_tracking_server(settings) is not None:
        return None
    argv = [
        python,
        "-m",
        "es_cli.mlflow_read_only",
        "--backend-store-uri",
        settings.resolved_mlflow_tracking_uri,
        "--host",
        HOST,
        "--port",
        str(settings.mlflow_ui_port),
    ]
    if not settings.mlflow_tracking_uri:
        argv += ["--artifacts", settings.mlflow_artifacts_dir.as_uri()]
    return argv


def mlflow_ui_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The UI's environment: no job runner (extra processes the UI does not need), no telemetry."""
    env = dict(os.environ if base is None else base)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return env


def start_mlflow_ui(
    settings: Settings, log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes] | None:
    """Start the UI (not waiting for it to answer); None when an external server's UI applies."""
    argv = mlflow_ui_command(settings)
    if argv is None:
        log.info(
            "ES_MLFLOW_TRACKING_URI is the tracking server %s: use its UI; "
            "--mlflow-ui starts none of its own",
            settings.mlflow_tracking_uri,
        )
        return None
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    if not settings.mlflow_tracking_uri:
        settings.mlflow_artifacts_dir.mkdir(parents=True, exist_ok=True)
    return spawn(argv, mlflow_ui_env(env), log_path)


def mlflow_ui_answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as reply:
            return int(reply.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_for_mlflow_ui(
    process: subprocess.Popen[bytes],
    url: str,
    timeout: float,
    cancelled: Callable[[], bool] = lambda: False,
) -> bool:
    """Poll ``/health`` until it answers 200; False on timeout, exit of the UI or cancel."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cancelled():
        if process.poll() is not None:
            return False
        if mlflow_ui_answers(url):
            return True
        time.sleep(0.5)
    return False


def announce_when_ready(
    process: subprocess.Popen[bytes], url: str, timeout: float, stopping: threading.Event
) -> threading.Thread:
    """Print the UI's URL once it answers, from a daemon thread (the stack does not wait)."""

    def run() -> None:
        if wait_for_mlflow_ui(process, url, timeout, stopping.is_set):
            print(f"MLflow UI is serving on {url}", flush=True)
        elif not stopping.is_set() and process.poll() is None:
            log.warning("the MLflow UI did not answer on %s within %.0fs", url, timeout)

    thread = threading.Thread(target=run, name="mlflow-ui-ready", daemon=True)
    thread.start()
    return thread
