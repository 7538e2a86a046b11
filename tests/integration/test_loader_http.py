"""The http loader against a real HTTP server (``python -m http.server``, run as a process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from es_core.config import Settings
from es_core.errors import FailedPrecondition, InvalidArgument
from es_core.loaders.http import HttpLoader, allowed
from es_core.loaders.model import ItemFailure, Locator, Record, SourceSpec, Stage
from es_harness.source_servers import free_port
from tests.integration.loader_checks import (
    assert_resumes,
    csv_file,
    expected_jsonl_keys,
    jsonl_file,
    parquet_file,
)

CAP = 1000
TOKEN = "tok-Distinctive-51b7"


def spec(url: str) -> SourceSpec:
    return SourceSpec("http", Locator(url=url))


@pytest.fixture(scope="module")
def base(http_root: tuple[Path, str]) -> str:
    root, url = http_root
    files = {
        "web/a.txt": b"alpha",
        "web/page.html": b"<p>hi</p>",
        "web/big.bin": b"x" * (CAP + 1),
        "web/docs.jsonl": jsonl_file(),
        "web/rows.csv": csv_file(),
        "web/rows.parquet": parquet_file(),
        "web/sub/b.txt": b"b",
        "private/secret.txt": b"secret",
    }
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return url + "web/"


@pytest.fixture(scope="module")
def down() -> str:
    """A URL prefix nothing listens at."""
    return f"http://127.0.0.1:{free_port()}/"


@pytest_asyncio.fixture(loop_scope="session")
async def loader(base: str, down: str) -> AsyncIterator[HttpLoader]:
    settings = Settings(http_allowed_prefixes=[base, down], loader_max_item_bytes=CAP)
    built = HttpLoader(settings)
    yield built
    await built.close()


async def test_fetch_reads_urls_with_the_servers_content_type(
    loader: HttpLoader, base: str
) -> None:
    a, page = spec(base + "a.txt"), spec(base + "page.html")
    assert await loader.fetch([("1", a), ("2", page)]) == [
        Record("1", b"alpha", "text/plain", {}, a),
        Record("2", b"<p>hi</p>", "text/html", {}, page),
    ]


async def test_bad_urls_fail_alone_with_short_reasons(
    loader: HttpLoader, base: str, down: str
) -> None:
    got = await loader.fetch(
        [
            ("missing", spec(f"{base}missing.txt?token={TOKEN}")),
            ("redirect", spec(base + "sub")),
            ("big", spec(base + "big.bin")),
            ("records", spec(base + "rows.parquet")),
            ("down", spec(down + "a.txt")),
            ("outside", spec(base.replace("web/", "private/secret.txt"))),
            ("good", spec(base + "sub/b.txt")),
        ]
    )
    assert got[:6] == [
        ItemFailure("missing", Stage.FETCH, f"{base}missing.txt: HTTP 404 (not found)"),
        ItemFailure("redirect", Stage.FETCH, f"{base}sub: HTTP 301 (a redirect, not followed)"),
        ItemFailure(
            "big", Stage.FETCH, f"{base}big.bin is {CAP + 1} bytes, more than the {CAP} allowed"
        ),
        ItemFailure(
            "records",
            Stage.PARSE,
            f"{base}rows.parquet: a record file holds many items; import it with ImportItems",
        ),
        ItemFailure("down", Stage.FETCH, f"cannot reach {down}a.txt: connection refused"),
        ItemFailure(
            "outside", Stage.FETCH, "reference.url: is not under any of ES_HTTP_ALLOWED_PREFIXES"
        ),
    ]
    assert got[6] == Record("good", b"b", "text/plain", {}, spec(base + "sub/b.txt"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("{root}private/secret.txt", "is not under any of ES_HTTP_ALLOWED_PREFIXES"),
        ("ftp://127.0.0.1/web/a.txt", "an http:// or https:// URL is required"),
        ("file:///etc/passwd", "an http:// or https:// URL is required"),
        ("http://user:pw@{host}/web/a.txt", "a URL may not carry credentials"),
        ("", "an http:// or https:// URL is required"),
    ],
)
def test_check_refuses_urls_outside_the_prefixes(
    loader: HttpLoader, base: str, url: str, reason: str
) -> None:
    root = base.removesuffix("web/")
    named = url.format(root=root, host=root.split("/")[2])
    with pytest.raises(InvalidArgument) as raised:
        loader.check(spec(named), "f", whole=False)
    [violation] = raised.value.violations
    assert (violation.field, violation.description) == ("f.url", reason)


def test_without_prefixes_nothing_is_fetched(base: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        HttpLoader(Settings(http_allowed_prefixes=[])).check(spec(base + "a.txt"), "f", whole=True)
    [violation] = raised.value.violations
    assert violation.field == "f.url" and "set ES_HTTP_ALLOWED_PREFIXES" in violation.description


def test_a_prefix_allows_only_at_a_boundary() -> None:
    assert allowed("https://docs.example/a", "https://docs.example")
    assert not allowed("https://docs.example.evil/a", "https://docs.example")
    assert not allowed("https://docs.example/webby", "https://docs.example/web/")
    assert allowed("https://docs.example/web/a", "https://docs.example/web/")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("docs.jsonl", "jsonl"),
        ("rows.csv", [f"c{n}" for n in range(1, 31)]),
        ("rows.parquet", [f"q{n}" for n in range(1, 31)]),
    ],
)
async def test_import_of_a_record_url_streams_and_resumes(
    loader: HttpLoader, base: str, name: str, expected: list[str] | str
) -> None:
    if expected == "jsonl":
        expected = expected_jsonl_keys(base + name)
    assert await assert_resumes(loader, spec(base + name), 7) == expected
    assert await loader.estimate(spec(base + name)) is None


async def test_import_of_a_plain_url_is_one_item(loader: HttpLoader, base: str) -> None:
    pages = [p async for p in loader.pages(spec(base + "a.txt"), None, 7)]
    assert [p.items for p in pages] == [
        [Record(base + "a.txt", b"alpha", "text/plain", {}, spec(base + "a.txt"))]
    ]
    assert [p async for p in loader.pages(spec(base + "a.txt"), pages[0].checkpoint, 7)] == []


async def test_probe_names_the_url(loader: HttpLoader, base: str, down: str) -> None:
    await loader.probe(spec(base + "docs.jsonl"), "src")
    for url in (base + "none.jsonl", down + "docs.jsonl"):
        with pytest.raises(FailedPrecondition) as raised:
            await loader.probe(spec(url), "src")
        assert [v.field for v in raised.value.violations] == ["src.url"]
