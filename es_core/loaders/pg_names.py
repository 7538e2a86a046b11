"""Names in a PostgreSQL source: a table given as ``table`` or ``schema.table``, and the
columns a text template names. Names are taken as stored in the catalog (an unquoted
``CREATE TABLE Docs`` is stored as ``docs``); a name goes into SQL only quoted, and a table
name only after it passed ``parse_table``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class TableName:
    schema: str  # "" = the first schema of the search path that has the table
    name: str

    @property
    def sql(self) -> str:
        """The name quoted for SQL."""
        table = quote_ident(self.name)
        return f"{quote_ident(self.schema)}.{table}" if self.schema else table

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def parse_table(text: str) -> TableName | None:
    """``table`` or ``schema.table``, each part a plain identifier (letters, digits, ``_``,
    ``$``; not starting with a digit; at most 63 characters); None for anything else."""
    parts = text.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        return None
    return TableName(parts[0], parts[1]) if len(parts) == 2 else TableName("", parts[0])


def quote_ident(name: str) -> str:
    """A column or table name quoted for SQL (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def template_columns(template: str) -> list[str]:
    """The columns a text template reads: the first segment of each ``{a}`` or ``{a.b}``
    (``{{`` and ``}}`` are literal braces), in order, once each."""
    unescaped = template.replace("{{", "").replace("}}", "")
    names: list[str] = []
    for path in _TEMPLATE_FIELD.findall(unescaped):
        column = path.split(".", 1)[0].strip()
        if column and column not in names:
            names.append(column)
    return names
