"""The stack's long-running processes, one ``es`` subcommand each: ``server``, ``worker``,
``beat``, ``triton``. Each reads the same ES_* settings; ``es up`` starts them as its children,
and a compose file or an orchestrator starts them as it likes.

``worker`` and ``beat`` become Celery (``exec``: the same pid, signals go straight to it)."""

from __future__ import annotations

import argparse
import os
import sys

from es_workers.queues import GROUPS, POOLS, resolve

CELERY_APP = "es_workers.app:celery_app"


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queues",
        required=True,
        help="comma-separated queue groups or queues: " + ", ".join(GROUPS),
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="tasks at once (default: the group's; 1 for several groups or plain queues)",
    )
    parser.add_argument(
        "--pool", choices=POOLS, help="Celery pool (default: the group's; solo otherwise)"
    )
    parser.add_argument("--hostname", help="Celery node name (default: es-<queues>-<pid>@%%h)")
    parser.add_argument("--loglevel", default="INFO")


def add_beat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule", help="beat's state file (default: $ES_DATA_DIR/celerybeat-schedule)"
    )
    parser.add_argument("--loglevel", default="INFO")


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The Celery command line of ``es worker``; ValueError for a bad queue or number."""
    names = [name.strip() for name in args.queues.split(",") if name.strip()]
    if not names:
        raise ValueError("--queues: name at least one queue group or queue")
    queues, group = resolve(names)
    concurrency = args.concurrency
    if concurrency is None:
        concurrency = group.concurrency if group else 1
    if concurrency < 1:
        raise ValueError("--concurrency: at least 1")
    pool = args.pool or (group.pool if group else "solo")
    if pool == "solo" and concurrency != 1:
        raise ValueError("--concurrency: the solo pool runs one task at a time; use prefork")
    hostname = args.hostname or f"es-{'+'.join(names)}-{os.getpid()}@%h"
    return [
        *_celery(),
        "worker",
        "--queues",
        ",".join(queues),
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        args.loglevel,
        "--hostname",
        hostname,
    ]


def beat_argv(args: argparse.Namespace, data_dir: str) -> list[str]:
    schedule = args.schedule or os.path.join(data_dir, "celerybeat-schedule")
    return [*_celery(), "beat", "--schedule", schedule, "--loglevel", args.loglevel]


def run_worker(args: argparse.Namespace) -> int:
    try:
        argv = worker_argv(args)
    except ValueError as exc:
        print(f"es worker: {exc}", file=sys.stderr)
        return 2
    return become(argv)


def run_beat(args: argparse.Namespace, data_dir: str) -> int:
    argv = beat_argv(args, data_dir)
    # Its state file's directory (a new data directory has none yet).
    os.makedirs(os.path.dirname(os.path.abspath(argv[argv.index("--schedule") + 1])), exist_ok=True)
    return become(argv)


def _celery() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", CELERY_APP]


def become(argv: list[str]) -> int:
    """Replace this process with ``argv`` (returns only in tests that stub it out)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 0  # pragma: no cover


def run_server() -> int:
    from es_server.__main__ import main

    main()
    return 0


def run_triton() -> int:
    from es_triton.server import main

    return main([])
