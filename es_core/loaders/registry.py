"""Finding loaders: entry points of the group ``embedding_studio.loaders``, each built once
per process with the settings. A source naming a loader that is not installed is refused at
the request (INVALID_ARGUMENT naming its ``loader`` field)."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.loaders.protocol import SourceLoader

ENTRY_POINT_GROUP = "embedding_studio.loaders"


class Loaders:
    """The installed loaders by name, each built on first use and kept."""

    def __init__(self, settings: Settings, found: Iterable[EntryPoint] | None = None) -> None:
        points = entry_points(group=ENTRY_POINT_GROUP) if found is None else found
        self._points = {point.name: point for point in points}
        self._settings = settings
        self._built: dict[str, SourceLoader] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._points)

    def get(self, name: str, field: str) -> SourceLoader:
        """The loader called ``name``; InvalidArgument naming ``field`` when none is."""
        loader = self._built.get(name)
        if loader is not None:
            return loader
        point = self._points.get(name)
        if point is None:
            raise InvalidArgument.field_error(
                field, f"no loader is called {name!r} (installed: {', '.join(self.names)})"
            )
        built: SourceLoader = point.load()(self._settings)
        self._built[name] = built
        return built

    async def close(self) -> None:
        for loader in self._built.values():
            await loader.close()
        self._built.clear()
