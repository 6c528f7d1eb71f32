"""Where N+1 hides outside a visible loop: templates (BA111), DRF serializers (BA112), admin (BA113).

Templates and serializers are reported at the view's queryset (the expression that builds it:
where the select_related/prefetch_related goes), with the template line / serializer field in
`related`. Explicit queries inside a SerializerMethodField are reported at the query line (no
queryset option removes them). Admin findings are reported at the `list_display` line.
"""

from __future__ import annotations

from typing import Any

from backend_audit.findings import Finding, Related

from .fixes import combined_fix, fix_for
from .querysets import Evaluator, FnCtx
from .scan import project_uses, skip_path
from .templates import template_name
from .values import (
    CLASS,
    DICT,
    EXT,
    FUNC,
    INSTANCE,
    LIST,
    MODEL,
    QS,
    RELMGR,
    ROW,
    ROWS,
    SA_Q,
    SA_RES,
    UNK,
    UNKNOWN,
    Event,
    Val,
)

RELATION_EVENTS = frozenset({"fk", "gfk", "mgr", "mgr_count", "mgr_query", "deferred", "sa_lazy"})
QUERY_EVENTS = frozenset({"query", "qs_eval", "sa_query", "raw", "http"})
#: segments a Django template calls without parentheses on related managers / querysets
AUTO_CALL = frozenset({"all", "count", "exists", "first", "last", "none"})


def analyze_views(ev: Evaluator, ctx, findings: list[Finding], seen: set) -> None:
    cat = ev.cat.get("views", {})
    templates = _templates_by_name(ctx)
    renders: list[tuple[str, dict[str, Val], FnCtx, int]] = []
    current = None  # the function of the calls below (their candidates come grouped by function)
    fn: FnCtx | None = None
    for key, u, render, serializer, get_serializer in project_uses(ev).view_calls:
        if key is not current:
            current = key
            _, module, qual, _, _ = key
            fq = module if qual == "<module>" else f"{module}.{qual}"
            fn = None
        if render and templates and u[1][-1][0] == "c":
            fn = fn or ev.fn(fq)
            if fn is not None:
                r = _render_call(ev, fn, u, cat)
                if r is not None:
                    renders.append(r)
        if serializer:
            fn = fn or ev.fn(fq)
            if fn is not None:
                _serializer_call(ev, ctx, fn, u, cat, findings, seen)
        elif get_serializer and u[0] == "self":
            fn = fn or ev.fn(fq)
            if fn is not None and fn.class_q:
                _serializer_call(ev, ctx, fn, u, cat, findings, seen, view_cls=fn.class_q)
    list_views, detail_views = set(cat.get("list_views", [])), set(cat.get("detail_views", []))
    drf_list_views, admin_bases = set(cat.get("drf_list_views", [])), set(cat.get("admin_bases", []))
    for cls, info in ev.index.classes.items():
        if skip_path(info.path):
            continue
        anc = ev.index.ancestors(cls)
        if templates and anc & list_views:
            _generic_view(ev, cls, "list", renders)
        elif templates and anc & detail_views:
            _generic_view(ev, cls, "detail", renders)
        summary = ev.index.classes[cls].summary
        if templates and ("get_context_data" in summary.attrs or any(
                m == "get_context_data" or m.endswith(".get_context_data") for m in summary.methods)):
            _context_data_view(ev, cls, renders, cat)
        if templates and "extra_context" in summary.attrs:
            _extra_context_view(ev, cls, renders, cat)
        if anc & drf_list_views:
            _drf_view(ev, ctx, cls, cat, findings, seen)
        if anc & admin_bases:
            _admin(ev, ctx, cls, cat, findings, seen)
    for name, variables, fn, line in renders:
        for tpath in _closest(templates.get(name, []), fn.path if fn else ""):
            _check_template(ev, ctx, tpath, variables, fn, line, findings, seen, templates)


def _closest(paths: list[str], view_path: str) -> list[str]:
    """Several templates share a name (one per app): the one nearest to the view wins."""
    if len(paths) <= 1:
        return paths

    def common(p: str) -> int:
        n = 0
        for a, b in zip(p.split("/"), view_path.split("/")):
            if a != b:
                break
            n += 1
        return n

    best = max(common(p) for p in paths)
    return [p for p in paths if common(p) == best]


def _templates_by_name(ctx) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, facts in ctx.facts_of("n_plus_one").items():
        if isinstance(facts, dict) and "loops" in facts and "functions" not in facts:
            name = template_name(path)
            if name:
                out.setdefault(name, []).append(path)
    return out


# ----- render calls ----------------------------------------------------------------------------
def _context_vars(ev: Evaluator, fn: FnCtx, desc: tuple | None, kwargs: dict, line: int, loops: tuple) -> dict[str, Val]:
    out: dict[str, Val] = {}
    items: list[tuple[str, tuple]] = []
    if desc is not None:
        if desc[0] == "dict":
            items = [(k[1], v) for k, v in desc[1] if k[0] == "s"]
        elif desc[0] == "ch" and not desc[2]:
            name = desc[1]
            for a in ev._assigns_of(fn).get(name, ()):
                if a[2] <= line and a[1][0] == "dict":
                    items = [(k[1], v) for k, v in a[1][1] if k[0] == "s"]
            for key, alist in ev._assigns_of(fn).items():
                if key.startswith(name + "[") and key.endswith("]"):
                    for a in alist:
                        if a[2] <= line:
                            items.append((key[len(name) + 1:-1], a[1]))
            for u in fn.facts.get("uses", ()):  # context.update({...}) / context.update(k=v)
                if u[0] == name and len(u[1]) == 2 and u[1][0] == ("a", "update") and u[2] <= line:
                    uargs, ukw = u[1][1][1], u[1][1][2]
                    if uargs and uargs[0][0] == "dict":
                        items.extend((k[1], v) for k, v in uargs[0][1] if k[0] == "s")
                    items.extend(ukw)
    for k, v in kwargs.items():
        items.append((k, v))
    for k, d in items:
        try:
            val = ev.value(fn, d, d[3] if d[0] == "ch" else line, loops, 1)
        except RecursionError:  # pragma: no cover
            continue
        if val.kind in (QS, ROWS, ROW, SA_RES, SA_Q) and val.model:
            # reported where the view binds the value (a reviewer fixes the view, not a shared selector)
            at = _binding_line(ev, fn, d, line)
            if val.kind in (QS, ROWS) and val.prefix:
                # `self.object.members.all()`: the fix goes on this queryset, its paths start here
                val = val.but(prefix="", many=False)
            out[k] = val.but(origin=(fn.path, at, 0, at, 0))
        elif val.kind == LIST and val.inner is not None and val.inner.model and val.inner.kind in (QS, ROWS, SA_RES):
            # a paginator page: the queryset it wraps is built in this view (or elsewhere: report the binding)
            inner = val.inner
            if inner.origin and inner.origin[0] == fn.path and fn.summary and \
                    fn.summary.line <= inner.origin[1] <= fn.summary.end_line:
                out[k] = val
            else:
                at = _binding_line(ev, fn, d, line)
                out[k] = val.but(inner=inner.but(origin=(fn.path, at, 0, at, 0)))
    return out


def _binding_line(ev: Evaluator, fn: FnCtx, d: tuple, line: int) -> int:
    """The line in the view that builds or binds the context value `d`."""
    if d[0] == "ch" and not d[2]:
        name, at = d[1], d[3]
        found = None
        for _ in range(8):
            best = None
            for a in ev._assigns_of(fn).get(name, ()):
                if a[2] <= at and (best is None or a[2] >= best[2]) and (found is None or a[2] < found[2]):
                    best = a
            if best is None:
                break
            found = best
            # `qs = qs.filter(...)`: the queryset is built by the earlier assignment
            if best[1][0] == "ch" and best[1][1] == name and best[1][2]:
                at = best[2] - 1
                continue
            break
        if found is not None and found[1][0] == "ch":
            return found[1][3]
        if found is not None:
            return found[2]
    if d[0] == "ch":
        return d[3]
    return line


def _render_call(ev: Evaluator, fn: FnCtx, u: tuple, cat: dict) -> tuple | None:
    root, steps, line = u[0], u[1], u[2]
    args, kwargs = steps[-1][1], dict(steps[-1][2])
    # `<x>.get_template("name").render(ctx)` / Jinja2 `render(**kw)`
    if len(steps) >= 4 and steps[-2] == ("a", "render") and steps[-3][0] == "c" and steps[-4][0] == "a" \
            and steps[-4][1] in cat.get("template_methods", []):
        targs = steps[-3][1]
        if targs and targs[0][0] == "s":
            return targs[0][1], _context_vars(ev, fn, args[0] if args else None, kwargs, line, u[6]), fn, line
        return None
    head = ev.chain(fn, root, steps[:-1], line, u[6], 1, None, None)
    if head.kind != EXT:
        return None
    ref = head.extra
    for rc in cat.get("render_calls", []):
        if ref == rc["ref"]:
            ti, ci = rc["template"], rc["context"]
            tdesc = _const_str(ev, fn, args[ti] if len(args) > ti else kwargs.get("template_name"), line)
            if not tdesc:
                return None
            if ci < 0:
                return tdesc[1], _context_vars(ev, fn, None, kwargs, line, u[6]), fn, line
            cdesc = args[ci] if len(args) > ci else kwargs.get("context")
            return tdesc[1], _context_vars(ev, fn, cdesc, {}, line, u[6]), fn, line
    if len(steps) >= 2 and steps[-2][0] == "a" and steps[-2][1] in cat.get("template_response_methods", []):
        names = [a for a in args if a[0] == "s"] or [d for k, d in kwargs.items() if k in ("name", "template_name")
                                                     and d[0] == "s"]
        if names:
            cdesc = kwargs.get("context") or next((a for a in args if a[0] in ("dict",) or
                                                   (a[0] == "ch" and not a[2] and a[1] != "request")), None)
            return names[0][1], _context_vars(ev, fn, cdesc, {}, line, u[6]), fn, line
    return None


def _const_str(ev: Evaluator, fn: FnCtx, desc: tuple | None, line: int) -> tuple | None:
    """A template name: a literal, a local/global bound to one, or `self.template_name`."""
    if not desc:
        return None
    if desc[0] == "s":
        return desc
    if desc[0] == "ch" and not desc[2]:
        for a in reversed(ev._assigns_of(fn).get(desc[1], ())):
            if a[2] < line:
                return a[1] if a[1][0] == "s" else None
        summary = ev.index.module_summary(fn.module)
        if summary is not None and desc[1] in summary.assigns:
            v = summary.assigns[desc[1]].value
            if v[0] == "const" and isinstance(v[1], str):
                return ("s", v[1])
    if desc[0] == "ch" and desc[1] == "self" and len(desc[2]) == 1 and desc[2][0][0] == "a" and fn.class_q:
        v = _const_attr(ev, fn.class_q, desc[2][0][1])
        if isinstance(v, str):
            return ("s", v)
    return None


#: generic views whose default template suffix is not `_list` / `_detail`
_SUFFIXES = (("django.views.generic.edit.UpdateView", "_form"), ("django.views.generic.UpdateView", "_form"),
             ("django.views.generic.edit.CreateView", "_form"), ("django.views.generic.CreateView", "_form"),
             ("django.views.generic.edit.DeleteView", "_confirm_delete"),
             ("django.views.generic.DeleteView", "_confirm_delete"))


def _view_template_names(ev: Evaluator, cls: str, kind: str, model_q: str | None) -> list[str]:
    """`template_name`, else the generic view's default `<app>/<model><suffix>.html`."""
    tname = _const_attr(ev, cls, "template_name")
    if tname:
        return [tname]
    model = ev.orm.models.get(model_q) if model_q else None
    if model is None or not kind:
        return []
    suffix = _const_attr(ev, cls, "template_name_suffix")
    if not suffix:
        anc = ev.index.ancestors(cls)
        suffix = next((sfx for base, sfx in _SUFFIXES if base in anc), "_list" if kind == "list" else "_detail")
    return [f"{model.app_label}/{model.name.lower()}{suffix}.html"]


def _generic_view(ev: Evaluator, cls: str, kind: str, renders: list) -> None:
    info = ev.index.classes[cls]
    gq = ev._member_function(cls, "get_queryset")
    qs = ev.view_queryset(cls)
    if qs.kind != QS or not qs.model or qs.uncertain:
        return  # an overridden get_queryset() we cannot follow: its rows may be loaded any way
    model = ev.orm.models.get(qs.model)
    if model is None:
        return
    lower = model.name.lower()
    names = _view_template_names(ev, cls, kind, qs.model)
    con = _const_attr(ev, cls, "context_object_name")
    variables: dict[str, Val] = {}
    if kind == "list":
        for n in ("object_list", "page_obj", con or f"{lower}_list"):
            variables[n] = qs
    else:
        row = Val(ROW, model=qs.model, loaded=qs.loaded, only=qs.only, defer=qs.defer, fw=qs.fw, origin=qs.origin)
        for n in ("object", con or lower):
            variables[n] = row
    fn = ev.fn(gq) if gq else ev.fn(info.module)
    for n in names:
        renders.append((n, variables, fn, info.summary.line))


def _view_kind(ev: Evaluator, cls: str, cat: dict) -> str:
    anc = ev.index.ancestors(cls)
    if anc & set(cat.get("list_views", [])):
        return "list"
    if anc & set(cat.get("detail_views", [])):
        return "detail"
    return ""


def _cbv_template_names(ev: Evaluator, cls: str, cat: dict) -> list[str]:
    kind = _view_kind(ev, cls, cat)
    qs = ev.view_queryset(cls) if kind else UNK
    return _view_template_names(ev, cls, kind, qs.model if qs.kind == QS else None)


def _context_data_view(ev: Evaluator, cls: str, renders: list, cat: dict | None = None) -> None:
    """`get_context_data()` adding querysets to the context of the class's template.

    `ctx = super().get_context_data(**kw); ctx["replies"] = self.object.messages.order_by(...)`,
    `return {**super().get_context_data(**kw), "rows": ...}` and
    `kwargs["rows"] = ...; return super().get_context_data(**kwargs)`; the template is `template_name`
    or the generic view's default name.
    """
    q = f"{cls}.get_context_data"
    fn = ev.fn(q)
    if fn is None:
        return
    names = _cbv_template_names(ev, cls, cat or {})
    if not names:
        return
    variables: dict[str, Val] = {}
    for desc, line in fn.facts.get("returns", ()):
        variables.update(_context_vars(ev, fn, desc, {}, line, ()))
        if desc[0] == "ch" and len(desc[2]) >= 2 and desc[2][-2] == ("a", "get_context_data") and fn.summary:
            # `kwargs["x"] = qs` passed on to the base get_context_data(**kwargs)
            for p in fn.summary.params:
                if p.kind == "kwarg":
                    variables.update(_context_vars(ev, fn, ("ch", p.name, (), line, 0), {}, line, ()))
    if variables:
        for n in names:
            renders.append((n, variables, fn, ev.index.classes[cls].summary.line))


def _extra_context_view(ev: Evaluator, cls: str, renders: list, cat: dict) -> None:
    """`extra_context = {"rows": Model.objects...}` on a class-based view."""
    for name, desc, line, owner in _class_facts(ev, cls):
        if name != "extra_context" or desc[0] != "dict":
            continue
        mfn = ev.fn(ev.index.classes[owner].module)
        if mfn is None:
            return
        variables = _context_vars(ev, mfn, desc, {}, line, ())
        if variables:
            for n in _cbv_template_names(ev, cls, cat):
                renders.append((n, variables, mfn, line))
        return


def _const_attr(ev: Evaluator, cls: str, name: str) -> Any:
    for c in ev.mro(cls):
        a = ev.index.classes[c].summary.attrs.get(name)
        if a is not None:
            return a.value[1] if a.value[0] == "const" else None
    return None


# ----- templates -------------------------------------------------------------------------------
def _template_steps(expr: str) -> tuple[str, list[tuple[str, bool]]]:
    parts = expr.split(".")
    head = parts[0]
    head = head.split("(")[0]
    segs = []
    for p in parts[1:]:
        call = p.endswith(")")
        segs.append((p.split("(")[0], call))
    return head, segs


def _eval_template_expr(ev: Evaluator, tfn: FnCtx, base: Val, segs: list, line: int,
                        events: list[Event]) -> Val:
    v = base
    pos = (line, 0, line, 0)
    for name, call in segs:
        if v.kind == UNKNOWN:
            return v
        if v.kind == RELMGR or (call or name in AUTO_CALL) and v.kind in (QS, RELMGR):
            v = ev.method(tfn, v, name, (), {}, line, (), 1, events, pos, last=False, ctx="")
            continue
        if v.kind == ROW:
            nv = ev.row_attr(tfn, v, name, line, (), 1, events, pos, last=False, call=None)
            if nv.kind == FUNC:
                nv = ev.call(tfn, nv, (), {}, line, (), 1, events, pos)
            v = nv
            continue
        if v.kind == DICT:
            return UNK
        v = ev.attr(tfn, v, name, line, (), 1, events, pos, last=False, ctx="")
        if v.kind == FUNC:
            v = ev.call(tfn, v, (), {}, line, (), 1, events, pos)
    return v


def _check_template(ev: Evaluator, ctx, tpath: str, variables: dict[str, Val], fn: FnCtx, line: int,
                    findings: list[Finding], seen: set, templates: dict, depth: int = 0) -> None:
    facts = ctx.facts_of("n_plus_one").get(tpath)
    if not facts or depth > 3:
        return
    tfn = FnCtx(f"<template:{tpath}>", "", tpath, {}, None, None, {})
    loops = facts["loops"]
    withs = facts["withs"]
    by_origin: dict[tuple, list[tuple[Event, int]]] = {}

    def lookup(name: str, at: int, depth: int = 0) -> Val:
        # innermost enclosing loop binding the name, then {% with %}, then the context
        if depth > 8:
            return UNK
        best = None
        for lp in loops:
            if name in lp[0] and lp[2] <= at <= lp[3] and (best is None or lp[2] > best[2]):
                best = lp
        if best is not None:
            head, segs = _template_steps(best[1])
            if head == name and best[2] == at:
                return UNK
            it = _eval_template_expr(ev, tfn, lookup(head, best[2] - 0 if head not in best[0] else best[2] - 1,
                                                     depth + 1), segs, best[2], [])
            if len(best[0]) != 1:
                return UNK
            return ev.iterate(it)
        for wname, wexpr, wline in withs:
            if wname == name and wline <= at:
                head, segs = _template_steps(wexpr)
                if head != name:
                    return _eval_template_expr(ev, tfn, lookup(head, wline, depth + 1), segs, wline, [])
        return variables.get(name, UNK)

    for expr, at in facts["uses"]:
        head, segs = _template_steps(expr)
        if not segs:
            continue
        base = lookup(head, at)
        if base.kind in (UNKNOWN,) or not base.per_iter and base.kind == ROW and not segs:
            continue
        events: list[Event] = []
        try:
            _eval_template_expr(ev, tfn, base, segs, at, events)
        except RecursionError:  # pragma: no cover
            continue
        for e in events:
            if e.kind not in RELATION_EVENTS and not (e.kind == "call" and e.inner):
                continue
            row = e.detail.get("row")
            origin = row.origin if row is not None and row.origin else base.origin
            if e.kind == "call":
                first = e.inner[0]
                r = first.detail.get("row")
                origin = base.origin
                if r is None:
                    continue
            if not origin:
                continue
            by_origin.setdefault(tuple(origin[:2]), []).append((e, at))
    # {% include %} inside a loop sees the loop variables
    for name, at, mapping, only in facts["includes"]:
        sub: dict[str, Val] = {} if only else dict(variables)
        for lp in loops:
            if lp[2] <= at <= lp[3] and len(lp[0]) == 1:
                sub[lp[0][0]] = lookup(lp[0][0], at)
        for a, b in mapping:
            h, segs = _template_steps(b)
            sub[a] = _eval_template_expr(ev, tfn, lookup(h, at), segs, at, [])
        for inc in templates.get(name, []):
            if inc != tpath:
                _check_template(ev, ctx, inc, sub, fn, line, findings, seen, templates, depth + 1)
    for (opath, oline), evs in by_origin.items():
        key = (opath, oline, "BA111")
        if key in seen:
            continue
        seen.add(key)
        e0, at0 = evs[0]
        paths = []
        for e, _ in evs:
            p = _event_path(e)
            if p and p not in paths:
                paths.append(p)
        fixes = [combined_fix(ev, [e for e, _ in evs], "BA111")]
        related = [Related(tpath, at, f"the template reads `{_event_path(e) or e.detail.get('relation')}` for every row")
                   for e, at in evs[:5]]
        msg = (f"N+1 in template {template_name(tpath) or tpath}: it reads {', '.join(paths)} for every row of this "
               f"queryset, which does not load them; fix: {'; '.join(fixes)}")
        findings.append(ctx.finding(
            "BA111", opath, oline, 0, oline, 0, msg, related=related,
            context={"model": _short(e0.detail.get("model")), "relation": e0.detail.get("relation", ""),
                     "path": ", ".join(paths), "fix": "; ".join(fixes), "queryset_path": opath,
                     "queryset_line": oline, "template": tpath, "template_line": at0}))


def _event_path(e: Event) -> str:
    if e.kind == "call" and e.inner:
        return _event_path(e.inner[0])
    return e.detail.get("path") or e.detail.get("relation") or ""


def _short(q: str | None) -> str:
    return q.rsplit(".", 1)[-1] if q else ""


# ----- DRF --------------------------------------------------------------------------------------
def _class_facts(ev: Evaluator, cls: str) -> list[tuple[str, tuple, int, str]]:
    """Class-body assignments along the project MRO (subclass first): (name, desc, line, class)."""
    out: list = []
    seen: set[str] = set()
    for c in ev.mro(cls):
        info = ev.index.classes[c]
        attrs = (ev.facts.get(info.path) or {}).get("classes", {}).get(c[len(info.module) + 1:], {})
        for name, (desc, line) in attrs.items():
            if name not in seen:
                seen.add(name)
                out.append((name, desc, line, c))
    return out


def serializer_events(ev: Evaluator, cls: str, row: Val, cat: dict, depth: int = 0) -> list[tuple[Event, str, int]]:
    """(event, serializer path, field line) for every query serializing one `row` runs."""
    if depth > 4 or row.kind != ROW or not row.model:
        return []
    info = ev.index.classes.get(cls)
    if info is None:
        return []
    out: list[tuple[Event, str, int]] = []
    mfn = ev.fn(info.module)
    if mfn is None:
        return out
    declared = set()
    tfn = FnCtx(f"<serializer:{cls}>", info.module, info.path, {}, None, cls, {})
    ser_bases = set(cat.get("drf_serializers", []))
    for name, desc, line, owner in _class_facts(ev, cls):
        if desc[0] != "ch" or not desc[2] or desc[2][-1][0] != "c":
            continue
        owner_info = ev.index.classes[owner]
        ofn = ev.fn(owner_info.module) or mfn
        field = ev.chain(ofn, desc[1], desc[2][:-1], line, (), 1, None, None)
        kwargs = dict(desc[2][-1][2])
        declared.add(name)
        source = kwargs.get("source")
        src = source[1] if source and source[0] == "s" else name
        many = kwargs.get("many") == ("k", True)
        pos = (line, 0, line, 0)
        events: list[Event] = []
        if src == "*":
            continue
        if field.kind == CLASS and ev.index.is_subclass(field.extra, ser_bases):
            v = _walk_source(ev, tfn, row, src, line, events)
            if many and v.kind in (ROWS, QS):
                nested = ev.iterate(v)
            elif v.kind == ROW:
                nested = v
            else:
                nested = UNK
            for e in events:
                out.append((e, info.path, line))
            if nested.kind == ROW:
                out.extend(serializer_events(ev, field.extra, nested, cat, depth + 1))
            continue
        if field.kind != EXT:
            continue
        ref = field.extra
        if ref in cat.get("drf_method_field", []):
            mname = kwargs.get("method_name")
            method = ev._member_function(cls, mname[1] if mname and mname[0] == "s" else f"get_{name}")
            if method is None:
                continue
            ev.call_function(method, [row], {}, Val(INSTANCE, extra=cls), tfn, line, (), 1, events, pos)
            for e in events:
                out.append((e, info.path, line))
            continue
        if ref in cat.get("drf_pk_fields", []) and not many:
            continue  # uses the `<fk>_id` column only
        v = _walk_source(ev, tfn, row, src, line, events)
        if many and v.kind in (ROWS, QS) and ref in cat.get("drf_object_fields", []):
            pass
        for e in events:
            out.append((e, info.path, line))
    # ModelSerializer Meta.fields: implicit fields
    meta = f"{cls}.Meta"
    for c in ev.mro(cls):
        if f"{c}.Meta" in ev.index.classes:
            meta = f"{c}.Meta"
            break
    if meta in ev.index.classes and ev.index.is_subclass(cls, set(cat.get("drf_model_serializers", []))):
        minfo = ev.index.classes[meta]
        fields_attr = minfo.summary.attrs.get("fields")
        depth_attr = minfo.summary.attrs.get("depth")
        mdepth = depth_attr.value[1] if depth_attr and depth_attr.value[0] == "const" else 0
        names: list[str] = []
        fline = fields_attr.line if fields_attr else minfo.summary.line
        model = ev.orm.models.get(row.model)
        if fields_attr is not None and fields_attr.value[0] == "list":
            names = [x[1] for x in fields_attr.value[1] if x[0] == "const" and isinstance(x[1], str)]
        elif fields_attr is not None and fields_attr.value == ("const", "__all__") and model is not None:
            names = list(model.fields)
        for n in names:
            if n in declared or model is None:
                continue
            f = model.fields.get(n)
            events: list[Event] = []
            pos = (fline, 0, fline, 0)
            if f is not None and f.relation in ("fk", "o2o"):
                if not mdepth:
                    continue
                v = ev.row_attr(tfn, row, n, fline, (), 1, events, pos, last=False, call=None)
            elif (f is not None and f.relation == "m2m") or n in model.reverse:
                mgr = ev.row_attr(tfn, row, n, fline, (), 1, events, pos, last=False, call=None)
                if mgr.kind == RELMGR:
                    ev.method(tfn, mgr, "all", (), {}, fline, (), 1, events, pos, last=True, ctx="")
            elif f is None:
                v = ev.row_attr(tfn, row, n, fline, (), 1, events, pos, last=False, call=None)
                if v.kind == FUNC:
                    ev.call(tfn, v, (), {}, fline, (), 1, events, pos)
            for e in events:
                out.append((e, info.path, fline))
    return out


def _walk_source(ev: Evaluator, tfn: FnCtx, row: Val, src: str, line: int, events: list[Event]) -> Val:
    v = row
    pos = (line, 0, line, 0)
    parts = src.split(".")
    for i, part in enumerate(parts):
        if v.kind == ROW:
            v = ev.row_attr(tfn, v, part, line, (), 1, events, pos, last=False, call=None)
            if v.kind == FUNC:
                v = ev.call(tfn, v, (), {}, line, (), 1, events, pos)
        elif v.kind == RELMGR:
            v = ev.method(tfn, v, part, (), {}, line, (), 1, events, pos, last=False, ctx="")
        else:
            return UNK
    if v.kind == RELMGR:
        v = ev.method(tfn, v, "all", (), {}, line, (), 1, events, pos, last=True, ctx="")
    return v


def _report_serializer(ev: Evaluator, ctx, cls: str, qs: Val, cat: dict, findings: list[Finding], seen: set,
                       view_line: tuple | None = None) -> None:
    if qs.uncertain or not qs.model or qs.kind not in (QS, ROWS):
        return
    row = ev.iterate(qs)
    if row.kind != ROW:
        return
    results = serializer_events(ev, cls, row, cat)
    relation = [(e, p, ln) for e, p, ln in results if e.kind in RELATION_EVENTS
                or (e.kind == "call" and any(x.kind in RELATION_EVENTS for x in e.inner))]
    queries = [(e, p, ln) for e, p, ln in results if e.kind in QUERY_EVENTS
               or (e.kind == "call" and e.inner and not any(x.kind in RELATION_EVENTS for x in e.inner))]
    origin = qs.origin
    if relation and origin:
        key = (origin[0], origin[1], "BA112")
        if key not in seen:
            seen.add(key)
            paths = []
            for e, _, _ in relation:
                p = _event_path(e)
                if p and p not in paths:
                    paths.append(p)
            fixes = [combined_fix(ev, [e for e, _, _ in relation], "BA112")]
            related = [Related(p, ln, f"the serializer reads `{_event_path(e)}` for every object")
                       for e, p, ln in relation[:5]]
            msg = (f"N+1 in serializer {_short(cls)}: it reads {', '.join(paths)} for every object of this queryset, "
                   f"which does not load them; fix: {'; '.join(fixes)}")
            findings.append(ctx.finding(
                "BA112", origin[0], origin[1], 0, origin[1], 0, msg, related=related,
                context={"model": _short(qs.model), "relation": relation[0][0].detail.get("relation", ""),
                         "path": ", ".join(paths), "fix": "; ".join(fixes), "queryset_path": origin[0],
                         "queryset_line": origin[1], "serializer": _short(cls), "field": relation[0][2]}))
    for e, p, ln in queries:
        target = e.inner[0] if e.kind == "call" and e.inner else e
        key = (target.path, target.line, "BA112")
        if key in seen:
            continue
        seen.add(key)
        fx = fix_for(ev, target, "BA112")
        findings.append(ctx.finding(
            "BA112", target.path, target.line, target.col, target.end_line, target.end_col,
            f"N+1 in serializer {_short(cls)}: this query runs once per serialized object; fix: {fx}",
            related=[Related(p, ln, "the serializer field"),
                     *([Related(origin[0], origin[1], "the queryset being serialized")] if origin else [])],
            context={"model": _short(target.detail.get("model")), "relation": "", "path": "", "fix": fx,
                     "queryset_path": origin[0] if origin else "", "queryset_line": origin[1] if origin else 0,
                     "serializer": _short(cls), "field": ln, "call": str(target.detail.get("call", ""))}))


def _drf_view(ev: Evaluator, ctx, cls: str, cat: dict, findings, seen) -> None:
    ser = ev._class_attr_val(cls, "serializer_class", 1, None)
    if ser.kind != CLASS:
        gs = ev._member_function(cls, "get_serializer_class")
        if gs is not None:
            params = ev.index.functions[gs].summary.params
            bound = ev.fn(gs, {params[0].name: Val(INSTANCE, extra=cls)} if params else {})
            classes = {ev.value(bound, d, ln, (), 1).extra for d, ln in bound.facts.get("returns", ())} if bound else set()
            if len(classes) != 1:
                return  # a serializer per action: which one lists is a runtime decision
            ser = ev.returns(gs, {params[0].name: Val(INSTANCE, extra=cls)} if params else {}, 1)
    if ser.kind != CLASS:
        return
    gq = ev._member_function(cls, "get_queryset")
    qs = UNK
    if gq is not None:
        params = ev.index.functions[gq].summary.params
        qs = ev.returns(gq, {params[0].name: Val(INSTANCE, extra=cls)} if params else {}, 1)
    if gq is None or qs.kind == UNKNOWN:
        if gq is not None:
            return
        qs = ev.base_queryset(cls)
    _report_serializer(ev, ctx, ser.extra, qs, cat, findings, seen)


def _serializer_call(ev: Evaluator, ctx, fn: FnCtx, u: tuple, cat: dict, findings, seen,
                     view_cls: str | None = None) -> None:
    i = next((i for i, s in enumerate(u[1]) if s[0] == "c"), None)
    if i is None:
        return
    steps = u[1][:i + 1]
    kwargs = dict(steps[-1][2])
    if kwargs.get("many") != ("k", True) or not steps[-1][1]:
        return
    if view_cls is not None:  # self.get_serializer(rows, many=True) in a DRF view
        if steps[:-1] != (("a", "get_serializer"),):
            return
        head = ev._class_attr_val(view_cls, "serializer_class", 1, None)
    else:
        head = ev.chain(fn, u[0], steps[:-1], u[2], u[6], 1, None, None)
    if head.kind != CLASS or not ev.index.is_subclass(head.extra, set(cat.get("drf_serializers", []))):
        return
    arg = steps[-1][1][0]
    qs = ev.value(fn, arg, arg[3] if arg[0] == "ch" else u[2], u[6], 1)
    if qs.kind in (QS, ROWS) and arg[0] == "ch":
        at = _binding_line(ev, fn, arg, u[2])
        qs = qs.but(origin=(fn.path, at, 0, at, 0))
    _report_serializer(ev, ctx, head.extra, qs, cat, findings, seen)


# ----- admin --------------------------------------------------------------------------------------
def _admin_model(ev: Evaluator, cls: str, cat: dict) -> Val:
    info = ev.index.classes[cls]
    for d in info.summary.decorators:
        if d.is_call and d.ref and ev.index.resolve(info.module, d.ref) in cat.get("admin_register", []) and d.args:
            v = d.args[0]
            if v[0] == "ref":
                return ev.ref_val(info.module, v[1], 1)
    # admin.site.register(Model, ThisAdmin) anywhere in the project's admin modules
    for path, facts in ev.facts.items():
        module = ev.index.module_of.get(path)
        mf = facts["functions"].get("<module>")
        if not mf or module is None:
            continue
        for u in mf["uses"]:
            st = u[1]
            if len(st) >= 2 and st[-1][0] == "c" and st[-2] == ("a", "register") and len(st[-1][1]) >= 2:
                a0, a1 = st[-1][1][0], st[-1][1][1]
                if a1[0] == "ch" and not a1[2]:
                    fn = ev.fn(module)
                    target = ev.value(fn, a1, u[2], (), 1) if fn else UNK
                    if target.kind == CLASS and target.extra == cls:
                        return ev.value(fn, a0, u[2], (), 1)
    return UNK


def _admin(ev: Evaluator, ctx, cls: str, cat: dict, findings, seen) -> None:
    model_v = _admin_model(ev, cls, cat)
    if model_v.kind != MODEL or model_v.fw != "django":
        return
    ev.admin_models[cls] = model_v
    model = ev.orm.models[model_v.model]
    attrs = {n: (d, ln) for n, d, ln, _ in _class_facts(ev, cls)}
    if "list_display" not in attrs:
        return
    ld_desc, ld_line = attrs["list_display"]
    if ld_desc[0] != "list":
        return
    entries = ld_desc[1]
    lsr = attrs.get("list_select_related")
    loaded: set[str] = set()
    if lsr is None or lsr[0] == ("k", False):
        if any(e[0] == "s" and model.fields.get(e[1]) is not None and model.fields[e[1]].relation in ("fk", "o2o")
               for e in entries):
            loaded.add("*")
    elif lsr[0] == ("k", True):
        loaded.add("*")
    elif lsr[0][0] == "list":
        for e in lsr[0][1]:
            if e[0] == "s":
                parts = e[1].split("__")
                for i in range(1, len(parts) + 1):
                    loaded.add("__".join(parts[:i]))
    else:
        return
    gq = ev._member_function(cls, "get_queryset")
    if gq is not None:
        params = ev.index.functions[gq].summary.params
        qs = ev.returns(gq, {params[0].name: Val(INSTANCE, extra=cls)} if params else {}, 1)
        if qs.kind != QS or qs.uncertain:
            return
        loaded |= set(qs.loaded)
    row = Val(ROW, model=model.qualified, loaded=frozenset(loaded), per_iter=True, fw="django",
              origin=(ev.index.classes[cls].path, ld_line, 0, ld_line, 0))
    info = ev.index.classes[cls]
    tfn = FnCtx(f"<admin:{cls}>", info.module, info.path, {}, None, cls, {})
    events: list[Event] = []
    pos = (ld_line, 0, ld_line, 0)
    for e in entries:
        if e[0] == "s":
            name = e[1]
            if name == "__str__":
                continue
            method = ev._member_function(cls, name)
            if method is not None:
                ev.call_function(method, [row], {}, Val(INSTANCE, extra=cls), tfn, ld_line, (), 1, events, pos)
                continue
            f = model.fields.get(name)
            if f is not None and f.relation in ("m2m",):
                continue  # not allowed in list_display (admin.E109)
            v = ev.row_attr(tfn, row, name, ld_line, (), 1, events, pos, last=False, call=None)
            if v.kind == FUNC:
                ev.call(tfn, v, (), {}, ld_line, (), 1, events, pos)
        elif e[0] == "ch":
            fv = ev.value(ev.fn(info.module), e, ld_line, (), 1)
            if fv.kind == FUNC:
                ev.call_function(fv.extra, [row], {}, None, tfn, ld_line, (), 1, events, pos)
    rel = [x for x in events if x.kind in RELATION_EVENTS or (x.kind == "call" and x.inner)]
    if not rel:
        return
    key = (info.path, ld_line, "BA113")
    if key in seen:
        return
    seen.add(key)
    paths, fixes, related = [], [], []
    for x in rel:
        target = x.inner[0] if x.kind == "call" and x.inner else x
        p = _event_path(target) or target.detail.get("call", "")
        if p and p not in paths:
            paths.append(p)
        if target.kind in ("fk", "gfk", "deferred"):
            fixes.append(p)
        elif target.kind in ("mgr", "mgr_count", "mgr_query"):
            fixes.append(f"prefetch:{p}")
        if target.path != info.path or target.line != ld_line:
            related.append(Related(target.path, target.line, f"reads `{p}` for every row"))
    sel = [p for p in fixes if not p.startswith("prefetch:")]
    pre = [p[9:] for p in fixes if p.startswith("prefetch:")]
    fix_parts = []
    if sel:
        fix_parts.append("list_select_related = (" + ", ".join(f'"{p}"' for p in sel) + ",)")
    if pre:
        fix_parts.append("get_queryset() with prefetch_related(" + ", ".join(f'"{p}"' for p in pre) +
                         ") or an annotation")
    if not fix_parts:
        fix_parts.append("get_queryset() that loads what list_display reads (or annotate it)")
    fix = "; ".join(fix_parts)
    findings.append(ctx.finding(
        "BA113", info.path, ld_line, 0, ld_line, 0,
        f"N+1 in the admin changelist of {model.name}: list_display reads {', '.join(paths)} for every row; fix: {fix}",
        related=related[:5], symbol=cls[len(info.module) + 1:],
        context={"model": model.name, "relation": paths[0] if paths else "", "path": ", ".join(paths), "fix": fix,
                 "queryset_path": info.path, "queryset_line": ld_line}))
