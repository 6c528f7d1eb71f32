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
from backend_audit.parsing.summary import CallSite

#: registration call names worth resolving (a cheap filter before `resolve`)
REGISTRATION_NAMES = frozenset({
    "path", "re_path", "url", "Route", "WebSocketRoute", "add_route", "add_api_route",
    "add_websocket_route", "add_api_websocket_route", "get", "post", "put", "patch", "delete",
    "head", "route", "view", "add_get", "add_post", "add_put", "add_patch", "add_delete",
    "add_head", "add_view",
})


_NAMED_KINDS = ("posonly", "arg", "kwonly")


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
    if not fn.params:  # the common case of a helper without parameters
        return False
    # one pass over the parameters (posonly, arg, kwonly) for the three tests: the ASGI signature
    # `(scope, receive, send)`, a request parameter among the first two (after `self`), a request
    # annotation. (Each only ever answers True: the order they are tested in is free.)
    request_params = fw.request_params
    start = 1 if fn.class_qualname else 0
    names: list[str] = []
    for p in fn.params:
        if p.kind not in _NAMED_KINDS:
            continue
        name = p.name
        if start <= len(names) < start + 2 and name in request_params:
            return True
        names.append(name)
        ann = p.annotation
        if ann and not ann.startswith("$") and index.resolve(info.module, ann) in fw.request_types:
            return True
    asgi = fw.asgi_params
    return bool(asgi) and len(names) >= len(asgi) and asgi <= set(names)


def _literal_prefix(pattern: str) -> str:
    for i, ch in enumerate(pattern):
        if ch in "{*([":
            return pattern[:i]
    return pattern


class _RouteImports:
    """Whether a module imports anything a route registration could come from: an import `v`
    with `p.startswith(v)` or `v.startswith(p.rstrip("."))` for a registration prefix `p`.

    Both tests are set/tuple look-ups here (every prefix of every `p` is precomputed) instead of
    a loop over imports x prefixes per module."""

    def __init__(self, prefixes: tuple[str, ...]):
        self.heads = {p[:k] for p in prefixes for k in range(len(p) + 1)}  # v with p.startswith(v)
        self.stripped = tuple(p.rstrip(".") for p in prefixes)

    def may_route(self, imports: dict[str, str]) -> bool:
        heads, stripped = self.heads, self.stripped
        for v in imports.values():
            if v in heads or v.startswith(stripped):
                return True
        return False


def entry_points(index: ProjectIndex, fw: Frameworks, registration_sites: list[tuple[FunctionInfo, CallSite]]) -> set[str]:
    """The request entry points. `registration_sites`: the project's call sites whose ref's last
    segment is in `REGISTRATION_NAMES` (possible route registrations), in index order."""
    handler_classes = set(index.subclasses(fw.handler_bases)) if fw.handler_bases else set()
    prefixes = tuple(sorted({_literal_prefix(p) for p in fw.route_registrations.patterns()}))
    route_imports = _RouteImports(prefixes)
    routing: dict[str, bool] = {}
    out: set[str] = set()
    for q, info in index.functions.items():
        if info.summary.name != "<module>" and _is_entry(index, fw, info, handler_classes):
            out.add(q)
    # handlers registered by passing them to a routing call
    for info, site in registration_sites:
        may = routing.get(info.path)
        if may is None:
            summary = index.summaries.get(info.path)
            may = routing[info.path] = bool(summary) and route_imports.may_route(summary.imports)
        if not may:
            continue
        target = index.resolve(info.module, site.ref)
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
