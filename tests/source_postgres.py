"""A customer's own PostgreSQL for the postgres loader's tests: a second database on the
session's embedded server, and a DSN that reaches nothing."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

import asyncpg

SOURCE_DATABASE = "customer_src"
# A password distinctive enough that a test can tell it never leaks into an error.
UNREACHABLE_PASSWORD = "Pw-never-shown-7f3a9c"


async def create_source_database(server_dsn: str, name: str = SOURCE_DATABASE) -> str:
    """A new, empty database on the server (dropped first if a previous run left it);
    returns its DSN."""
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(server_dsn)._replace(path="/" + name))


def unreachable_dsn() -> str:
    """A DSN whose port nothing listens on (it was free a moment ago), with a password."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://customer:{UNREACHABLE_PASSWORD}@127.0.0.1:{port}/shop"
