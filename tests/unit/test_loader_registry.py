"""Loaders found by entry point: a registered name builds its class once; another is refused."""

from __future__ import annotations

import pytest

from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.loaders.files import FileLoader
from es_core.loaders.gcs import GcsLoader
from es_core.loaders.http import HttpLoader
from es_core.loaders.protocol import SourceLoader
from es_core.loaders.registry import Loaders
from es_core.loaders.s3 import S3Loader


def test_registered_names_build_their_loaders_once() -> None:
    loaders = Loaders(Settings())
    built = {name: loaders.get(name, "f") for name in ("s3", "gcs", "file", "http")}
    assert [type(loader) for loader in built.values()] == [
        S3Loader,
        GcsLoader,
        FileLoader,
        HttpLoader,
    ]
    assert all(isinstance(loader, SourceLoader) for loader in built.values())
    assert loaders.get("s3", "f") is built["s3"]


def test_an_unknown_loader_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidArgument) as raised:
        Loaders(Settings()).get("ftp", "items[0].source.loader")
    [violation] = raised.value.violations
    assert violation.field == "items[0].source.loader" and "'ftp'" in violation.description
