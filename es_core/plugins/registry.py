"""Finding fine-tuning methods: entry points of the group ``embedding_studio.plugins``, and
categories methods: entry points of ``embedding_studio.categories_plugins``.

``load_plugin`` runs when a server or worker process starts, so a plugin that is missing, fails
to import or does not implement the protocol stops the process at once with a message naming
it, instead of failing the first request that needs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from es_core.config import Settings
from es_core.plugins.protocol import CategoriesFineTuningMethod, FineTuningMethod

ENTRY_POINT_GROUP = "embedding_studio.plugins"
CATEGORIES_ENTRY_POINT_GROUP = "embedding_studio.categories_plugins"
# The built-in categories method is found even where the installed package metadata predates
# it (an editable install made before it existed); an installed entry point of the same name
# takes its place.
BUILT_IN_CATEGORIES = EntryPoint(
    name="text",
    value="es_core.plugins.text_categories:TextCategoriesPlugin",
    group=CATEGORIES_ENTRY_POINT_GROUP,
)


class PluginError(RuntimeError):
    """A configured plugin cannot be used; raised at process start."""


def available(found: Iterable[EntryPoint] | None = None) -> dict[str, EntryPoint]:
    """Installed plugins by name (not imported yet)."""
    points = entry_points(group=ENTRY_POINT_GROUP) if found is None else found
    return {point.name: point for point in points}


def load_plugin(settings: Settings, found: Iterable[EntryPoint] | None = None) -> FineTuningMethod:
    """Import, build and check the plugin named by ``ES_PLUGIN``."""
    points = available(found)
    name = settings.plugin
    point = points.get(name)
    if point is None:
        known = ", ".join(sorted(points)) or "none"
        raise PluginError(
            f"ES_PLUGIN={name!r}: no such plugin in entry-point group {ENTRY_POINT_GROUP!r}"
            f" (installed: {known})"
        )
    try:
        factory = point.load()
    except Exception as exc:
        raise PluginError(
            f"plugin {name!r} ({point.value}) failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        plugin = factory(settings)
    except Exception as exc:
        raise PluginError(
            f"plugin {name!r} ({point.value}) failed to start: {type(exc).__name__}: {exc}"
        ) from exc
    missing = [
        attribute
        for attribute in (
            "meta",
            *(m for m in dir(FineTuningMethod) if m.startswith("get_")),
            "upload_initial_model",
        )
        if not hasattr(plugin, attribute)
    ]
    if missing or not isinstance(plugin, FineTuningMethod):
        raise PluginError(
            f"plugin {name!r} ({point.value}) does not implement FineTuningMethod:"
            f" missing {', '.join(missing) or 'a protocol member'}"
        )
    return plugin


def available_categories(found: Iterable[EntryPoint] | None = None) -> dict[str, EntryPoint]:
    """Installed categories plugins by name (not imported yet), the built-in one included."""
    points = entry_points(group=CATEGORIES_ENTRY_POINT_GROUP) if found is None else found
    return {BUILT_IN_CATEGORIES.name: BUILT_IN_CATEGORIES, **{p.name: p for p in points}}


def load_categories_plugin(
    settings: Settings, found: Iterable[EntryPoint] | None = None
) -> CategoriesFineTuningMethod:
    """Import, build and check the categories plugin named by ``ES_CATEGORIES_PLUGIN``."""
    points = available_categories(found)
    name = settings.categories_plugin
    point = points.get(name)
    if point is None:
        raise PluginError(
            f"ES_CATEGORIES_PLUGIN={name!r}: no such plugin in entry-point group"
            f" {CATEGORIES_ENTRY_POINT_GROUP!r} (installed: {', '.join(sorted(points))})"
        )
    try:
        factory = point.load()
    except Exception as exc:
        raise PluginError(
            f"categories plugin {name!r} ({point.value}) failed to import:"
            f" {type(exc).__name__}: {exc}"
        ) from exc
    try:
        plugin = factory(settings)
    except Exception as exc:
        raise PluginError(
            f"categories plugin {name!r} ({point.value}) failed to start:"
            f" {type(exc).__name__}: {exc}"
        ) from exc
    missing = [
        attribute
        for attribute in (
            "meta",
            *(m for m in dir(CategoriesFineTuningMethod) if m.startswith("get_")),
        )
        if not hasattr(plugin, attribute)
    ]
    if missing or not isinstance(plugin, CategoriesFineTuningMethod):
        raise PluginError(
            f"categories plugin {name!r} ({point.value}) does not implement"
            f" CategoriesFineTuningMethod: missing {', '.join(missing) or 'a protocol member'}"
        )
    return plugin
