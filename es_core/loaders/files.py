"""Local files as a blob store, confined to ``ES_FILE_ROOTS``: every path is resolved
(following symlinks) and refused unless it lands under a root, both when a request names it
and again when it is read. A blob's name is its path relative to the root it lives under; a
relative path in a request is taken relative to the first root."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path, PurePath
from typing import IO

from es_core.config import Settings
from es_core.errors import FailedPrecondition, InvalidArgument
from es_core.loaders.blobs import Blob, BlobFailure, BlobLoader, Place, TooLarge, only_fields
from es_core.loaders.model import Locator


def _why(error: OSError) -> str:
    """An OS error in a few words, without the path its message names."""
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, IsADirectoryError):
        return "a directory, not a file"
    return os.strerror(error.errno).lower() if error.errno else type(error).__name__


class FileStore:
    loader = "file"

    def __init__(self, settings: Settings) -> None:
        self._roots = [root.resolve() for root in settings.file_roots]

    def place(self, locator: Locator, field: str, *, whole: bool) -> Place:
        only_fields(locator, ("path",), field, self.loader)
        named = f"{field}.path"
        if not self._roots:
            raise InvalidArgument.field_error(
                named, "the file loader reads nothing: set ES_FILE_ROOTS"
            )
        if not locator.path:
            raise InvalidArgument.field_error(named, "a path is required")
        given = PurePath(locator.path)
        if ".." in given.parts:
            raise InvalidArgument.field_error(named, "a path may not hold '..'")
        root, name = self._under_root(self._roots[0] / given)
        if root is None:
            raise InvalidArgument.field_error(named, "is not under any of the file roots")
        many = whole and (root / name).is_dir()
        return Place(str(root), name, many)

    def _under_root(self, path: Path) -> tuple[Path | None, str]:
        resolved = path.resolve()
        for root in self._roots:
            if resolved.is_relative_to(root):
                relative = resolved.relative_to(root).as_posix()
                return root, "" if relative == "." else relative
        return None, ""

    def _path(self, container: str, name: str) -> Path:
        """The file, refused when it resolves outside its root (a symlink pointing out)."""
        path = Path(container) / name
        if self._under_root(path)[0] is None:
            raise BlobFailure(f"{self.show(container, name)}: outside the file roots")
        return path

    def locator(self, container: str, name: str) -> Locator:
        first = bool(self._roots) and Path(container) == self._roots[0]
        return Locator(path=name if first else str(Path(container) / name))

    def show(self, container: str, name: str) -> str:
        return name or "."

    async def probe(self, place: Place, field: str) -> None:
        if not (Path(place.container) / place.name).exists():
            raise FailedPrecondition.field_error(
                f"{field}.path",
                f"{self.show(place.container, place.name)}: no such file or directory",
            )

    async def names(self, place: Place, after: str) -> AsyncIterator[str]:
        names = await asyncio.to_thread(self._walk, Path(place.container), place.name)
        for name in names:
            if name > after:
                yield name

    @staticmethod
    def _walk(root: Path, directory: str) -> list[str]:
        """Every regular file under the directory (a symlink counts when it points to one),
        by relative path; a directory's symlinks are not followed."""
        found = []
        for parent, _dirs, files in os.walk(root / directory):
            for file in files:
                path = Path(parent) / file
                if path.is_file():
                    found.append(path.relative_to(root).as_posix())
        return sorted(found)

    def _read(self, container: str, name: str, cap: int) -> bytes:
        path = self._path(container, name)
        shown = self.show(container, name)
        try:
            with path.open("rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size > cap:
                    raise TooLarge(shown, size, cap)
                content = file.read(cap + 1)
        except OSError as error:
            raise BlobFailure(f"{shown}: {_why(error)}") from None
        if len(content) > cap:
            raise TooLarge(shown, len(content), cap)
        return content

    async def read(self, container: str, name: str, cap: int) -> Blob:
        return Blob(await asyncio.to_thread(self._read, container, name, cap))

    def _open(self, container: str, name: str) -> IO[bytes]:
        shown = self.show(container, name)
        try:
            return self._path(container, name).open("rb")
        except OSError as error:
            raise BlobFailure(f"{shown}: {_why(error)}") from None

    async def open(self, container: str, name: str) -> tuple[IO[bytes], str]:
        return await asyncio.to_thread(self._open, container, name), ""

    async def close(self) -> None:
        pass


class FileLoader(BlobLoader):
    """Items in local files under ``ES_FILE_ROOTS``: a reference is a file's path; an import
    a directory (every file under it) or a record file."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(FileStore(settings), settings)
