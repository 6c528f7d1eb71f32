"""Per-row queries in code loops (for loops, comprehensions, generators), BA101-BA111.

Reported at the per-iteration access (the line in the loop a reviewer points at), with the
queryset that feeds the loop in `related` and `context["queryset_line"]`.
"""

from __future__ import annotations


from backend_audit.findings import Finding, Related

from .fixes import describe_event
from .querysets import Evaluator, FnCtx
from .scan import project_uses
from .values import Event

#: event kind -> rule id
RULE_OF = {
    "fk": "BA101", "gfk": "BA101",
    "mgr": "BA102",
    "mgr_count": "BA103", "mgr_query": "BA103",
    "deferred": "BA104",
    "query": "BA105", "qs_eval": "BA105", "sa_query": "BA105",
    "write": "BA106",
    "sa_lazy": "BA107",
    "raw": "BA108",
    "http": "BA109",
    "call": "BA110",
}
ROW_EVENTS = frozenset({"fk", "gfk", "mgr", "mgr_count", "mgr_query", "deferred", "sa_lazy"})
WRITE_CALLS = frozenset({"create", "get_or_create", "update_or_create", "save", "delete", "update"})


def loop_is_per_item(loop: tuple) -> bool:
    """A loop over literal constants, or a retry loop over range() that exits early, is not per row."""
    it = loop[1]
    if it[0] == "list" and all(d[0] in ("s", "k") for d in it[1]):
        return False
    if it[0] == "ch" and it[1] == "range" and loop[6]:
        return False
    return True


def analyze_loops(ev: Evaluator, ctx, findings: list[Finding], seen: set) -> None:
    current = None  # the function of the uses below (their candidates come grouped by function)
    fn: FnCtx | None = None
    loops: dict = {}
    for key, u in project_uses(ev).loop_uses:
        if key is not current:
            current = key
            path, module, qual, f, _ = key
            fn = ev.fn(module if qual == "<module>" else f"{module}.{qual}")
            if fn is not None:
                loops = {lp[0]: lp for lp in f["loops"]}
        if fn is None:
            continue
        inner_loop = loops.get(u[6][-1])
        if inner_loop is None or not ev.relevant(fn, u):
            continue
        events: list[Event] = []
        try:
            ev.use(fn, u, events)
        except RecursionError:  # pragma: no cover - pathological code
            continue
        for e in events:
            rule = _rule_for(e, inner_loop, u, loops)
            if rule is None:
                continue
            found = (path, e.line, rule)
            if found in seen:
                continue
            seen.add(found)
            findings.append(_finding(ctx, ev, fn, e, rule, inner_loop))


def analyze_param_loops(ev: Evaluator, ctx, findings: list[Finding], seen: set) -> None:
    """A helper that loops over a parameter: check its loops once per caller's argument (any module)."""
    uses = project_uses(ev)
    helpers = uses.helpers
    # the call sites, found by name first (cheap) and then resolved
    current = None
    caller: FnCtx | None = None
    for key, u, name in uses.helper_calls:
        if key is not current:
            current = key
            _, module, qual, _, _ = key
            caller = ev.fn(module if qual == "<module>" else f"{module}.{qual}")
        if caller is None:
            continue  # (and so are the function's other calls)
        try:
            head = ev.chain(caller, u[0], u[1][:-1], u[2], u[6], 1, None, None)
        except RecursionError:  # pragma: no cover
            continue
        for path, fq, fn, looped in helpers[name]:
            if head.kind == "func" and head.extra == fq:
                _check_bound(ev, ctx, findings, seen, path, fn, looped, caller, u)


def _check_bound(ev: Evaluator, ctx, findings, seen, path: str, fn: FnCtx, looped: list[str], caller: FnCtx,
                 use: tuple) -> None:
    bindings = _bind_call(ev, caller, use, fn, looped)
    if not bindings:
        return
    bound = ev.fn(fn.fq, bindings)
    loops = {lp[0]: lp for lp in fn.facts["loops"]}
    for u in fn.facts["uses"]:
        if not u[6] or not u[1] or not ev.relevant(bound, u):
            continue
        events: list[Event] = []
        try:
            ev.use(bound, u, events)
        except RecursionError:  # pragma: no cover
            continue
        for e in events:
            if e.kind not in ROW_EVENTS:
                continue
            rule = RULE_OF[e.kind]
            key = (path, e.line, rule)
            if key in seen:
                continue
            seen.add(key)
            findings.append(_finding(ctx, ev, bound, e, rule, loops[u[6][-1]]))


def _bind_call(ev: Evaluator, caller: FnCtx, use: tuple, fn: FnCtx, looped: list[str]) -> dict:
    args, kwargs = use[1][-1][1], dict(use[1][-1][2])
    params = fn.summary.params
    skip = 1 if fn.class_q and params and params[0].name in ("self", "cls") else 0
    positional = [p.name for p in params[skip:] if p.kind in ("posonly", "arg")]
    out = {}
    for name in looped:
        desc = kwargs.get(name)
        if desc is None and name in positional and positional.index(name) < len(args):
            desc = args[positional.index(name)]
        if desc is None:
            continue
        v = ev.value(caller, desc, use[2], use[6], 1)
        if v.kind in ("qs", "rows", "sa_result", "sa_query") and v.model and not v.uncertain:
            out[name] = v
    return out


def _rule_for(e: Event, loop: tuple, u: tuple, loops: dict) -> str | None:
    if e.kind in ROW_EVENTS:
        return RULE_OF[e.kind]
    if not loop_is_per_item(loop):
        return None
    if e.kind == "qs_eval":
        built = e.detail.get("built") or 0
        # a queryset built before the loop is evaluated once and cached
        if not any(lp[3] <= built <= lp[4] for lid, lp in loops.items() if lid in u[6]):
            return None
        return "BA105"
    if e.kind == "query":
        call = e.detail.get("call")
        if call in WRITE_CALLS:
            return "BA106"
        return "BA105"
    if e.kind == "http" and not u[8] and _is_async_client(str(e.detail.get("call", ""))):
        return None  # a coroutine collected for asyncio.gather / TaskGroup: concurrent, not sequential
    if e.kind in ("sa_query", "raw", "http", "write", "call"):
        if e.kind == "sa_query" and e.detail.get("call") == "iterate":
            built = e.detail.get("built") or 0
            if not any(lp[3] <= built <= lp[4] for lid, lp in loops.items() if lid in u[6]):
                return None
        return RULE_OF[e.kind]
    return None


def _is_async_client(ref: str) -> bool:
    return "AsyncClient" in ref or ref.startswith("aiohttp.")


def _finding(ctx, ev: Evaluator, fn: FnCtx, e: Event, rule: str, loop: tuple) -> Finding:
    info = describe_event(ev, e, rule)
    related: list[Related] = []
    qs_origin = info.pop("_origin", None)
    if qs_origin:
        related.append(Related(qs_origin[0], qs_origin[1], "the queryset the loop iterates is built here"))
    related.append(Related(fn.path, loop[3], "the loop"))
    for extra in info.pop("_related", []):
        related.append(extra)
    message = info.pop("_message")
    symbol = fn.fq[len(fn.module) + 1:] if fn.fq != fn.module else ""
    return ctx.finding(rule, fn.path, e.line, e.col, e.end_line, e.end_col, message, related=related,
                       symbol=symbol, context=info)
