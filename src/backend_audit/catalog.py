"""Load and validate the data catalogs under `rules/` (and the user's own catalog files).

Every `*.toml` file under the rules directory may hold two kinds of tables:

* `[[rule]]` entries: the documentation of one rule (id, name, category, title, severity, ...).
* `[catalog.<name>]` tables: data an analyzer reads (blocking calls, taint sources, ORM APIs...).
  Tables of the same catalog from several files are merged: lists are concatenated, nested
  tables merged key by key, scalars from later files win. User catalog files (configuration
  key `extend-catalogs`) are loaded after the built-in ones, so they add to and override them.

Mistakes raise `CatalogError` naming the file and the key, never a traceback.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from backend_audit.findings import CATEGORIES, CONFIDENCES, SEVERITIES, category_of_rule


class CatalogError(Exception):
    """A malformed catalog file; the message names the file and the key."""


RULE_ID = re.compile(r"^BA[1-4]\d\d$")
RULE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
REQUIRED_TEXT = ("name", "title", "description", "why", "fix", "tradeoffs", "example_bad", "example_good")


@dataclass(frozen=True)
class RuleDoc:
    id: str
    name: str
    category: str
    title: str
    severity: str
    confidence: str
    description: str
    why: str
    fix: str
    tradeoffs: str
    example_bad: str
    example_good: str
    references: tuple[str, ...] = ()
    #: advisor text with {placeholders} filled from Finding.context; falls back to `fix`
    remediation: str = ""
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "category": self.category, "title": self.title,
            "severity": self.severity, "confidence": self.confidence, "description": self.description,
            "why": self.why, "fix": self.fix, "tradeoffs": self.tradeoffs,
            "example_bad": self.example_bad, "example_good": self.example_good,
            "references": list(self.references),
        }


@dataclass
class Catalog:
    rules: dict[str, RuleDoc] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    digest: str = ""

    def section(self, name: str) -> dict[str, Any]:
        """The merged `[catalog.<name>]` table (empty when no file defines it)."""
        return self.data.get(name, {})

    def rule(self, rule_id: str) -> RuleDoc:
        return self.rules[rule_id]

    def compiled(self, name: str, build: "Callable[[Catalog], Any]") -> Any:
        """`build(self)`, computed once per catalog content and analyzer (workers call it per file)."""
        key = (name, self.digest or str(id(self)))
        if key not in _COMPILED:
            _COMPILED[key] = build(self)
        return _COMPILED[key]


_COMPILED: dict[tuple[str, str], Any] = {}


def builtin_rules_dir() -> Path:
    """`rules/` inside an installed wheel, else at the root of a source checkout."""
    packaged = Path(__file__).resolve().parent / "rules"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "rules"
    if checkout.is_dir():
        return checkout
    raise CatalogError(f"the rules directory is missing (looked in {packaged} and {checkout})")


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        old = into.get(key)
        if isinstance(old, list) and isinstance(value, list):
            old.extend(value)
        elif isinstance(old, dict) and isinstance(value, dict):
            _merge(old, value)
        else:
            into[key] = value


def _text(entry: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = entry.get(key)
    if value is None:
        if required:
            raise CatalogError(f"{where}: missing key '{key}'")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise CatalogError(f"{where}: key '{key}' must be a non-empty string")
    return value


def _rule_from(entry: Any, path: Path, index: int) -> RuleDoc:
    where = f"{path}: rule[{index}]"
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: must be a table")
    rid = entry.get("id")
    if not isinstance(rid, str) or not RULE_ID.match(rid):
        raise CatalogError(f"{where}: key 'id' must look like BA101 (got {rid!r})")
    where = f"{path}: rule {rid}"
    known = {"id", "category", "severity", "confidence", "references", "remediation", *REQUIRED_TEXT}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise CatalogError(f"{where}: unknown key '{unknown[0]}'")
    texts = {k: _text(entry, k, where) for k in REQUIRED_TEXT}
    if not RULE_NAME.match(texts["name"]):
        raise CatalogError(f"{where}: key 'name' must be kebab-case (got {texts['name']!r})")
    category = entry.get("category", category_of_rule(rid))
    if category not in CATEGORIES or category != category_of_rule(rid):
        raise CatalogError(f"{where}: key 'category' must be {category_of_rule(rid)!r} for this id (got {category!r})")
    severity = entry.get("severity")
    if severity not in SEVERITIES:
        raise CatalogError(f"{where}: key 'severity' must be one of {', '.join(SEVERITIES)} (got {severity!r})")
    confidence = entry.get("confidence", "high")
    if confidence not in CONFIDENCES:
        raise CatalogError(f"{where}: key 'confidence' must be one of {', '.join(CONFIDENCES)} (got {confidence!r})")
    refs = entry.get("references", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise CatalogError(f"{where}: key 'references' must be a list of strings")
    return RuleDoc(
        id=rid, category=category, severity=severity, confidence=confidence,
        references=tuple(refs), remediation=_text(entry, "remediation", where, required=False),
        source=str(path), **texts,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog file ({exc.strerror or exc})") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CatalogError(f"{path}: catalog file is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: invalid TOML: {exc}") from None


def load_catalog(extra_files: tuple[str | Path, ...] = (), rules_dir: Path | None = None) -> Catalog:
    """Read every built-in catalog file, then the user's; validate; compute the content digest."""
    base = rules_dir or builtin_rules_dir()
    files = sorted(base.rglob("*.toml"))
    for extra in extra_files:
        p = Path(extra)
        if p.is_dir():
            files.extend(sorted(p.rglob("*.toml")))
        elif p.is_file():
            files.append(p)
        else:
            raise CatalogError(f"{p}: catalog file not found")
    return _load_files(tuple(files))


@lru_cache(maxsize=8)
def _load_files(files: tuple[Path, ...]) -> Catalog:
    catalog = Catalog(files=list(files))
    digest = hashlib.sha256()
    for path in files:
        doc = _read_toml(path)
        digest.update(path.name.encode() + b"\0" + repr(sorted(doc.items(), key=lambda kv: kv[0])).encode())
        unknown = sorted(set(doc) - {"rule", "catalog"})
        if unknown:
            raise CatalogError(f"{path}: unknown top-level key '{unknown[0]}' (expected 'rule' or 'catalog')")
        rules = doc.get("rule", [])
        if not isinstance(rules, list):
            raise CatalogError(f"{path}: key 'rule' must be an array of tables ([[rule]])")
        for i, entry in enumerate(rules):
            rule = _rule_from(entry, path, i)
            catalog.rules[rule.id] = rule  # a later (user) file may override a built-in rule's docs
        sections = doc.get("catalog", {})
        if not isinstance(sections, dict):
            raise CatalogError(f"{path}: key 'catalog' must be a table")
        for name, table in sections.items():
            if not isinstance(table, dict):
                raise CatalogError(f"{path}: key 'catalog.{name}' must be a table")
            _merge(catalog.data.setdefault(name, {}), table)
    catalog.digest = digest.hexdigest()[:16]
    return catalog


def require_list(catalog: Catalog, section: str, key: str, item_keys: tuple[str, ...] = ()) -> list[Any]:
    """A list from `[catalog.<section>]`, each table item checked for `item_keys`.

    Analyzers use this to validate the data they read, so a mistake names the section and key.
    """
    table = catalog.section(section)
    value = table.get(key, [])
    where = f"catalog.{section}.{key}"
    files = ", ".join(str(f) for f in catalog.files if section in f.read_text("utf-8", "replace")) or "rules/"
    if not isinstance(value, list):
        raise CatalogError(f"{files}: key '{where}' must be a list")
    for i, item in enumerate(value):
        if item_keys:
            if not isinstance(item, dict):
                raise CatalogError(f"{files}: key '{where}[{i}]' must be a table")
            for k in item_keys:
                if k not in item:
                    raise CatalogError(f"{files}: key '{where}[{i}]' is missing '{k}'")
    return value
