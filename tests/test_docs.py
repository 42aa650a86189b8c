"""The user-facing docs in docs/ stay true to the code: every config key and export field
the archiver has is documented, and nothing documented is missing from the code."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

from archiver.config import Config, known_providers
from archiver.export import FIELDS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def documented_tables(path: Path) -> dict[str, set[str]]:
    """``## `[section]` `` headings → the backticked first-column keys of the table below them."""
    tables: dict[str, set[str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## `\[+([a-z_.]+)\]+`", line)
        if heading:
            current = tables.setdefault(heading.group(1), set())
        elif current is not None and (row := re.match(r"^\| `([a-z_]+)` \|", line)):
            current.add(row.group(1))
    return tables


def config_sections(cls: type = Config, prefix: str = "") -> dict[str, set[str]]:
    """Every table the config reads (nested dataclasses, arrays of tables) → its keys."""
    sections: dict[str, set[str]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("resolved"):
            continue  # computed at load (e.g. the resolved accounts), not read from the file
        inner = [a for a in (hints[f.name], *typing.get_args(hints[f.name])) if dataclasses.is_dataclass(a)]
        if inner:
            sections.update(config_sections(inner[0], f"{prefix}{f.name}."))
        elif prefix:
            sections.setdefault(prefix.rstrip("."), set()).add(f.name)
    return sections


def provider_sections() -> dict[str, set[str]]:
    """Each registered provider's section: its config class's keys."""
    found: dict[str, set[str]] = {}
    for name, cls in known_providers().items():
        found.update(config_sections(cls, f"{name}."))
    return found


class TestConfigurationReference:
    def test_every_config_key_is_documented_and_every_documented_key_exists(self) -> None:
        """docs/configuration.md lists exactly the keys of the configuration object, per section
        (the providers' sections from their registered config classes)."""
        assert documented_tables(DOCS / "configuration.md") == {**config_sections(), **provider_sections()}


class TestExportFormat:
    def test_every_exported_field_is_documented(self) -> None:
        """docs/export-format.md names every field ``archiver export`` writes, and no other."""
        text = (DOCS / "export-format.md").read_text(encoding="utf-8")
        documented = set(re.findall(r"^\| `([a-z_]+)`", text, re.M))
        documented |= {n for row in re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)+) \|", text, re.M)
                       for n in re.findall(r"`([a-z_]+)`", row)}
        assert documented == set(FIELDS)
