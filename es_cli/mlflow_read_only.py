"""``python -m es_cli.mlflow_read_only``: MLflow's UI and REST API over a tracking store, with
every write refused.

MLflow's own server serves its write API to whoever reaches the port; on a shared machine any
local user could then delete runs or register a model version that the deploy gate trusts. This
serves the same FastAPI application in one uvicorn process, behind an ASGI guard that lets
through only reads: GET, HEAD and OPTIONS, and the few REST calls that read although sent as
POST (searches whose filters do not fit a query string; GraphQL, whose schema only reads).
Anything else gets 403 before MLflow sees it. Writers (the workers) use the store directly.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from starlette.types import ASGIApp, Receive, Scope, Send

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# REST calls under /api/<version>/mlflow/ (or /ajax-api/...) that only read but are POSTed.
READ_POSTS = frozenset(
    {
        "experiments/search",
        "runs/search",
        "logged-models/search",
        "traces/search",
        "traces/batchGetInfos",
        "datasets/search",
        "registered-models/get-latest-versions",
    }
)
REST_CALL = re.compile(r"^/(?:ajax-)?api/\d+\.\d+/mlflow/(?P<call>.+?)/?$")
GRAPHQL = "/graphql"


def is_read(method: str, path: str) -> bool:
    """Whether a request only reads the store (anything unknown counts as a write)."""
    if method in READ_METHODS:
        return True
    if method != "POST":
        return False
    if path == GRAPHQL:
        return True
    match = REST_CALL.match(path)
    return match is not None and match["call"] in READ_POSTS


class ReadOnly:
    """ASGI middleware: requests that would write get 403 with a JSON error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_read(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error_code": "PERMISSION_DENIED",
                "message": "this MLflow UI is read-only (served by `es up --mlflow-ui`)",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m es_cli.mlflow_read_only")
    parser.add_argument("--backend-store-uri", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--artifacts", help="artifact root URI served for downloads (the embedded store's)"
    )
    args = parser.parse_args(argv)

    # What `mlflow server` hands its uvicorn worker, set before MLflow's app is imported.
    from mlflow.server.constants import (
        ARTIFACT_ROOT_ENV_VAR,
        ARTIFACTS_DESTINATION_ENV_VAR,
        BACKEND_STORE_URI_ENV_VAR,
        REGISTRY_STORE_URI_ENV_VAR,
        SERVE_ARTIFACTS_ENV_VAR,
    )
    from mlflow.server.handlers import initialize_backend_stores

    os.environ[BACKEND_STORE_URI_ENV_VAR] = args.backend_store_uri
    os.environ[REGISTRY_STORE_URI_ENV_VAR] = args.backend_store_uri
    if args.artifacts:
        os.environ[ARTIFACT_ROOT_ENV_VAR] = args.artifacts
        os.environ[ARTIFACTS_DESTINATION_ENV_VAR] = args.artifacts
        os.environ[SERVE_ARTIFACTS_ENV_VAR] = "true"
    initialize_backend_stores(args.backend_store_uri, args.backend_store_uri, args.artifacts)

    import uvicorn
    from mlflow.server.fastapi_app import app

    uvicorn.run(ReadOnly(app), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
