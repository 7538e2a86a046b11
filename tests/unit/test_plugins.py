"""Plugin discovery: the built-in method loads; a broken one fails at start, naming itself."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from es_core.config import Settings
from es_core.plugins.protocol import CategoriesFineTuningMethod, FineTuningMethod
from es_core.plugins.registry import ENTRY_POINT_GROUP, PluginError, available, load_plugin
from es_core.plugins.text_minilm import TextMiniLMPlugin


def point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


class NotAPlugin:
    def __init__(self, settings: Settings) -> None:
        self.meta = "half"

    def get_data_loader(self) -> None:
        return None


class ExplodingPlugin:
    def __init__(self, settings: Settings) -> None:
        raise RuntimeError("no GPU driver")


def test_the_built_in_method_is_installed_and_loads(tmp_path: object) -> None:
    assert "text-minilm" in available()
    plugin = load_plugin(Settings())
    assert isinstance(plugin, TextMiniLMPlugin)
    assert isinstance(plugin, FineTuningMethod)
    assert not isinstance(plugin, CategoriesFineTuningMethod)
    info = plugin.get_search_index_info()
    assert (info.dimensions, info.metric, info.aggregation) == (384, "cosine", "min")


def test_unknown_name_lists_what_is_installed() -> None:
    with pytest.raises(PluginError, match=r"ES_PLUGIN='nope'.*installed: text-minilm"):
        load_plugin(Settings(plugin="nope"), [point("text-minilm", "x:y")])


def test_a_plugin_that_fails_to_import_is_named() -> None:
    with pytest.raises(PluginError, match=r"plugin 'broken' \(no_such_module_x:Plugin\).*import"):
        load_plugin(Settings(plugin="broken"), [point("broken", "no_such_module_x:Plugin")])


def test_a_plugin_that_fails_to_start_is_named() -> None:
    with pytest.raises(PluginError, match="failed to start: RuntimeError: no GPU driver"):
        load_plugin(Settings(plugin="boom"), [point("boom", f"{__name__}:ExplodingPlugin")])


def test_a_plugin_missing_protocol_members_is_named() -> None:
    with pytest.raises(PluginError, match="missing .*get_fine_tuning_builder"):
        load_plugin(Settings(plugin="half"), [point("half", f"{__name__}:NotAPlugin")])


def test_upsertion_cuts_texts_with_the_plugins_splitter() -> None:
    from es_core.item_input import ItemInput
    from es_core.upsertion import _parts_of

    settings = Settings()
    item = ItemInput(object_id="o", text="first | second | third")
    assert [p[1] for p in _parts_of(item, settings, lambda t: t.split(" | "))] == [
        "first",
        "second",
        "third",
    ]
    # The built-in splitter keeps this short text whole.
    assert [p[1] for p in _parts_of(item, settings)] == ["first | second | third"]
    plugin = load_plugin(settings)
    assert plugin.get_items_splitter().split("A sentence. Another one.") == [
        "A sentence. Another one."
    ]
