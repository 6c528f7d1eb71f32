"""Framework models for taint tracking, loaded from `[catalog.taint]` (rules/taint_*.toml).

The engine (collect.py / solve.py) never names a framework: sources, sinks, sanitizers, guards
and propagators all come from here, so adding a sink is a data change.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

from backend_audit.catalog import Catalog, CatalogError, require_list


@dataclass(frozen=True)
class Sink:
    kind: str
    call: str  # canonical ref, ".method", or a pseudo call "<slice>", "<model>", "<__dict__.update>"
    args: tuple[int, ...] = ()
    kwargs: tuple[str, ...] = ()
    star_kwargs: bool = False
    receiver: tuple[str, ...] = ()
    receiver_tainted: bool = False
    when: str = ""


@dataclass(frozen=True)
class Kind:
    rule: str
    what: str
    validation: str


@dataclass
class TaintModels:
    global_requests: frozenset[str]
    global_request_attrs: frozenset[str]
    global_request_methods: frozenset[str]
    request_param_names: frozenset[str]
    request_types: frozenset[str]
    request_attrs: frozenset[str]
    request_methods: frozenset[str]
    view_kwargs_attr: str
    validated_attrs: frozenset[str]
    flask_apps: frozenset[str]
    fastapi_apps: frozenset[str]
    route_methods: frozenset[str]
    flask_validated_converters: frozenset[str]
    flask_numeric_converters: frozenset[str]
    django_validated_converters: frozenset[str]
    django_numeric_converters: frozenset[str]
    django_url_functions: frozenset[str]
    fastapi_tainted_types: frozenset[str]
    fastapi_numeric_types: frozenset[str]
    fastapi_request_objects: frozenset[str]
    fastapi_param_functions: frozenset[str]
    fastapi_validating_kwargs: frozenset[str]
    fastapi_bounding_kwargs: frozenset[str]
    fastapi_dependency_functions: frozenset[str]
    pydantic_bases: frozenset[str]
    enum_bases: frozenset[str]
    clean_calls: frozenset[str]
    numeric_calls: frozenset[str]
    clean_methods: frozenset[str]
    guard_calls: frozenset[str]
    guard_methods: frozenset[str]
    anchored_regex_calls: frozenset[str]
    anchored_regex_methods: frozenset[str]
    regex_compile: frozenset[str]
    validating_calls: frozenset[str]
    terminating_calls: frozenset[str]
    container_writers: frozenset[str]
    external_heads: frozenset[str]
    containment_methods: frozenset[str]
    normalizing_calls: frozenset[str]
    normalizing_methods: frozenset[str]
    tail_calls: frozenset[str]
    url_parsers: frozenset[str]
    source_calls: frozenset[str]
    suppressing_contexts: frozenset[str]
    regex_sub: frozenset[str]
    propagate_all: frozenset[str]
    file_objects: frozenset[str]
    app_names: frozenset[str]
    app_registry_attrs: frozenset[str]
    app_state_attrs: frozenset[str]
    app_extension_attrs: frozenset[str]
    app_globals: frozenset[str]
    callable_wrappers: frozenset[str]
    guard_name: re.Pattern = re.compile(r"(?!)")
    #: `when = "db_receiver"` sinks: module prefixes of database objects (DB-API drivers, ORMs)
    db_modules: frozenset[str] = frozenset()
    #: ... and the name tokens of an unknown-typed receiver that suggest a cursor/connection
    db_receiver_names: frozenset[str] = frozenset()
    #: ... and substrings of a name token that do (`pgconn`, `mydb`, `dbcursor`)
    db_receiver_parts: frozenset[str] = frozenset()
    sinks_by_ref: dict[str, list[Sink]] = field(default_factory=dict)
    sinks_by_method: dict[str, list[Sink]] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)
    #: last name segment of every sink call (a cheap test before computing call hints)
    sink_names: frozenset[str] = frozenset()
    consuming_sinks: frozenset[str] = frozenset()
    #: sink kind -> substrings of source descriptions that do not count for it
    ignored_sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: call ref (or ".method") -> position of the function argument it runs with the rest
    callback_runners: dict[str, int] = field(default_factory=dict)

    def is_external_head(self, head: str) -> bool:
        return head in self.external_heads or head in sys.stdlib_module_names

    def is_db_ref(self, ref: str) -> bool:
        """A canonical ref inside a database library (`psycopg2.connect().cursor()`)."""
        parts = ref.split(".")
        return any(".".join(parts[:i]) in self.db_modules for i in range(1, min(len(parts), 3) + 1))

    def db_name(self, text: str) -> bool:
        """A receiver name that suggests a cursor or connection (`cur`, `self.conn`, `pgdb`)."""
        for tok in _TOKEN.findall(text):
            tok = tok.lower()
            if tok in self.db_receiver_names or any(p in tok for p in self.db_receiver_parts):
                return True
        return False


_LIST_KEYS = (
    "global_requests", "global_request_attrs", "global_request_methods", "request_param_names",
    "request_types", "request_attrs", "request_methods", "validated_attrs", "flask_apps", "fastapi_apps",
    "route_methods", "flask_validated_converters", "flask_numeric_converters", "django_validated_converters",
    "django_numeric_converters", "django_url_functions", "fastapi_tainted_types", "fastapi_numeric_types",
    "fastapi_request_objects", "fastapi_param_functions", "fastapi_validating_kwargs", "fastapi_bounding_kwargs",
    "fastapi_dependency_functions", "pydantic_bases", "enum_bases", "clean_calls", "numeric_calls",
    "clean_methods", "guard_calls", "guard_methods", "anchored_regex_calls", "anchored_regex_methods",
    "regex_compile", "validating_calls", "terminating_calls", "container_writers", "external_heads",
    "containment_methods", "normalizing_calls", "normalizing_methods", "tail_calls", "url_parsers",
    "source_calls", "suppressing_contexts", "regex_sub", "propagate_all",
    "file_objects", "app_names", "app_registry_attrs", "app_state_attrs", "app_extension_attrs",
    "app_globals", "callable_wrappers", "db_modules", "db_receiver_names", "db_receiver_parts",
)

#: name tokens: identifiers split at `_`, `.` and camelCase humps (`dbCursor` -> db, Cursor)
_TOKEN = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def load_models(catalog: Catalog) -> TaintModels:
    """The models of `catalog`, built once per catalog content (workers call this per file)."""
    return catalog.compiled("taint", _build)


def _build(catalog: Catalog) -> TaintModels:
    table = catalog.section("taint")
    lists: dict[str, Any] = {}
    for k in _LIST_KEYS:
        value = table.get(k, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CatalogError(f"rules/: key 'catalog.taint.{k}' must be a list of strings")
        lists[k] = frozenset(value)
    models = TaintModels(view_kwargs_attr=str(table.get("view_kwargs_attr", "kwargs")), **lists)
    patterns = table.get("guard_name_patterns", [])
    try:
        if patterns:
            models.guard_name = re.compile("|".join(f"(?:{p})" for p in patterns))
    except (re.error, TypeError) as exc:
        raise CatalogError(f"rules/: key 'catalog.taint.guard_name_patterns' has a bad pattern ({exc})") from None
    for i, item in enumerate(require_list(catalog, "taint", "sink", ("kind", "call"))):
        try:
            sink = Sink(
                kind=str(item["kind"]), call=str(item["call"]),
                args=tuple(int(a) for a in item.get("args", [])),
                kwargs=tuple(str(k) for k in item.get("kwargs", [])),
                star_kwargs=bool(item.get("star_kwargs", False)),
                receiver=tuple(str(r) for r in item.get("receiver", [])),
                receiver_tainted=bool(item.get("receiver_tainted", False)),
                when=str(item.get("when", "")),
            )
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"rules/: key 'catalog.taint.sink[{i}]' is malformed ({exc})") from None
        if sink.call.startswith("."):
            models.sinks_by_method.setdefault(sink.call[1:], []).append(sink)
        else:
            models.sinks_by_ref.setdefault(sink.call, []).append(sink)
    runners = table.get("callback_runners", {})
    if not isinstance(runners, dict) or not all(isinstance(v, int) and v >= 0 for v in runners.values()):
        raise CatalogError("rules/: key 'catalog.taint.callback_runners' must map call refs to argument positions")
    models.callback_runners = {str(k): int(v) for k, v in runners.items()}
    ignored = table.get("ignored_sources", {})
    if not isinstance(ignored, dict):
        raise CatalogError("rules/: key 'catalog.taint.ignored_sources' must be a table")
    models.ignored_sources = {str(k): tuple(str(x) for x in v) for k, v in ignored.items() if isinstance(v, list)}
    kinds = table.get("kinds", {})
    if not isinstance(kinds, dict):
        raise CatalogError("rules/: key 'catalog.taint.kinds' must be a table")
    for name, k in kinds.items():
        if not isinstance(k, dict) or "rule" not in k:
            raise CatalogError(f"rules/: key 'catalog.taint.kinds.{name}' needs a 'rule'")
        models.kinds[name] = Kind(str(k["rule"]), str(k.get("what", "")), str(k.get("validation", "")))
    for sinks in (*models.sinks_by_ref.values(), *models.sinks_by_method.values()):
        for s in sinks:
            if s.kind not in models.kinds:
                raise CatalogError(f"rules/: sink kind '{s.kind}' of '{s.call}' has no catalog.taint.kinds entry")
    # sinks whose result is the dangerous object itself (text(), Template(), a response): the
    # taint is reported there and does not flow on; re.sub/re.split results still carry the subject
    models.consuming_sinks = frozenset(
        r for r, sinks in models.sinks_by_ref.items()
        if all(s.kind != "regex" for s in sinks) or r in models.regex_compile)
    models.sink_names = frozenset(models.sinks_by_method) | frozenset(
        r.rsplit(".", 1)[-1].removesuffix("()") for r in models.sinks_by_ref)
    return models
