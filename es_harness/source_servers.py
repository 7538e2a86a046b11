"""Real servers for the loaders' tests and benchmarks, each run as a process on a free
loopback port: an S3-compatible server (moto), a GCS emulator and a plain HTTP file server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(argv: list[str], url: str, cwd: Path | None = None) -> Iterator[str]:
    """Run ``argv`` until the block ends; ``url`` once it answers any HTTP request."""
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {process.returncode}")
            try:
                requests.get(url, timeout=2)
                break
            except (requests.ConnectionError, requests.Timeout):
                # Not up yet, or up but too slow to answer on a busy machine: ask again.
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} did not answer at {url}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_s3() -> Iterator[str]:
    port = free_port()
    argv = [str(_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with serving(argv, f"http://127.0.0.1:{port}") as url:
        yield url


@contextmanager
def gcs_emulator() -> Iterator[str]:
    port = free_port()
    argv = [str(_BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--in-memory", "--quiet"]
    with serving(argv, f"http://127.0.0.1:{port}") as url:
        yield url


@contextmanager
def http_files(root: Path) -> Iterator[str]:
    """``python -m http.server`` serving ``root``; its base URL ends with "/"."""
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with serving(argv, f"http://127.0.0.1:{port}/", cwd=root) as url:
        yield url
