"""Record files (JSONL, CSV, Parquet) read as a stream of records, one at a time, from a
binary stream: nothing larger than one record is held in memory. Each record is numbered
(the JSONL line, the CSV or Parquet data row, from 1), and reading can start after the
first ``skip`` of them, which is how an import resumes inside a file."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, cast

import pyarrow.parquet as pq

from es_core.loaders.content_types import CSV, JSONL, PARQUET, media_type

# Parquet is read by row group from its footer, so a stream that cannot seek is first
# copied to a temporary file (on disk once it passes this size).
_SPOOL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Parsed:
    """One record: its number in the file, and its fields or why it has none."""

    number: int
    fields: dict[str, Any] | None
    error: str = ""


def read_records(
    content_type: str, stream: IO[bytes], skip: int = 0, max_line_bytes: int = 1 << 24
) -> Iterator[Parsed]:
    """The records of a record file of ``content_type`` after the first ``skip``."""
    kind = media_type(content_type)
    readers: dict[str, Callable[[IO[bytes], int], Iterator[Parsed]]] = {
        JSONL: lambda s, n: jsonl_records(s, n, max_line_bytes),
        CSV: csv_records,
        PARQUET: parquet_records,
    }
    if kind not in readers:
        raise ValueError(f"{content_type!r} is not a record file type")
    return readers[kind](buffered(stream), skip)


def jsonl_records(stream: IO[bytes], skip: int, max_line_bytes: int) -> Iterator[Parsed]:
    """One JSON object a line; blank lines count but hold no record. A line longer than
    ``max_line_bytes`` fails without being held whole."""
    number = 0
    while True:
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        number += 1
        too_long = len(line) > max_line_bytes and not line.endswith(b"\n")
        if too_long:
            while line and not line.endswith(b"\n"):  # the rest of the long line
                line = stream.readline(max_line_bytes + 1)
        if number <= skip:
            continue
        if too_long:
            yield Parsed(number, None, f"longer than {max_line_bytes} bytes")
            continue
        if not line.strip():
            continue
        yield _json_object(number, line)


def _json_object(number: int, line: bytes) -> Parsed:
    try:
        value = json.loads(line.rstrip(b"\r\n"))
    except UnicodeDecodeError:
        return Parsed(number, None, "not UTF-8")
    except json.JSONDecodeError as error:
        return Parsed(number, None, f"bad JSON ({error.msg} at column {error.colno})")
    if not isinstance(value, dict):
        return Parsed(number, None, f"a JSON {type(value).__name__}, not an object")
    return Parsed(number, value)


def csv_records(stream: IO[bytes], skip: int) -> Iterator[Parsed]:
    """A header row, then a record a row; bytes that are not UTF-8 read as U+FFFD (a CSV
    reader cannot go on past a decoding error)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.DictReader(text)
    try:
        for number, row in enumerate(reader, start=1):
            if number <= skip:
                continue
            if None in row:
                yield Parsed(
                    number, None, f"more values than the {len(reader.fieldnames or ())} columns"
                )
                continue
            yield Parsed(number, dict(row))
    except csv.Error as error:
        yield Parsed(reader.line_num, None, f"bad CSV ({error})")
    finally:
        text.detach()


def parquet_records(stream: IO[bytes], skip: int) -> Iterator[Parsed]:
    """Rows read a batch at a time, starting at the row group that holds row ``skip + 1``."""
    with _seekable(stream) as source:
        try:
            parquet = pq.ParquetFile(source)  # type: ignore[no-untyped-call]
        except Exception as error:  # pyarrow's errors are several classes with one meaning
            yield Parsed(1, None, f"not a Parquet file ({type(error).__name__})")
            return
        first_group, number = 0, 0
        meta = parquet.metadata
        while first_group < meta.num_row_groups:
            rows = meta.row_group(first_group).num_rows
            if number + rows > skip:
                break
            number += rows
            first_group += 1
        groups = list(range(first_group, meta.num_row_groups))
        if not groups:
            return
        batches = parquet.iter_batches(batch_size=1024, row_groups=groups)  # type: ignore[no-untyped-call]
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                if number > skip:
                    yield Parsed(number, row)


class _Raw(io.RawIOBase):
    """A stream that only has ``read(n)`` (botocore's body, urllib3's response) as a raw
    stream that ``io.BufferedReader`` can buffer."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def buffered(stream: Any) -> IO[bytes]:
    """``stream`` with ``readline`` and ``readinto``, buffering it when it has not."""
    if isinstance(stream, io.BufferedIOBase):
        return cast(IO[bytes], stream)
    return cast(IO[bytes], io.BufferedReader(_Raw(stream)))


@contextmanager
def _seekable(stream: IO[bytes]) -> Iterator[IO[bytes]]:
    """The stream itself when it can seek, else a temporary copy of it."""
    if stream.seekable():
        yield stream
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as copy:
        shutil.copyfileobj(stream, copy)
        copy.seek(0)
        yield copy
