"""``es up --mlflow-ui``: the MLflow UI over the stack's tracking store, on localhost.

The UI is ``python -m mlflow server`` (UI + REST API) as one more child of ``es up``: one
uvicorn worker, no MLflow job runner, bound to 127.0.0.1. It is started in its own session so
that stopping it can signal the MLflow launcher and the uvicorn process it spawns together.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

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
        "mlflow",
        "server",
        "--backend-store-uri",
        settings.resolved_mlflow_tracking_uri,
        "--host",
        HOST,
        "--port",
        str(settings.mlflow_ui_port),
        "--workers",
        "1",
    ]
    if not settings.mlflow_tracking_uri:
        artifacts = settings.mlflow_artifacts_dir.as_uri()
        argv += ["--default-artifact-root", artifacts, "--artifacts-destination", artifacts]
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
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        # Own session (and process group): a terminal Ctrl-C reaches only `es up`.
        return subprocess.Popen(
            argv,
            env=mlflow_ui_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


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


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we cannot signal: still there
        return True
    return True


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop_mlflow_ui(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the UI's process group (launcher and uvicorn), SIGKILL what outlives ``timeout``."""
    pgid = process.pid  # the session leader: its pid is the group id
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("the MLflow UI did not stop in %.0f s; killing it", timeout)
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)
    process.wait()
