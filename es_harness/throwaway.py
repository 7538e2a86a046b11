"""A whole `es up` stack in a throwaway data directory, for tests, benchmarks and demos."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from es_cli.embedded import free_ports

PORT_ATTEMPTS = 3
# What es up (its own check) and redis-server print when a port is taken.
PORT_TAKEN = ("is in use; choose another", "Address already in use")


class PortTaken(RuntimeError):
    """es up stopped at start because a port chosen for it was taken meanwhile."""


@dataclass
class StackInfo:
    data_dir: Path
    grpc_address: str
    postgres_dsn: str
    redis_url: str
    triton_url: str = ""
    # The CA to trust when the stack serves TLS it made (ES_LOCAL_TLS); "" = plaintext.
    tls_ca_file: str = ""
    # The client certificate and key es up made for mutual TLS (ES_LOCAL_MTLS); "" = none.
    tls_client_cert_file: str = ""
    tls_client_key_file: str = ""

    def log(self, name: str) -> str:
        """The log of one part: "server", "beat", "triton", "worker-<queue group>", or
        "worker": every worker's log, one after another."""
        logs = self.data_dir / "logs"
        if name == "worker":
            return "".join(p.read_text(errors="replace") for p in sorted(logs.glob("worker-*.log")))
        return (logs / f"{name}.log").read_text(errors="replace")


class ThrowawayStack:
    """Runs `python -m es_cli.main up` on free ports; stops it with SIGTERM on exit."""

    def __init__(self, data_dir: Path, *, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> StackInfo:
        # Another process may take a port between its choice here and es up binding it (tests
        # start stacks in parallel): es up then stops at once, naming it, and is started again.
        for _ in range(PORT_ATTEMPTS - 1):
            try:
                return self._start()
            except PortTaken:
                pass
        return self._start()

    def _start(self) -> StackInfo:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = free_ports(5)
        env = {
            **os.environ,
            "ES_DATA_DIR": str(self.data_dir),
            "ES_GRPC_PORT": str(ports[0]),
            "ES_REDIS_PORT": str(ports[1]),
            "ES_TRITON_GRPC_PORT": str(ports[2]),
            "ES_TRITON_HTTP_PORT": str(ports[3]),
            "ES_TRITON_METRICS_PORT": str(ports[4]),
            **self.extra_env,
        }
        for inherited in ("ES_POSTGRES_DSN", "ES_REDIS_URL", "ES_TRITON_URL"):
            if inherited not in self.extra_env:
                env.pop(inherited, None)
        out_path = self.data_dir / "es-up.out"
        with open(out_path, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "es_cli.main", "up"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        stack_file = self.data_dir / "stack.json"
        deadline = time.monotonic() + 240
        while not stack_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                said = out_path.read_text(errors="replace")
                if any(words in said for words in PORT_TAKEN):
                    raise PortTaken(said)
                raise RuntimeError("es up did not start:\n" + said)
            time.sleep(0.2)
        info = json.loads(stack_file.read_text())
        return StackInfo(
            self.data_dir,
            info["grpc_address"],
            info["postgres_dsn"],
            info["redis_url"],
            info.get("triton_url", ""),
            info.get("tls_ca_file", ""),
            info.get("tls_client_cert_file", ""),
            info.get("tls_client_key_file", ""),
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
