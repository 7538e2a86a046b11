"""What every blob loader's tests check the same way: record files to import, and that an
import resumed from any page's checkpoint yields exactly the items after that page."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from es_core.loaders.blobs import BlobLoader
from es_core.loaders.model import ItemFailure, Page, Record, SourceSpec

ROWS = 30  # rows of each record file; 3 of the JSONL's lines are bad
BAD_LINES = {5: b'{"id": "x5", "text": ', 12: b'"just a string"', 20: b'{"text": "no id"}'}


def jsonl_file() -> bytes:
    lines = [
        BAD_LINES.get(n, b'{"id": "j%d", "text": "line %d"}' % (n, n)) for n in range(1, ROWS + 1)
    ]
    return b"\n".join(lines) + b"\n"


def csv_file() -> bytes:
    rows = "".join(f"c{n},row {n}\n" for n in range(1, ROWS + 1))
    return ("id,text\n" + rows).encode()


def parquet_file() -> bytes:
    numbers = range(1, ROWS + 1)
    table = pa.table({"id": [f"q{n}" for n in numbers], "text": [f"row {n}" for n in numbers]})
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=8)  # type: ignore[no-untyped-call]
    return out.getvalue()


def key(item: Record | ItemFailure) -> str:
    """An item as a comparable string: a record's id, a failure's stage and reason."""
    if isinstance(item, Record):
        return item.object_id
    return f"{item.stage}: {item.reason}"


async def read_pages(
    loader: BlobLoader, spec: SourceSpec, after: str | None, size: int
) -> list[Page]:
    return [page async for page in loader.pages(spec, after, size)]


async def assert_resumes(loader: BlobLoader, spec: SourceSpec, size: int) -> list[str]:
    """Pages of at most ``size`` items; from each page's checkpoint, exactly the rest. The
    keys of every item, in order."""
    pages = await read_pages(loader, spec, None, size)
    assert pages and all(0 < len(page.items) <= size for page in pages)
    keys = [key(item) for page in pages for item in page.items]
    done = 0
    for page in pages:
        done += len(page.items)
        rest = await read_pages(loader, spec, page.checkpoint, size)
        assert [key(item) for p in rest for item in p.items] == keys[done:]
    return keys


def expected_jsonl_keys(where: str) -> list[str]:
    """The JSONL file's items: records j1… and a PARSE failure for each bad line."""
    reasons = {
        5: "bad JSON (Expecting value at column 22)",
        12: "a JSON str, not an object",
        20: "no 'id' field to use as the id",
    }
    return [
        f"parse: line {n} of {where}: {reasons[n]}" if n in reasons else f"j{n}"
        for n in range(1, ROWS + 1)
    ]
