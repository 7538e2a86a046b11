"""The file loader on real directories: reading confined to the configured roots."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from es_core.config import Settings
from es_core.errors import FailedPrecondition, InvalidArgument
from es_core.loaders.files import FileLoader
from es_core.loaders.model import ItemFailure, Locator, Record, SourceSpec, Stage
from tests.integration.loader_checks import (
    assert_resumes,
    csv_file,
    expected_jsonl_keys,
    jsonl_file,
    parquet_file,
)

CAP = 1000


def spec(path: str | Path) -> SourceSpec:
    return SourceSpec("file", Locator(path=str(path)))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("files")
    first, second, outside = base / "first", base / "second", base / "outside"
    files = {
        first / "notes/a.txt": b"alpha",
        first / "notes/page.html": b"<p>hi</p>",
        first / "big.bin": b"x" * (CAP + 1),
        first / "data/docs.jsonl": jsonl_file(),
        first / "data/rows.csv": csv_file(),
        first / "data/rows.parquet": parquet_file(),
        first / "escape/a.txt": b"a",
        second / "other.txt": b"other",
        outside / "secret.txt": b"secret",
    }
    files |= {first / f"many/{n:03}.txt": b"item %d" % n for n in range(20)}
    files[first / "many/sub/x.txt"] = b"deeper"
    for path, body in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    (first / "escape/b.txt").symlink_to(outside / "secret.txt")
    (first / "escape/c.txt").symlink_to(first / "notes/a.txt")
    (first / "out").symlink_to(outside)
    return {"first": first, "second": second, "outside": outside}


@pytest_asyncio.fixture(loop_scope="session")
async def loader(tree: dict[str, Path]) -> AsyncIterator[FileLoader]:
    roots = [tree["first"], tree["second"]]
    built = FileLoader(Settings(file_roots=roots, loader_max_item_bytes=CAP))
    yield built
    await built.close()


async def test_fetch_reads_files_under_either_root(
    loader: FileLoader, tree: dict[str, Path]
) -> None:
    a, page, other = (
        spec("notes/a.txt"),
        spec(tree["first"] / "notes/page.html"),
        spec(tree["second"] / "other.txt"),
    )
    got = await loader.fetch([("1", a), ("2", page), ("3", other)])
    assert got == [
        Record("1", b"alpha", "text/plain", {}, a),
        Record("2", b"<p>hi</p>", "text/html", {}, page),
        Record("3", b"other", "text/plain", {}, other),
    ]


async def test_bad_references_fail_alone(loader: FileLoader) -> None:
    got = await loader.fetch(
        [
            ("missing", spec("notes/missing.txt")),
            ("dir", spec("notes")),
            ("big", spec("big.bin")),
            ("records", spec("data/docs.jsonl")),
            ("outside", spec("out/secret.txt")),
        ]
    )
    assert got == [
        ItemFailure("missing", Stage.FETCH, "notes/missing.txt: no such file"),
        ItemFailure("dir", Stage.FETCH, "notes: a directory, not a file"),
        ItemFailure("big", Stage.FETCH, f"big.bin is {CAP + 1} bytes, more than the {CAP} allowed"),
        ItemFailure(
            "records",
            Stage.PARSE,
            "data/docs.jsonl: a record file holds many items; import it with ImportItems",
        ),
        ItemFailure("outside", Stage.FETCH, "reference.path: is not under any of the file roots"),
    ]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("{outside}/secret.txt", "is not under any of the file roots"),
        ("notes/../../outside/secret.txt", "a path may not hold '..'"),
        ("{first}/notes/../notes/a.txt", "a path may not hold '..'"),
        ("escape/b.txt", "is not under any of the file roots"),
        ("out/secret.txt", "is not under any of the file roots"),
        ("", "a path is required"),
    ],
)
def test_check_refuses_paths_outside_the_roots(
    loader: FileLoader, tree: dict[str, Path], path: str, reason: str
) -> None:
    named = path.format(outside=tree["outside"], first=tree["first"])
    for whole in (False, True):
        with pytest.raises(InvalidArgument) as raised:
            loader.check(spec(named), "f", whole=whole)
        [violation] = raised.value.violations
        assert (violation.field, violation.description) == ("f.path", reason)


def test_without_roots_nothing_is_read(tree: dict[str, Path]) -> None:
    with pytest.raises(InvalidArgument) as raised:
        FileLoader(Settings(file_roots=[])).check(spec("notes/a.txt"), "f", whole=False)
    [violation] = raised.value.violations
    assert violation.field == "f.path" and "set ES_FILE_ROOTS" in violation.description


def test_check_refuses_other_locator_fields(loader: FileLoader) -> None:
    with pytest.raises(InvalidArgument) as raised:
        loader.check(SourceSpec("file", Locator(path="a.txt", bucket="b")), "f", whole=False)
    assert [v.field for v in raised.value.violations] == ["f.bucket"]


async def test_import_of_a_directory_is_recursive_and_resumes(loader: FileLoader) -> None:
    keys = await assert_resumes(loader, spec("many"), 7)
    assert keys == [f"many/{n:03}.txt" for n in range(20)] + ["many/sub/x.txt"]
    assert await loader.estimate(spec("many")) == 21


async def test_imported_ids_work_as_references(loader: FileLoader, tree: dict[str, Path]) -> None:
    first = [
        item for p in [p async for p in loader.pages(spec("many/sub"), None, 5)] for item in p.items
    ]
    second = [
        item
        for p in [p async for p in loader.pages(spec(tree["second"]), None, 5)]
        for item in p.items
    ]
    assert [item.reference for item in first + second if isinstance(item, Record)] == [
        spec("many/sub/x.txt"),
        spec(tree["second"] / "other.txt"),
    ]
    assert second[0].object_id == "other.txt"
    [again] = await loader.fetch([("x", spec("many/sub/x.txt"))])
    assert isinstance(again, Record) and again.content == b"deeper"


async def test_a_symlink_out_of_the_root_fails_its_item_in_an_import(loader: FileLoader) -> None:
    items = [
        item for p in [p async for p in loader.pages(spec("escape"), None, 5)] for item in p.items
    ]
    assert [(item.object_id, isinstance(item, Record)) for item in items] == [
        ("escape/a.txt", True),
        ("escape/b.txt", False),
        ("escape/c.txt", True),
    ]
    assert items[1] == ItemFailure(
        "escape/b.txt", Stage.FETCH, "escape/b.txt: outside the file roots"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data/docs.jsonl", expected_jsonl_keys("data/docs.jsonl")),
        ("data/rows.csv", [f"c{n}" for n in range(1, 31)]),
        ("data/rows.parquet", [f"q{n}" for n in range(1, 31)]),
    ],
)
async def test_import_of_a_record_file_streams_and_resumes(
    loader: FileLoader, path: str, expected: list[str]
) -> None:
    assert await assert_resumes(loader, spec(path), 7) == expected


async def test_probe_names_a_missing_path(loader: FileLoader) -> None:
    await loader.probe(spec("many"), "src")
    with pytest.raises(FailedPrecondition) as raised:
        await loader.probe(spec("no-such-dir"), "src")
    assert [v.field for v in raised.value.violations] == ["src.path"]
