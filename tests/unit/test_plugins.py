"""Plugin discovery: the built-in method loads; a broken one fails at start, naming itself."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from es_core.categories.selectors import ProbabilitySelector
from es_core.config import Settings
from es_core.plugins.protocol import CategoriesFineTuningMethod, FineTuningMethod
from es_core.plugins.registry import (
    CATEGORIES_ENTRY_POINT_GROUP,
    ENTRY_POINT_GROUP,
    PluginError,
    available,
    available_categories,
    load_categories_plugin,
    load_plugin,
)
from es_core.plugins.text_categories import TextCategoriesPlugin
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


def categories_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=CATEGORIES_ENTRY_POINT_GROUP)


def test_the_built_in_categories_method_loads_with_its_settings() -> None:
    assert "text" in available_categories([])
    plugin = load_categories_plugin(Settings())
    assert isinstance(plugin, TextCategoriesPlugin)
    assert isinstance(plugin, CategoriesFineTuningMethod)
    assert plugin.get_category_field() == "category"
    assert plugin.get_default_selector() == ProbabilitySelector(0.0, 0.05)
    assert plugin.get_calibrated_temperature() == 0.05
    assert plugin.get_category_text("Shoes", "running shoes, trainers") == "running shoes, trainers"
    assert plugin.get_category_text("Shoes", "  ") == "Shoes"
    named = load_categories_plugin(
        Settings(categories_text="name", categories_field="kind", categories_temperature=0.2)
    )
    assert named.get_category_text("Shoes", "running shoes") == "Shoes"
    assert named.get_category_field() == "kind"
    assert named.get_calibrated_temperature() == 0.2


def test_category_fine_tuning_defaults_are_valid_hyperparameters_of_the_builder() -> None:
    """Fewer examples than items: more epochs and a larger step, unless a request says."""
    defaults = TextCategoriesPlugin(Settings()).get_fine_tuning_defaults()
    builder = TextMiniLMPlugin(Settings()).get_fine_tuning_builder()
    space = builder.search_space(defaults)
    assert space["epochs"] == [5] and space["learning_rate"] == [2e-4, 1e-4]
    overridden = builder.search_space({**defaults, "epochs": [1]})
    assert overridden["epochs"] == [1] and overridden["learning_rate"] == [2e-4, 1e-4]


def test_an_unknown_categories_plugin_lists_what_is_installed() -> None:
    with pytest.raises(PluginError, match=r"ES_CATEGORIES_PLUGIN='nope'.*installed: text"):
        load_categories_plugin(Settings(categories_plugin="nope"), [])


def test_a_categories_plugin_missing_members_is_named() -> None:
    with pytest.raises(PluginError, match="missing .*get_category_field"):
        load_categories_plugin(
            Settings(categories_plugin="half"),
            [categories_point("half", f"{__name__}:NotAPlugin")],
        )


def test_a_categories_plugin_that_fails_to_start_is_named() -> None:
    with pytest.raises(PluginError, match="categories plugin 'boom'.*no GPU driver"):
        load_categories_plugin(
            Settings(categories_plugin="boom"),
            [categories_point("boom", f"{__name__}:ExplodingPlugin")],
        )
