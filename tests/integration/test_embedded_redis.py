"""The embedded Redis: a password kept in its data directory (owner-only) and given on no command
line, unauthenticated commands and CONFIG/DEBUG/MODULE refused, loopback only, never root; the
broker URL every process builds from settings carries the password."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from es_broker.celery_sender import broker_app
from es_cli.embedded import EmbeddedRedis, free_port, start_redis
from es_core.config import Settings, redacted_url

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    started = start_redis(tmp_path / "redis", free_port())
    yield started
    started.stop()


def test_the_password_is_generated_once_and_readable_by_its_owner_only(
    tmp_path: Path, server: EmbeddedRedis
) -> None:
    path = tmp_path / "redis" / "password"
    assert path.read_text() == server.password and len(server.password) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_uid == os.geteuid()
    server.stop()
    again = start_redis(tmp_path / "redis", free_port())
    try:
        assert again.password == server.password
    finally:
        again.stop()


def test_commands_without_the_password_are_refused(server: EmbeddedRedis) -> None:
    anonymous = redis.Redis(port=server.port, protocol=2)
    with pytest.raises(redis.AuthenticationError):
        anonymous.set("k", "v")
    wrong = redis.Redis(port=server.port, password="guess", protocol=2)
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    owner = redis.Redis(port=server.port, password=server.password)
    assert owner.get("k") is None


@pytest.mark.parametrize(
    "command",
    [
        ("CONFIG", "SET", "dir", "/tmp"),
        ("CONFIG", "GET", "*"),
        ("DEBUG", "SLEEP", "0"),
        ("MODULE", "LOAD", "/tmp/x.so"),
    ],
)
def test_config_debug_and_module_are_refused_even_with_the_password(
    server: EmbeddedRedis, command: tuple[str, ...]
) -> None:
    owner = redis.Redis(port=server.port, password=server.password)
    with pytest.raises(redis.ResponseError, match="unknown command"):
        owner.execute_command(*command)
    assert owner.ping()


def test_no_command_line_shows_the_password_and_it_is_not_root(server: EmbeddedRedis) -> None:
    listing = subprocess.run(["ps", "-eo", "user,args"], capture_output=True, text=True).stdout
    assert server.password not in listing
    process = psutil.Process(server.process.pid)
    assert server.password not in " ".join(process.cmdline())
    assert process.uids().effective != 0
    if os.geteuid() == 0:
        assert process.username() == "nobody"
    listening = [c.laddr for c in process.net_connections() if c.status == psutil.CONN_LISTEN]
    assert listening and all(address.ip == "127.0.0.1" for address in listening)


def test_the_broker_url_carries_the_password_but_its_redacted_form_does_not(
    server: EmbeddedRedis,
) -> None:
    settings = Settings(redis_port=server.port, redis_password=server.password)
    assert server.password not in repr(settings)
    assert server.password not in redacted_url(settings.broker_url)
    with broker_app(settings).connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        assert server.password not in connection.as_uri()
    without = Settings(redis_port=server.port)
    with broker_app(without).connection_for_write() as connection:
        with pytest.raises(Exception, match="(?i)auth"):
            connection.ensure_connection(max_retries=0)
