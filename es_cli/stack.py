"""``es up``: start every part of the embedded stack, watch them, stop them all cleanly."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from es_cli.embedded import EmbeddedPostgres, EmbeddedRedis, start_postgres, start_redis
from es_cli.local_tls import ensure_client_certificate, ensure_local_tls
from es_cli.mlflow_ui import (
    announce_when_ready,
    mlflow_ui_command,
    mlflow_ui_url,
    start_mlflow_ui,
)
from es_cli.process_group import die_with_parent, last_lines, spawn, stop_group
from es_cli.reaper import Reaper
from es_cli.restarts import RestartPolicy
from es_core.config import Settings, redacted_url
from es_core.encoders.triton import models_ready, triton_model_names
from es_core.errors import Unavailable
from es_core.observability import multiprocess
from es_core.plugins.protocol import FineTuningMethod
from es_core.plugins.registry import PluginError, load_plugin
from es_core.storage.bootstrap import prepare_database
from es_core.storage.db import create_pool
from es_workers.queues import GROUPS

log = logging.getLogger("es.up")
STACK_FILE = "stack.json"
MLFLOW_UI = "mlflow-ui"
TRITON = "triton"
BEAT = "beat"
SERVER = "server"


def worker_name(group: str) -> str:
    """The child serving a queue group (its log: logs/worker-<group>.log)."""
    return f"worker-{group}"


# Stopped in this order: nothing new is scheduled or asked for, then the workers finish, and
# Triton goes last (the server and the workers encode through it until they stop).
STOP_ORDER = [MLFLOW_UI, BEAT, SERVER, *(worker_name(g) for g in GROUPS), TRITON]
# Triton starts in seconds; loading the blue model's encoders takes a few more.
TRITON_READY_SECONDS = 300.0
# How long the UI gets to answer before `es up` logs a warning (the stack never waits for it).
MLFLOW_UI_READY_SECONDS = 300.0


class GaveUp(RuntimeError):
    """A child died too often within the restart window; the stack stops."""


@dataclass
class Child:
    """One supervised process, and how to start it again."""

    start: Callable[[], subprocess.Popen[bytes]]
    log_path: Path
    process: subprocess.Popen[bytes]
    restart_at: float | None = None


@dataclass
class Stack:
    """The running parts; ``stop`` undoes ``start`` in reverse order, whatever failed."""

    settings: Settings
    mlflow_ui: bool = False
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    children: dict[str, Child] = field(default_factory=dict)
    reaper: Reaper | None = None
    postgres_dsn: str = ""
    redis_url: str = ""
    mlflow_ui_url: str = ""
    triton_url: str = ""
    # The CA clients trust when es up made the server's certificate ("" otherwise).
    tls_ca_file: str = ""
    # The client certificate and key es up made when the server asks for one (mutual TLS).
    tls_client_cert_file: str = ""
    tls_client_key_file: str = ""
    _lock_file: IO[str] | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def grpc_address(self) -> str:
        return f"{self.settings.grpc_host}:{self.settings.grpc_port}"

    def start(self) -> None:
        data_dir = self.settings.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        lock_file = open(data_dir / "es-up.lock", "w")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise SystemExit(f"another `es up` is running on {data_dir}") from None
        # Held from here: only the holder's stop removes what the running stack wrote.
        self._lock_file = lock_file
        # The same check the server and worker make, before anything starts.
        try:
            plugin = load_plugin(self.settings)
        except PluginError as exc:
            raise SystemExit(f"es up: {exc}") from None
        logs = data_dir / "logs"
        logs.mkdir(exist_ok=True)
        # First: whatever starts after it is stopped even if `es up` is killed.
        self.reaper = Reaper()
        if self.mlflow_ui:
            # First: it is the slowest to answer, and nothing else waits for it.
            self._start_mlflow_ui(logs / "mlflow-ui.log")

        if self.settings.postgres_dsn:
            self.postgres_dsn = self.settings.postgres_dsn
        else:
            self.postgres = start_postgres(self.settings.embedded_postgres_dir.resolve())
            self.reaper.guard_postmaster(self.postgres.pid)
            self.postgres_dsn = self.postgres.dsn
        log.info("postgres: %s", self.postgres_dsn)
        if self.settings.redis_url:
            self.redis_url = self.settings.redis_url
        else:
            port = self.settings.redis_port
            if not _port_is_free(port):
                raise RuntimeError(
                    f"port {port} for Redis is in use; choose another with ES_REDIS_PORT"
                )
            self.redis = start_redis(
                self.settings.embedded_redis_dir,
                port,
                user=self.settings.redis_user,
                preexec_fn=die_with_parent(os.getpid()),
            )
            self.reaper.guard_group(self.redis.process.pid)
            self.redis_url = self.redis.url
        log.info("redis: %s", redacted_url(self.redis_url))
        blue_model_id = asyncio.run(self._prepare_database(plugin))

        env = {
            **os.environ,
            "ES_DATA_DIR": str(data_dir),
            "ES_POSTGRES_DSN": self.postgres_dsn,
            "ES_REDIS_URL": self.redis_url,
            "ES_GRPC_HOST": self.settings.grpc_host,
            "ES_GRPC_PORT": str(self.settings.grpc_port),
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        # Importing es_workers here chose this process's metrics directory: each child
        # chooses its own (workers sharing one would count each other's tasks).
        env.pop(multiprocess.ENV, None)
        self._prepare_tls(env, data_dir / "tls")
        if self.redis is not None:
            # The environment, never a command line: `ps` shows every user the arguments.
            env["ES_REDIS_PASSWORD"] = self.redis.password
        self._start_triton(env, logs, blue_model_id)
        if self.triton_url:
            env["ES_TRITON_URL"] = self.triton_url
        for index, group in enumerate(GROUPS):
            # One task at a time per group, in the worker's own process: a small machine's
            # choice (every worker loads the models it uses); `es worker` defaults are larger.
            # One host: each group's worker serves its metrics on the next port up from the
            # worker metrics port (in deploy/ each worker has its own container and port).
            first_port = self.settings.resolved_worker_metrics_port
            group_env = (
                {**env, "ES_WORKER_METRICS_PORT": str(first_port + index)} if first_port else env
            )
            self._spawn_es(
                worker_name(group),
                ["worker", "--queues", group, "--pool", "solo", "--concurrency", "1"],
                group_env,
                logs,
            )
        # The one scheduler of periodic tasks: its own child, so that a worker restarted (or
        # several workers) never means two beats sending every periodic task twice.
        self._spawn_es(BEAT, ["beat"], env, logs)
        self._spawn_es(SERVER, ["server"], env, logs)
        self._wait_until_serving(timeout=180)
        self._write_stack_file()

    def _prepare_tls(self, env: dict[str, str], directory: Path) -> None:
        """The local CA's server certificate (``--tls``), and for mutual TLS (``--mtls``, or a
        client CA of the operator's) a client certificate for the readiness probe and the
        operator; the server then trusts client certificates the local CA signed as well."""
        s = self.settings
        local_server = (s.local_tls or s.local_mtls) and s.tls_cert_file is None
        serves_tls = local_server or s.tls_cert_file is not None
        mutual = serves_tls and (s.local_mtls or s.tls_client_ca_file is not None)
        if not (local_server or mutual):
            return
        tls = ensure_local_tls(directory, s.grpc_host)
        if local_server:
            env["ES_TLS_CERT_FILE"] = str(tls.cert_file)
            env["ES_TLS_KEY_FILE"] = str(tls.key_file)
            self.tls_ca_file = str(tls.ca_file)
            log.info("tls: clients trust %s", tls.ca_file)
        if not mutual:
            return
        client = ensure_client_certificate(tls)
        authorities = tls.ca_file.read_bytes()
        if s.tls_client_ca_file is not None:
            authorities = s.tls_client_ca_file.read_bytes().rstrip() + b"\n" + authorities
        bundle = directory / "client-ca.pem"
        bundle.write_bytes(authorities)
        env["ES_TLS_CLIENT_CA_FILE"] = str(bundle)
        self.tls_client_cert_file = str(client.cert_file)
        self.tls_client_key_file = str(client.key_file)
        log.info(
            "mtls: callers present a client certificate signed by %s; es up's own: %s",
            "the local CA"
            if s.tls_client_ca_file is None
            else f"{s.tls_client_ca_file} or the local CA",
            client.cert_file,
        )

    def _write_stack_file(self) -> None:
        """What tests and tools read about the running stack (no secrets: others may read it)."""
        data_dir = self.settings.data_dir.resolve()
        info: dict[str, object] = {
            "grpc_address": self.grpc_address,
            "postgres_dsn": self.postgres_dsn,
            "redis_url": redacted_url(self.redis_url),
            "pids": {name: child.process.pid for name, child in self.children.items()},
        }
        if self.mlflow_ui_url:
            info["mlflow_ui_url"] = self.mlflow_ui_url
        if self.triton_url:
            info["triton_url"] = self.triton_url
        if self.tls_ca_file:
            info["tls_ca_file"] = self.tls_ca_file
        if self.tls_client_cert_file:
            info["tls_client_cert_file"] = self.tls_client_cert_file
            info["tls_client_key_file"] = self.tls_client_key_file
        # Written whole, then renamed: whoever waits for the file never reads half of it.
        partial = data_dir / f"{STACK_FILE}.partial"
        partial.write_text(json.dumps(info, indent=2))
        partial.replace(data_dir / STACK_FILE)

    def _start_mlflow_ui(self, log_path: Path) -> None:
        """Start the UI unless the tracking URI is a server with its own; announce it when up."""
        port = self.settings.mlflow_ui_port
        if mlflow_ui_command(self.settings) is not None and not _port_is_free(port):
            raise RuntimeError(
                f"port {port} for the MLflow UI is in use; choose another with ES_MLFLOW_UI_PORT"
            )
        process = start_mlflow_ui(self.settings, log_path)
        if process is None:
            return

        def restart() -> subprocess.Popen[bytes]:
            again = start_mlflow_ui(self.settings, log_path)
            assert again is not None
            return again

        self._adopt(MLFLOW_UI, restart, log_path, process)
        self.mlflow_ui_url = mlflow_ui_url(self.settings)
        log.info("%s started (pid %d, log %s)", MLFLOW_UI, process.pid, log_path)
        announce_when_ready(process, self.mlflow_ui_url, MLFLOW_UI_READY_SECONDS, self._stopping)

    async def _prepare_database(self, plugin: FineTuningMethod) -> str:
        """Migrate and bootstrap with the plugin's initial model; returns the blue collection's
        model id."""
        pool = await create_pool(self.settings, self.postgres_dsn, max_size=2)
        try:
            blue = await prepare_database(pool, self.settings, plugin)
            log.info("blue collection: %s (model %s)", blue.collection_id, blue.model.model_id)
            return blue.model.model_id
        finally:
            await pool.close()

    def _start_triton(self, env: dict[str, str], logs: Path, blue_model_id: str) -> None:
        """An external Triton (ES_TRITON_URL) is used as it is; else, unless models are served
        in-process, start the local one and wait until it serves the blue model."""
        if self.settings.triton_url:
            self.triton_url = self.settings.triton_url
            log.info("triton: %s (external)", self.triton_url)
            return
        if not self.settings.serve_with_triton:
            log.info("triton: none; models are served in-process (ES_SERVE_WITH_TRITON=false)")
            return
        s = self.settings
        for what, port in [
            ("ES_TRITON_GRPC_PORT", s.triton_grpc_port),
            ("ES_TRITON_HTTP_PORT", s.triton_http_port),
            ("ES_TRITON_METRICS_PORT", s.triton_metrics_port),
        ]:
            if not _port_is_free(port):
                raise RuntimeError(f"port {port} for Triton is in use; choose another with {what}")
        self._spawn_es(TRITON, ["triton"], env, logs)
        url = f"{s.triton_host}:{s.triton_grpc_port}"
        self._wait_until_triton_serves(url, blue_model_id, TRITON_READY_SECONDS)
        self.triton_url = url
        log.info("triton: %s (serving %s)", url, blue_model_id)

    def _wait_until_triton_serves(self, url: str, model_id: str, timeout: float) -> None:
        names = list(triton_model_names(model_id))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            try:
                if all(models_ready(url, names, timeout=1).values()):
                    return
            except Unavailable:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            f"Triton at {url} did not serve model {model_id} within {timeout:.0f}s; see its log"
        )

    def _spawn_es(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> None:
        """Start ``es <command>`` as the child ``name``, logging to ``logs/<name>.log``."""
        argv = [sys.executable, "-m", "es_cli.main", *command]
        log_path = logs / f"{name}.log"

        def start() -> subprocess.Popen[bytes]:
            return spawn(argv, env, log_path)

        self._adopt(name, start, log_path, start())
        log.info("%s started (pid %d, log %s)", name, self.children[name].process.pid, log_path)

    def _adopt(
        self,
        name: str,
        start: Callable[[], subprocess.Popen[bytes]],
        log_path: Path,
        process: subprocess.Popen[bytes],
    ) -> None:
        assert self.reaper is not None
        self.reaper.guard_group(process.pid)
        self.children[name] = Child(start, log_path, process)

    def _wait_until_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._health_channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                self.check_children()
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.5)
        raise RuntimeError(f"the gRPC server did not become healthy within {timeout:.0f}s")

    def _health_channel(self) -> grpc.Channel:
        """Plaintext, or TLS trusting the local CA (else the system's roots) when it serves TLS,
        presenting es up's client certificate when the server asks for one (mutual TLS).
        Health needs no API key (ES_AUTH_OPEN_SERVICES)."""
        if self.tls_ca_file:
            root: bytes | None = Path(self.tls_ca_file).read_bytes()
        elif self.settings.tls_cert_file is not None:
            root = None
        else:
            return grpc.insecure_channel(self.grpc_address)
        key, chain = None, None
        if self.tls_client_cert_file:
            key = Path(self.tls_client_key_file).read_bytes()
            chain = Path(self.tls_client_cert_file).read_bytes()
        credentials = grpc.ssl_channel_credentials(root, private_key=key, certificate_chain=chain)
        return grpc.secure_channel(self.grpc_address, credentials)

    def check_children(self) -> None:
        """While starting, any child that dies stops the start (a port taken, a bad setting)."""
        for name, child in self.children.items():
            if child.process.poll() is not None:
                code = child.process.returncode
                raise RuntimeError(f"{name} exited with code {code}; see its log")

    def supervise(self, policy: RestartPolicy, now: float) -> None:
        """Once started: a child that died is restarted after its backoff; one that died too
        often raises ``GaveUp`` naming it, with the end of its log."""
        for name, child in self.children.items():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(name, child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            # What the dead child left in its group (a launcher's own children) goes too.
            stop_group(child.process, name, timeout=10)
            assert self.reaper is not None
            self.reaper.forget_group(child.process.pid)
            delay = policy.failed(name, now)
            if delay is None:
                raise GaveUp(
                    f"{name} exited with code {code}: {policy.failures(name)} failures within "
                    f"{policy.window:.0f}s, giving up. The end of {child.log_path}:\n"
                    + last_lines(child.log_path)
                )
            log.warning("%s exited with code %s; restarting it in %.1fs", name, code, delay)
            child.restart_at = now + delay

    def _restart(self, name: str, child: Child) -> None:
        child.process = child.start()
        child.restart_at = None
        assert self.reaper is not None
        self.reaper.guard_group(child.process.pid)
        log.info("%s restarted (pid %d)", name, child.process.pid)
        self._write_stack_file()

    def stop(self) -> None:
        self._stopping.set()
        for name in STOP_ORDER:
            child = self.children.get(name)
            if child is None:
                continue
            stop_group(child.process, name)
            if self.reaper is not None:
                self.reaper.forget_group(child.process.pid)
            log.info("%s stopped", name)
        if self.redis is not None:
            self.redis.stop()
            log.info("redis stopped")
        if self.postgres is not None:
            self.postgres.stop()
            log.info("postgres stopped")
        if self.reaper is not None:
            self.reaper.close()
        if self._lock_file is not None:
            (self.settings.data_dir.resolve() / STACK_FILE).unlink(missing_ok=True)
            self._lock_file.close()


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # As uvicorn binds: a port left in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_stack(settings: Settings, *, mlflow_ui: bool = False) -> int:
    """Start, report, wait for SIGTERM / SIGINT or a dying part, stop. The exit code says which."""
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack = Stack(settings, mlflow_ui=mlflow_ui)
    policy = RestartPolicy(
        backoff=settings.restart_backoff_seconds,
        max_backoff=settings.restart_max_backoff_seconds,
        max_failures=settings.restart_max_failures,
        window=settings.restart_window_seconds,
    )
    code = 0
    try:
        stack.start()
        print(
            f"Embedding Studio is serving on {stack.grpc_address} (data in {settings.data_dir})",
            flush=True,
        )
        while not stopping:
            stack.supervise(policy, time.monotonic())
            time.sleep(0.2)
    except (RuntimeError, OSError) as exc:
        log.error("%s", exc)
        code = 1
    finally:
        stack.stop()
    return code
