"""Which package may import which: es_core knows neither gRPC nor Celery, es_server does not
reach into the workers, only es_broker and es_workers speak Celery, the Triton process and the
library know nothing of the harness that drives a stack from outside, and the domain types every
layer shares know nothing of the storage that keeps them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_OUTSIDE = ("es_cli", "es_harness", "es_triton")
FORBIDDEN = {
    "es_core": ("grpc", "celery", "kombu", "es_server", "es_workers", "es_broker", *_OUTSIDE),
    "es_broker": ("grpc", "es_server", "es_workers", *_OUTSIDE),
    "es_server": ("celery", "kombu", "es_workers", *_OUTSIDE),
    "es_workers": ("grpc", "es_server", *_OUTSIDE),
    "es_triton": ("celery", "es_server", "es_workers", "es_cli", "es_harness"),
    "es_core/domain.py": ("es_core.storage", "asyncpg"),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(part: str) -> list[Path]:
    """The Python files of a package folder, or the one module named."""
    path = ROOT / part
    return [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))


def is_within(name: str, forbidden: str) -> bool:
    return name == forbidden or name.startswith(forbidden + ".")


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_package_imports_nothing_it_must_not(part: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources(part)
        for name in sorted(imported_modules(path))
        if any(is_within(name, forbidden) for forbidden in FORBIDDEN[part])
    ]
    assert offences == []


def test_the_check_sees_an_offence() -> None:
    """The walk finds imports inside functions too (a lazy import is still a dependency)."""
    source = ROOT / "es_workers" / "dispatch.py"
    assert "es_workers.app" in imported_modules(source)
