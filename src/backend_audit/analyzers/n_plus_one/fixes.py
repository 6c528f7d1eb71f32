"""Messages, exact fixes and advisor context for N+1 events.

Context keys (used by the `remediation` texts in rules/n_plus_one.toml):
`model` (the model whose relation is touched), `relation` (attribute name), `path` (the lookup
path from the queryset's rows, `author__publisher`), `fix` (the exact call to add:
`select_related("author")`, `prefetch_related("tags")`, `selectinload(User.posts)`,
`annotate(...)`, `bulk_create(...)`...), `queryset_path`/`queryset_line` (where the queryset is
built, when known), `call` (the per-iteration call), `callee` (for BA110).
"""

from __future__ import annotations

from typing import Any

from backend_audit.findings import Related

from .values import Event


def _short(q: str | None) -> str:
    return q.rsplit(".", 1)[-1] if q else "?"


def _sa_fix(ev, e: Event) -> str:
    owner = _short(e.detail.get("model"))
    rel = e.detail.get("relation")
    loader = "selectinload"
    m = ev.orm.models.get(e.detail.get("model") or "")
    f = (m.fields.get(rel) or getattr(m, "backrefs", {}).get(rel)) if m else None
    if f is not None:
        info = ev.index.classes.get(f.declared_in)
        ann = info.summary.attrs.get(rel).annotation if info and rel in info.summary.attrs else None
        uselist = f.kw("uselist")
        if uselist is False or (ann and "[" in ann and not any(x in ann for x in ("list[", "List[", "set[", "Set["))):
            loader = "joinedload"
    path = e.detail.get("path") or rel
    if path and "__" in path:
        return f"{loader}(...).{loader}({owner}.{rel}) along the path {path.replace('__', ' -> ')}"
    return f"{loader}({owner}.{rel})"


def fix_for(ev, e: Event, rule: str) -> str:
    k = e.kind
    d = e.detail
    path = d.get("path") or d.get("relation") or ""
    if k == "fk":
        row = d.get("row")
        if row is not None and getattr(row, "many", False):
            return f'prefetch_related("{path}")'
        return f'select_related("{path}")'
    if k in ("gfk", "mgr"):
        return f'prefetch_related("{path}")'
    if k == "mgr_count":
        m = ev.orm.models.get(d.get("model") or "")
        rel = d.get("relation")
        qname = rel
        if m is not None and rel in m.reverse:
            qname = m.reverse[rel].query_name
        if "__" in path:
            return f'prefetch_related("{path}") and count in Python (len(...))'
        return f'annotate({rel}_count=Count("{qname}"))'
    if k == "mgr_query":
        return f'prefetch_related(Prefetch("{path}", queryset=<the filtered queryset>, to_attr="...")) ' \
               f'or annotate(...) with Subquery/Count'
    if k == "deferred":
        return f'remove "{d.get("relation")}" from defer() or add it to only()'
    if k == "sa_lazy":
        if d.get("dynamic"):
            return f"lazy=\"selectin\" instead of a dynamic relationship, or one grouped query for {_short(d.get('model'))}.{d.get('relation')}"
        return _sa_fix(ev, e)
    if k in ("query", "qs_eval", "sa_query"):
        call = d.get("call")
        if call in ("create",):
            return "bulk_create([...]) after the loop"
        if call in ("get_or_create", "update_or_create"):
            return "bulk_create(..., update_conflicts=True) or one in_bulk()/filter(__in=...) lookup before the loop"
        if call == "update":
            return "one queryset.update() or bulk_update(rows, fields) after the loop"
        if call == "delete":
            return "one queryset.filter(pk__in=...).delete() after the loop"
        if call in ("count", "exists", "aggregate"):
            return "annotate(...) the counts/aggregates onto the outer queryset (Count/Subquery), or one values().annotate() query"
        return "one query before the loop (filter(<field>__in=keys) / in_bulk() / a join) and a dict lookup inside it"
    if k == "write":
        call = d.get("call", "")
        if call == "save" and d.get("per_iter"):
            return "bulk_update(rows, [fields]) after the loop (or queryset.update() when the value is the same)"
        if call == "save":
            return "collect the new objects and bulk_create(objs) after the loop"
        if call == "delete":
            return "one queryset.delete() instead of deleting row by row"
        if "." in call:
            return f"one bulk call: {call.split('.')[0]}.through.objects.bulk_create(...) or {call}(*objs) with all items"
        return "bulk_create / bulk_update after the loop"
    if k == "raw":
        return "executemany(...), one statement with WHERE id IN (...) / = ANY(%s), or a JOIN"
    if k == "http":
        return "a batch endpoint, concurrent requests (asyncio.gather with a bounded semaphore), or a cache"
    if k == "call":
        if e.inner:
            return fix_for(ev, e.inner[0], rule)
        return "move the query out of the loop"
    return ""


def _what(ev, e: Event) -> str:
    d = e.detail
    k = e.kind
    model = _short(d.get("model"))
    if k == "fk":
        return f"`{model}.{d.get('relation')}` is loaded with one query per row"
    if k == "gfk":
        return f"the generic relation `{model}.{d.get('relation')}` is loaded with one query per row"
    if k == "mgr":
        return f"the related manager `{model}.{d.get('relation')}.all()` runs one query per row"
    if k == "mgr_count":
        return f"`{model}.{d.get('relation')}.{d.get('call')}()` runs one query per row"
    if k == "mgr_query":
        extra = " (a prefetch does not help: it builds a new query)" if d.get("prefetched") else ""
        return f"`{model}.{d.get('relation')}.{d.get('call')}()` runs one query per row{extra}"
    if k == "deferred":
        return f"the deferred field `{model}.{d.get('relation')}` is fetched with one query per row"
    if k == "sa_lazy":
        return f"the lazy relationship `{model}.{d.get('relation')}` is loaded with one query per row"
    if k in ("query", "qs_eval"):
        call = d.get("call") or "query"
        return f"`{model}` is queried once per iteration ({call})"
    if k == "sa_query":
        return f"a SQLAlchemy query ({d.get('call')}) runs once per iteration"
    if k == "write":
        return f"`{d.get('call')}()` writes one row per iteration"
    if k == "raw":
        return "`execute()` runs one SQL statement per iteration"
    if k == "http":
        return f"`{d.get('call', '').removesuffix('()')}` makes one HTTP request per item"
    if k == "call":
        callee = d.get("callee", "")
        first = e.inner[0] if e.inner else None
        why = f": {_what(ev, first)} at {first.path}:{first.line}" if first else ""
        name = d.get("via") or _short(callee)
        return f"`{name}` queries on every call{why}"
    return "a query runs per iteration"


def describe_event(ev, e: Event, rule: str) -> dict[str, Any]:
    d = e.detail
    fix = fix_for(ev, e, rule)
    origin = None
    row = d.get("row")
    if row is not None and getattr(row, "origin", None):
        origin = row.origin
    qs = d.get("qs")
    if origin is None and qs is not None and getattr(qs, "origin", None):
        origin = qs.origin
    info: dict[str, Any] = {
        "model": _short(d.get("model")) if d.get("model") else "",
        "relation": d.get("relation", ""),
        "path": d.get("path", ""),
        "fix": fix,
        "call": str(d.get("call", "")),
        "queryset_path": origin[0] if origin else "",
        "queryset_line": origin[1] if origin else 0,
    }
    if e.kind == "call":
        info["callee"] = d.get("callee", "")
    where = f" (queryset built at {origin[0]}:{origin[1]})" if origin else ""
    info["_message"] = f"N+1: {_what(ev, e)}{where}; fix: {fix}"
    info["_origin"] = (origin[0], origin[1]) if origin else None
    rel: list[Related] = []
    if d.get("field_path") and d.get("field_line"):
        rel.append(Related(d["field_path"], d["field_line"], f"the relation {info['model']}.{info['relation']}"))
    for inner in e.inner[:3]:
        rel.append(Related(inner.path, inner.line, f"runs per call: {_what(ev, inner)}"))
    info["_related"] = rel
    return info


def combined_fix(ev, events: list[Event], rule: str) -> str:
    """One fix for several relation events on one queryset: `select_related("a__b"); prefetch_related("c")`."""
    select: list[str] = []
    prefetch: list[str] = []
    other: list[str] = []
    for e in events:
        if e.kind == "call" and e.inner:
            e = e.inner[0]
        fx = fix_for(ev, e, rule)
        if fx.startswith('select_related("') and fx.endswith('")'):
            select.append(fx[len('select_related("'):-2])
        elif fx.startswith('prefetch_related("') and fx.endswith('")'):
            prefetch.append(fx[len('prefetch_related("'):-2])
        elif fx not in other:
            other.append(fx)

    def keep(paths: list[str]) -> list[str]:
        uniq = sorted(set(paths))
        return [p for p in uniq if not any(q.startswith(p + "__") for q in uniq)]

    parts = []
    if select:
        parts.append("select_related(" + ", ".join(f'"{p}"' for p in keep(select)) + ")")
    if prefetch:
        parts.append("prefetch_related(" + ", ".join(f'"{p}"' for p in keep(prefetch)) + ")")
    return "; ".join(parts + other)
