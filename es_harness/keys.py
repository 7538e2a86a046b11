"""`es keys` against a throwaway stack's database, as an operator runs it: the first key of a
stack with ES_AUTH=required is made this way, since no call to the stack works without one."""

from __future__ import annotations

import os
import subprocess
import sys

from es_harness.throwaway import StackInfo


def es_keys(stack: StackInfo, *args: str) -> str:
    """What ``es keys <args>`` prints; it finds the database in the stack's stack.json."""
    made = subprocess.run(
        [sys.executable, "-m", "es_cli.main", "keys", *args],
        env={**os.environ, "ES_DATA_DIR": str(stack.data_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout


def first_admin_token(stack: StackInfo) -> str:
    """`es keys create --role admin`; the token it prints once."""
    printed = es_keys(stack, "create", "--role", "admin")
    return next(x for x in printed.splitlines() if x.startswith("token")).rsplit(" ", 1)[1]
