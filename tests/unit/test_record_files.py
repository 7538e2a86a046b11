"""Record files read as streams: numbering, resuming after ``skip`` records, bad records."""

from __future__ import annotations

import io
import json
from typing import IO, cast

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from es_core.loaders.content_types import CSV, JSONL, PARQUET
from es_core.loaders.record_files import read_records


class OneWay(io.RawIOBase):
    """A stream that can only be read forward, like an HTTP or S3 body."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


def one_way(data: bytes) -> IO[bytes]:
    return cast(IO[bytes], OneWay(data))


def parquet_bytes(rows: int, group: int) -> bytes:
    table = pa.table({"id": [f"p{i}" for i in range(rows)], "text": [f"t{i}" for i in range(rows)]})
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=group)  # type: ignore[no-untyped-call]
    return out.getvalue()


JSONL_FILE = b"\n".join(
    [
        b'{"id": "a", "text": "one"}',
        b"",
        b'{"id": "b", "text": "two"',
        b"[1, 2]",
        b'{"id": "c", "text": "three"}',
        b"\xff\xfe",
        b'{"id": "d"}',
    ]
)


def test_jsonl_numbers_lines_and_fails_bad_ones_alone() -> None:
    parsed = list(read_records(JSONL, io.BytesIO(JSONL_FILE)))
    assert [(p.number, p.fields and p.fields["id"]) for p in parsed] == [
        (1, "a"),
        (3, None),
        (4, None),
        (5, "c"),
        (6, None),
        (7, "d"),
    ]
    assert parsed[1].error.startswith("bad JSON")
    assert parsed[2].error == "a JSON list, not an object"


def test_jsonl_resumes_after_skip_lines() -> None:
    parsed = list(read_records(JSONL, io.BytesIO(JSONL_FILE), skip=4))
    assert [p.number for p in parsed] == [5, 6, 7]


def test_jsonl_line_over_the_cap_fails_and_the_next_one_reads() -> None:
    data = b'{"id": "' + b"x" * 100 + b'"}\n{"id": "y"}\n'
    parsed = list(read_records(JSONL, one_way(data), max_line_bytes=40))
    assert parsed[0].fields is None and parsed[0].error == "longer than 40 bytes"
    assert (parsed[1].number, parsed[1].fields) == (2, {"id": "y"})


def test_csv_rows_from_a_one_way_stream() -> None:
    data = '\ufeffid,text\r\n1,héllo\r\n2,"a, b"\r\n3,x,extra\r\n4,last\r\n'.encode()
    parsed = list(read_records(CSV, one_way(data)))
    assert [p.fields for p in parsed if p.fields] == [
        {"id": "1", "text": "héllo"},
        {"id": "2", "text": "a, b"},
        {"id": "4", "text": "last"},
    ]
    assert parsed[2].number == 3 and "more values" in parsed[2].error
    assert [p.number for p in read_records(CSV, one_way(data), skip=2)] == [3, 4]


@pytest.mark.parametrize("skip", [0, 1, 4, 5, 9, 10, 23, 25])
def test_parquet_resumes_across_row_groups(skip: int) -> None:
    data = parquet_bytes(25, group=5)
    ids = [p.fields["id"] for p in read_records(PARQUET, one_way(data), skip) if p.fields]
    assert ids == [f"p{i}" for i in range(skip, 25)]


def test_parquet_that_is_not_parquet_fails_once() -> None:
    parsed = list(read_records(PARQUET, io.BytesIO(b"not parquet at all")))
    assert len(parsed) == 1 and parsed[0].error.startswith("not a Parquet file")


def test_other_types_are_no_record_files() -> None:
    with pytest.raises(ValueError):
        read_records("text/plain", io.BytesIO(json.dumps({}).encode()))
