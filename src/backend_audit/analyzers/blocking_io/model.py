"""The `[catalog.blocking_io]` data, validated and compiled into pattern sets.

Every library fact the analyzer uses lives in `rules/blocking_io.toml` (or a user's catalog
file): this module only turns it into fast lookups. A mistake raises `CatalogError` naming the
key, like every other catalog problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend_audit.analyzers.blocking_io.patterns import PatternError, PatternSet
from backend_audit.catalog import Catalog, CatalogError

SECTION = "blocking_io"
KINDS = ("network", "database", "file system", "subprocess", "sleep", "wait", "CPU", "console")


@dataclass(frozen=True)
class BlockingEntry:
    """One blocking callable family: what it waits on and what to use instead."""

    kind: str
    alternative: str
    confidence: str = "high"
    #: accepted for older user catalogs; every blocking call is reported at its own line now
    covers_methods: bool = False
    rule: str = "BA401"


@dataclass(frozen=True)
class TimeoutEntry:
    library: str
    default: str  # "none" (waits forever) | "set" (has a default timeout)
    timeout_arg: str = "timeout"
    timeout_position: int | None = None
    overrides: tuple[str, ...] = ()
    none_values: tuple[str, ...] = ()
    adapter_bases: tuple[str, ...] = ()


@dataclass
class DjangoModel:
    model_bases: frozenset[str]
    external_models: frozenset[str]
    manager_bases: frozenset[str]
    queryset_bases: frozenset[str]
    manager_attrs: frozenset[str]
    lazy_methods: frozenset[str]
    blocking_methods: dict[str, str]
    instance_methods: dict[str, str]
    related_methods: dict[str, str]
    evaluators: dict[str, str]
    #: field class -> "related" (a related manager) or "instance" (the related object)
    relation_fields: dict[str, str] = field(default_factory=dict)
    known_related: frozenset[str] = frozenset()


@dataclass
class Frameworks:
    route_decorators: PatternSet[bool]
    route_registrations: PatternSet[bool]
    handler_bases: frozenset[str]
    request_types: frozenset[str]
    request_params: frozenset[str]
    asgi_params: frozenset[str]
    #: startup/shutdown hooks (run on the loop even when sync): calls taking hook lists by keyword
    loop_hook_calls: PatternSet[bool] = field(default_factory=PatternSet)
    loop_hook_kwargs: frozenset[str] = frozenset()
    #: `add_event_handler(event, hook)` calls and `@on_event(...)` decorators
    loop_hook_registrations: PatternSet[bool] = field(default_factory=PatternSet)


@dataclass
class BlockingCatalog:
    calls: PatternSet[BlockingEntry] = field(default_factory=PatternSet)
    safe: PatternSet[bool] = field(default_factory=PatternSet)
    offloaders: PatternSet[bool] = field(default_factory=PatternSet)
    offloader_methods: frozenset[str] = frozenset()
    partials: frozenset[str] = frozenset()
    #: functions that read/write a file object passed to them (`json.load(fh)`)
    file_consumers: frozenset[str] = frozenset()
    #: objects whose sync iteration blocks (file objects), with what to use instead
    iterables: PatternSet[BlockingEntry] = field(default_factory=PatternSet)
    sync_callers: frozenset[str] = frozenset()
    sync_caller_methods: frozenset[str] = frozenset()
    unknown_receiver_methods: dict[str, str] = field(default_factory=dict)
    timeouts: PatternSet[TimeoutEntry] = field(default_factory=PatternSet)
    django: DjangoModel | None = None
    frameworks: Frameworks | None = None

    def blocking(self, ref: str | None) -> BlockingEntry | None:
        if not ref or ref[0] == "$" or self.safe.match(ref):
            return None
        return self.calls.match(ref)


def _where(key: str) -> str:
    return f"rules/ (or a user catalog): key 'catalog.{SECTION}.{key}'"


def _strings(table: dict[str, Any], key: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{_where(key)} must be a list of strings")
    return value


def _mapping(table: dict[str, Any], key: str) -> dict[str, str]:
    value = table.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CatalogError(f"{_where(key)} must be a table of strings")
    return dict(value)


def _patterns(target: PatternSet, patterns: Any, payload: Any, key: str) -> None:
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not patterns:
        raise CatalogError(f"{_where(key)} needs 'patterns' (a list of strings) or 'pattern'")
    for p in patterns:
        try:
            target.add(p, payload)
        except PatternError as exc:
            raise CatalogError(f"{_where(key)}: {exc}") from None


def load(catalog: Catalog) -> BlockingCatalog:
    """The compiled blocking-I/O catalog (memoised per catalog content)."""
    return catalog.compiled(SECTION, _build)


def _kind_and_alternative(entry: Any, key: str) -> tuple[str, str]:
    """The `kind` and `alternative` every blocking entry carries, checked."""
    if not isinstance(entry, dict):
        raise CatalogError(f"{_where(key)} must be a table")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise CatalogError(f"{_where(key + '.kind')} must be one of {', '.join(KINDS)} (got {kind!r})")
    alt = entry.get("alternative")
    if not isinstance(alt, str) or not alt.strip():
        raise CatalogError(f"{_where(key + '.alternative')} must be a non-empty string")
    return kind, alt.strip()


def _build(catalog: Catalog) -> BlockingCatalog:
    table = catalog.section(SECTION)
    out = BlockingCatalog()
    calls = table.get("calls", [])
    if not isinstance(calls, list):
        raise CatalogError(f"{_where('calls')} must be an array of tables ([[catalog.{SECTION}.calls]])")
    for i, entry in enumerate(calls):
        k = f"calls[{i}]"
        kind, alt = _kind_and_alternative(entry, k)
        conf = entry.get("confidence", "high")
        if conf not in ("low", "medium", "high"):
            raise CatalogError(f"{_where(k + '.confidence')} must be low, medium or high")
        rule = entry.get("rule", "BA401")
        if rule not in ("BA401", "BA404"):
            raise CatalogError(f"{_where(k + '.rule')} must be BA401 or BA404 (got {rule!r})")
        payload = BlockingEntry(kind, alt, conf, bool(entry.get("covers_methods", False)), rule)
        _patterns(out.calls, entry.get("patterns", entry.get("pattern")), payload, k)
    _patterns_list(out.safe, table, "safe")
    _patterns_list(out.offloaders, table, "offloaders")
    out.offloader_methods = frozenset(_strings(table, "offloader_methods"))
    out.partials = frozenset(_strings(table, "partials"))
    out.file_consumers = frozenset(_strings(table, "file_consumers"))
    iterables = table.get("iterables", [])
    if not isinstance(iterables, list):
        raise CatalogError(f"{_where('iterables')} must be an array of tables ([[catalog.{SECTION}.iterables]])")
    for i, entry in enumerate(iterables):
        k = f"iterables[{i}]"
        kind, alt = _kind_and_alternative(entry, k)
        _patterns(out.iterables, entry.get("patterns", entry.get("pattern")), BlockingEntry(kind, alt), k)
    out.sync_callers = frozenset(_strings(table, "sync_callers"))
    out.sync_caller_methods = frozenset(_strings(table, "sync_caller_methods"))
    out.unknown_receiver_methods = _mapping(table, "unknown_receiver_methods")
    for name, kind in out.unknown_receiver_methods.items():
        if kind not in KINDS:
            raise CatalogError(f"{_where('unknown_receiver_methods.' + name)} must be one of {', '.join(KINDS)}")
    timeouts = table.get("timeouts", [])
    if not isinstance(timeouts, list):
        raise CatalogError(f"{_where('timeouts')} must be an array of tables")
    for i, entry in enumerate(timeouts):
        k = f"timeouts[{i}]"
        if not isinstance(entry, dict):
            raise CatalogError(f"{_where(k)} must be a table")
        default = entry.get("default")
        if default not in ("none", "set"):
            raise CatalogError(f"{_where(k + '.default')} must be 'none' or 'set' (got {default!r})")
        pos = entry.get("timeout_position")
        if pos is not None and not isinstance(pos, int):
            raise CatalogError(f"{_where(k + '.timeout_position')} must be an integer")
        payload = TimeoutEntry(
            library=str(entry.get("library", "http")), default=default,
            timeout_arg=str(entry.get("timeout_arg", "timeout")), timeout_position=pos,
            overrides=tuple(_strings(entry, "overrides")), none_values=tuple(_strings(entry, "none_values")),
            adapter_bases=tuple(_strings(entry, "adapter_bases")),
        )
        _patterns(out.timeouts, entry.get("patterns", entry.get("pattern")), payload, k)
    dj = table.get("django", {})
    if not isinstance(dj, dict):
        raise CatalogError(f"{_where('django')} must be a table")
    out.django = DjangoModel(
        model_bases=frozenset(_strings(dj, "model_bases")),
        external_models=frozenset(_strings(dj, "external_models")),
        manager_bases=frozenset(_strings(dj, "manager_bases")),
        queryset_bases=frozenset(_strings(dj, "queryset_bases")),
        manager_attrs=frozenset(_strings(dj, "manager_attrs")),
        lazy_methods=frozenset(_strings(dj, "lazy_methods")),
        blocking_methods=_mapping(dj, "blocking_methods"),
        instance_methods=_mapping(dj, "instance_methods"),
        related_methods=_mapping(dj, "related_methods"),
        evaluators=_mapping(dj, "evaluators"),
        relation_fields=_relation_fields(_strings(dj, "relation_fields")),
        known_related=frozenset(_strings(dj, "known_related")),
    )
    fw = table.get("frameworks", {})
    if not isinstance(fw, dict):
        raise CatalogError(f"{_where('frameworks')} must be a table")
    decorators: PatternSet[bool] = PatternSet()
    registrations: PatternSet[bool] = PatternSet()
    _patterns_list(decorators, fw, "route_decorators", "frameworks.")
    _patterns_list(registrations, fw, "route_registrations", "frameworks.")
    hook_calls: PatternSet[bool] = PatternSet()
    hook_registrations: PatternSet[bool] = PatternSet()
    _patterns_list(hook_calls, fw, "loop_hook_calls", "frameworks.")
    _patterns_list(hook_registrations, fw, "loop_hook_registrations", "frameworks.")
    out.frameworks = Frameworks(
        route_decorators=decorators, route_registrations=registrations,
        handler_bases=frozenset(_strings(fw, "handler_bases")),
        request_types=frozenset(_strings(fw, "request_types")),
        request_params=frozenset(_strings(fw, "request_params")),
        asgi_params=frozenset(_strings(fw, "asgi_params")),
        loop_hook_calls=hook_calls, loop_hook_kwargs=frozenset(_strings(fw, "loop_hook_kwargs")),
        loop_hook_registrations=hook_registrations,
    )
    return out


def _patterns_list(target: PatternSet, table: dict[str, Any], key: str, prefix: str = "") -> None:
    for p in _strings(table, key):
        try:
            target.add(p, True)
        except PatternError as exc:
            raise CatalogError(f"{_where(prefix + key)}: {exc}") from None


def _relation_fields(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        ref, _, kind = item.partition("=")
        if kind not in ("related", "instance") or not ref:
            raise CatalogError(f"{_where('django.relation_fields')}: {item!r} must look like 'module.Field=related' or '=instance'")
        out[ref] = kind
    return out
