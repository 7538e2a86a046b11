"""The TypeScript SDK (clients/typescript) against a real stack: `npm ci` and `npm run build`
(tsc, strict) succeed, and a small compiled program upserts three items with text over gRPC,
waits for the task, searches by text and prints what it found. Against a server that refuses
calls with UNAVAILABLE (tests/flaky_grpc.py): reads are retried, writes are not."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from es_cli.embedded import free_port
from es_harness.throwaway import StackInfo
from tests.flaky_grpc import Flaky, start_flaky

pytestmark = pytest.mark.e2e

SDK = Path(__file__).resolve().parents[2] / "clients" / "typescript"
EXAMPLE = SDK / "dist" / "examples" / "upsert_and_search.js"
READ_AND_WRITE = SDK / "dist" / "examples" / "read_and_write_once.js"


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=SDK, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def built_sdk() -> Path:
    """The SDK installed (node_modules kept between runs; gitignored) and compiled."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("node and npm are needed to build the TypeScript SDK")
    if not (SDK / "node_modules" / ".package-lock.json").is_file():
        _run([npm, "ci", "--no-audit", "--no-fund"], timeout=600)
    _run([npm, "run", "build"], timeout=600)
    return Path(node)


def test_the_typescript_sdk_upserts_and_searches(built_sdk: Path, stack: StackInfo) -> None:
    suite = f"ts-{uuid.uuid4().hex[:8]}"
    done = _run([str(built_sdk), str(EXAMPLE), stack.grpc_address, suite], timeout=300)
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["upsertStatus"] == "DONE"
    assert report["collectionId"]
    found = [hit["objectId"] for hit in report["results"]]
    assert sorted(found) == sorted(f"{suite}-{name}" for name in ("socks", "hose", "laptop"))
    assert found[0] == f"{suite}-socks"
    scores = [hit["score"] for hit in report["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(hit["payload"] == {"suite": suite} for hit in report["results"])


def test_the_typescript_sdk_reports_a_server_it_cannot_reach(built_sdk: Path) -> None:
    argv = [str(built_sdk), str(EXAMPLE), f"127.0.0.1:{free_port()}", "ts-unreachable"]
    done = subprocess.run(argv, cwd=SDK, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "unavailable" in done.stderr.lower()


@pytest.mark.parametrize(
    ("failures", "search", "search_attempts"),
    [(2, "OK", 3), (1000, "Unavailable", 4)],
)
def test_the_typescript_sdk_retries_reads_and_not_writes(
    built_sdk: Path, failures: int, search: str, search_attempts: int
) -> None:
    """The SDK's retry interceptor: a search refused twice answers on the third attempt, one
    refused always gives up after four; an upsert refused once is never sent again."""
    flaky = Flaky(failures=failures)
    server, target = start_flaky(flaky)
    try:
        done = _run([str(built_sdk), str(READ_AND_WRITE), target], timeout=120)
    finally:
        server.stop(None)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "search": search,
        "upsert": "Unavailable",
    }
    assert flaky.calls == {"Search": search_attempts, "UpsertItems": 1}
