"""Which functions serve requests (endpoints, views, handlers, middleware), from catalog data.

A function is a request entry point when a route decorator registers it (FastAPI, Starlette,
aiohttp, Quart, Sanic, Ninja...), when it is passed to a route registration call (`path()`,
`Route()`, `web.get()`, `add_api_route`), when it is a method of a view/endpoint/consumer/
middleware base class, when it takes a request parameter (by name or annotation), or when it is
an ASGI callable `(scope, receive, send)`. Everything such a function calls, transitively, is on
the request path too. Being on the request path only raises severity: which code runs on the
loop is decided by `async def` alone.
"""

from __future__ import annotations

from collections import deque

from backend_audit.analyzers.blocking_io.model import Frameworks
from backend_audit.index.project import FunctionInfo, ProjectIndex

#: registration call names worth resolving (a cheap filter before `resolve`)
_REGISTRATION_NAMES = frozenset({
    "path", "re_path", "url", "Route", "WebSocketRoute", "add_route", "add_api_route",
    "add_websocket_route", "add_api_websocket_route", "get", "post", "put", "patch", "delete",
    "head", "route", "view", "add_get", "add_post", "add_put", "add_patch", "add_delete",
    "add_head", "add_view",
})


def _is_entry(index: ProjectIndex, fw: Frameworks, info: FunctionInfo, handler_classes: set[str]) -> bool:
    fn = info.summary
    if fn.is_lambda:
        return False
    for d in fn.decorators:
        target = index.resolve(info.module, d.ref) if d.ref else None
        if target and fw.route_decorators.match(target):
            return True
    if fn.class_qualname and f"{info.module}.{fn.class_qualname}" in handler_classes:
        return not fn.name.startswith("_") or fn.name in ("__call__",)
    params = [p for p in fn.params if p.kind in ("posonly", "arg", "kwonly")]
    names = {p.name for p in params}
    if fw.asgi_params and fw.asgi_params <= names:
        return True
    start = 1 if fn.class_qualname else 0
    for p in params[start:start + 2]:
        if p.name in fw.request_params:
            return True
    for p in params:
        if p.annotation and not p.annotation.startswith("$"):
            ann = index.resolve(info.module, p.annotation)
            if ann in fw.request_types:
                return True
    return False


def _literal_prefix(pattern: str) -> str:
    for i, ch in enumerate(pattern):
        if ch in "{*([":
            return pattern[:i]
    return pattern


def _may_route(imports: dict[str, str], prefixes: tuple[str, ...]) -> bool:
    """Whether a module imports anything a route registration could come from."""
    for v in imports.values():
        for p in prefixes:
            if p.startswith(v) or v.startswith(p.rstrip(".")):
                return True
    return False


def entry_points(index: ProjectIndex, fw: Frameworks) -> set[str]:
    handler_classes = set(index.subclasses(fw.handler_bases)) if fw.handler_bases else set()
    prefixes = tuple(sorted({_literal_prefix(p) for p in fw.route_registrations.patterns()}))
    routing: dict[str, bool] = {}
    out: set[str] = set()
    for q, info in index.functions.items():
        if info.summary.name == "<module>":
            pass
        elif _is_entry(index, fw, info, handler_classes):
            out.add(q)
        may = routing.get(info.path)
        if may is None:
            summary = index.summaries.get(info.path)
            may = routing[info.path] = bool(summary) and _may_route(summary.imports, prefixes)
        if not may:
            continue
        # handlers registered by passing them to a routing call
        for site in info.summary.calls:
            ref = site.ref
            if not ref or ref.rsplit(".", 1)[-1] not in _REGISTRATION_NAMES:
                continue
            target = index.resolve(info.module, ref)
            if not target or not fw.route_registrations.match(target):
                continue
            for value in list(site.args) + list(site.kwargs.values()):
                if value[0] == "ref" and value[1]:
                    r = index.resolve(info.module, value[1])
                    if r in index.functions:
                        out.add(r)
                elif value[0] == "call" and value[1] and value[1].endswith(".as_view"):
                    cls = index.resolve(info.module, value[1][: -len(".as_view")])
                    if cls in index.classes:
                        for m in index.classes[cls].summary.methods:
                            out.add(f"{index.classes[cls].module}.{m}")
    return out


def request_path(index: ProjectIndex, entries: set[str]) -> set[str]:
    """Every project function reachable from an entry point (entries included)."""
    seen = set(entries)
    queue = deque(entries)
    while queue:
        q = queue.popleft()
        for call in index.calls(q):
            fn = call.function
            if fn is not None and fn.qualified not in seen:
                seen.add(fn.qualified)
                queue.append(fn.qualified)
    return seen
