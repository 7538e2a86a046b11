"""Cleaning an item's text before it is split: the steps a plugin's preprocessor chains.

Each step is ``(text, content_type) -> text``. ``strip_html`` acts on HTML content only (a
plain text that mentions "<b>" keeps it); the others act on every text."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from html.parser import HTMLParser
from typing import Protocol

from es_core.loaders.content_types import media_type

Step = Callable[[str, str], str]

_WHITESPACE = re.compile(r"\s+")
# C0/C1 control characters but tab, newline and carriage return (NUL among them: PostgreSQL
# cannot store it in text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SKIPPED_ELEMENTS = frozenset({"script", "style", "noscript", "template", "head"})
_BLOCK_ELEMENTS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "tr",
        "td",
        "th",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
        "header",
        "footer",
        "blockquote",
        "pre",
        "title",
        "table",
    }
)


class _TextOf(HTMLParser):
    """The text an HTML document shows: no tags, no scripts or styles, entities decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skipping += 1
        elif tag in _BLOCK_ELEMENTS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_ELEMENTS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.chunks.append(data)


def is_html(content_type: str) -> bool:
    return media_type(content_type) in {"text/html", "application/xhtml+xml"}


def strip_html(text: str, content_type: str) -> str:
    if not is_html(content_type):
        return text
    parser = _TextOf()
    parser.feed(text)
    parser.close()
    return html.unescape("".join(parser.chunks))


def normalize_unicode(text: str, content_type: str) -> str:
    """NFKC (ligatures, full-width forms, compatibility characters), control characters out."""
    return _CONTROL.sub(" ", unicodedata.normalize("NFKC", text))


def normalize_whitespace(text: str, content_type: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


STEPS: dict[str, Step] = {
    "strip_html": strip_html,
    "normalize_unicode": normalize_unicode,
    "normalize_whitespace": normalize_whitespace,
}


class ItemsCleaner(Protocol):
    """What a plugin cleans an item's text with before it is split; ``content_type`` says
    what the text is (text/html for markup)."""

    def clean(self, text: str, content_type: str = "text/plain") -> str: ...


class TextCleaner:
    """The named steps, in order; unknown names are refused when the plugin is built."""

    def __init__(self, steps: Sequence[str]) -> None:
        unknown = [name for name in steps if name not in STEPS]
        if unknown:
            raise ValueError(f"unknown cleaning steps {unknown}; known: {sorted(STEPS)}")
        self.steps = tuple(steps)

    def clean(self, text: str, content_type: str = "text/plain") -> str:
        for name in self.steps:
            text = STEPS[name](text, content_type)
        return text
