"""``es keys``: create (of a token, or of a client certificate), list and revoke API keys
straight in the database.

The command needs no key itself: whoever reaches the database is already trusted. It finds the
database by ES_POSTGRES_DSN, else in the stack.json of the running ``es up`` in ES_DATA_DIR.
Remote admins use KeyService with an admin key instead."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from es_core.api_keys import use_case
from es_core.api_keys.model import ApiKey, Role, fingerprint_text
from es_core.config import Settings
from es_core.errors import EsError, InvalidArgument
from es_core.storage.db import create_pool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="keys_action", required=True)
    create = actions.add_parser(
        "create", help="create a key; its token is printed once (none with --client-cert)"
    )
    create.add_argument("--role", required=True, choices=[r.label for r in Role])
    create.add_argument("--app", default="", help="bind the key to one app's sessions")
    create.add_argument("--description", default="", help="whose key, what for")
    create.add_argument(
        "--client-cert",
        type=Path,
        metavar="PEM",
        help="register this client certificate instead of making a token: callers presenting"
        " it over mutual TLS act as the key",
    )
    revoke = actions.add_parser("revoke", help="revoke a key (servers refuse it within seconds)")
    revoke.add_argument("key_id")
    listing = actions.add_parser("list", help="list keys (never their tokens)")
    listing.add_argument("--all", action="store_true", help="also revoked keys")


def database_dsn(settings: Settings) -> str:
    if settings.postgres_dsn:
        return settings.postgres_dsn
    stack_file = settings.data_dir / "stack.json"
    if not stack_file.exists():
        raise SystemExit(
            f"es keys: no database: set ES_POSTGRES_DSN, or start `es up` on {settings.data_dir}"
        )
    return str(json.loads(stack_file.read_text())["postgres_dsn"])


def run_keys(settings: Settings, args: argparse.Namespace) -> int:
    try:
        asyncio.run(_run(settings, args))
    except EsError as exc:
        print(f"es keys: {exc.message}", file=sys.stderr)
        return 2
    return 0


async def _run(settings: Settings, args: argparse.Namespace) -> None:
    pool = await create_pool(settings, database_dsn(settings), max_size=1)
    try:
        if args.keys_action == "create" and args.client_cert is not None:
            key = await use_case.register_certificate(
                pool,
                _read_certificate(args.client_cert),
                Role.parse(args.role),
                args.app,
                args.description,
                field="--client-cert",
            )
            print(_line(key))
            print(f"client certificate sha256: {fingerprint_text(key.cert_sha256)}")
        elif args.keys_action == "create":
            issued = await use_case.create_key(
                pool, Role.parse(args.role), args.app, args.description
            )
            print(_line(issued.key))
            print(f"token (shown only now): {issued.token}")
        elif args.keys_action == "revoke":
            print(_line(await use_case.revoke_key(pool, args.key_id)))
        else:
            for key in await use_case.list_keys(pool, include_revoked=args.all):
                print(_line(key))
    finally:
        await pool.close()


def _read_certificate(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgument.field_error(
            "--client-cert", f"cannot read {path}: {exc.strerror}"
        ) from None


def _line(key: ApiKey) -> str:
    created = key.create_time.isoformat(timespec="seconds") if key.create_time else ""
    state = (
        f"revoked {key.revoke_time.isoformat(timespec='seconds')}" if key.revoke_time else "live"
    )
    proof = f"cert sha256:{fingerprint_text(key.cert_sha256)}" if key.cert_sha256 else "token"
    return "\t".join(
        [key.key_id, key.role.label, key.app or "*", created, state, proof, key.description]
    )
