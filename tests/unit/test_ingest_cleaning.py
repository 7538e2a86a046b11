"""Cleaning steps: HTML to its text (HTML only), NFKC without control characters, one space."""

from __future__ import annotations

import pytest

from es_core.ingest.cleaning import TextCleaner, normalize_unicode, normalize_whitespace, strip_html

PAGE = """<html><head><title>Ignored head</title><style>p {color: red}</style></head>
<body><h1>Vitamin&nbsp;D</h1><p>Lowers <b>risk</b> &amp; helps.</p>
<script>alert("no")</script><ul><li>one</li><li>two</li></ul></body></html>"""


def test_strip_html_keeps_the_text_a_page_shows() -> None:
    text = normalize_whitespace(strip_html(PAGE, "text/html; charset=utf-8"), "")
    assert text == "Vitamin D Lowers risk & helps. one two"
    assert "alert" not in text and "color" not in text and "Ignored" not in text


def test_strip_html_leaves_plain_text_alone() -> None:
    assert strip_html("a <b> in a formula", "text/plain") == "a <b> in a formula"


def test_normalize_unicode_folds_compatibility_forms_and_drops_controls() -> None:
    assert normalize_unicode("ﬁnal ＡＢＣ\x00x\x07y", "") == "final ABC x y"


def test_cleaner_runs_its_steps_in_order() -> None:
    cleaner = TextCleaner(("strip_html", "normalize_unicode", "normalize_whitespace"))
    assert cleaner.clean(PAGE, "text/html") == "Vitamin D Lowers risk & helps. one two"
    assert cleaner.clean("  a\n\n b\t", "text/plain") == "a b"
    assert TextCleaner(()).clean("  kept  as is ") == "  kept  as is "


def test_cleaner_refuses_unknown_steps() -> None:
    with pytest.raises(ValueError, match="unknown cleaning steps"):
        TextCleaner(("strip_html", "lowercase"))
