"""Queryset provenance and per-row query semantics: an abstract evaluator over the collected facts.

`Evaluator.chain()` evaluates a chain (`book.author.name`, `Book.objects.select_related("a")`,
`session.scalars(select(User).options(selectinload(User.posts)))`) inside one function, following
local assignments (the last one before the use), loop targets, parameters bound by a caller,
`self`, module globals across modules and project function return values. It returns an abstract
`Val` and appends `Event`s for everything that runs a query: an unloaded relation on a row that
came from a loop (`per_iter`), a related manager queried, a queryset evaluated, a session query,
a raw `cursor.execute`, an HTTP request, or a call of a project function that does any of these.

Django semantics follow `django.db.models`: forward FK/O2O attributes query unless
`select_related`/`prefetch_related` covers them (`row.author_id` never queries); related managers'
`.all()` (and `count()`/`exists()` on a filled cache) are served by `prefetch_related`, while
`filter()/exclude()/order_by()/get()/annotate()...` always build a new query. SQLAlchemy follows the
relationship's `lazy=` strategy and loader options along the path.

Custom managers and querysets (`QS.as_manager()`, `Manager.from_queryset(QS)`, Manager subclasses,
`QS(self.model, using=self._db)` in `get_queryset()`) keep a chain a queryset of its model; what a project
method adds (`select_related`...) is evaluated. The default manager's `get_queryset()` also applies to the
related managers and prefetches of that model (Django derives them from its class). Relations onto
well-known external models (`settings.AUTH_USER_MODEL`, `get_user_model()`, `auth.User`) give those
models reverse accessors (`OrmIndex.external`, merged into the evaluator's view of the graph).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend_audit.index.orm import DJANGO, SQLALCHEMY, OrmIndex, OrmModel
from backend_audit.index.project import ProjectIndex
from backend_audit.parsing.summary import MODULE_SCOPE, FunctionSummary

from .values import (
    CLASS,
    DICT,
    ENUM,
    EXT,
    FUNC,
    INSTANCE,
    LIST,
    MODEL,
    PREFETCH,
    QS,
    RELMGR,
    ROW,
    ROWS,
    SA_ATTR,
    SA_DYN,
    SA_EXEC,
    SA_OPT,
    SA_Q,
    SA_REL,
    SA_RES,
    SA_SEL,
    SUPER,
    UNK,
    UNKNOWN,
    VALUES,
    Event,
    Val,
    add_path,
    sub_paths,
    top,
)

MAX_DEPTH = 12
_NO_FACTS: dict[str, Any] = {}  # read only
_ORM_KINDS = frozenset({QS, ROWS, ROW, RELMGR, VALUES, SA_RES, SA_REL, SA_Q, SA_SEL, SA_DYN, SA_EXEC})
_QUERYSET_BASES = frozenset({"django.db.models.QuerySet", "django.db.models.query.QuerySet"})
_GET_USER_MODEL = frozenset({"django.contrib.auth.get_user_model"})
PROPERTY_DECORATORS = ("builtins.property", "functools.cached_property", "django.utils.functional.cached_property",
                       "cached_property", "property")


class _WithExternal:
    """The ORM graph as the N+1 analyzer sees it: project models plus the well-known external models
    (`auth.User`...) that project relations point at, so `user.posts` on an `auth.User` row resolves.
    The shared `OrmIndex.models` itself stays project-only."""

    def __init__(self, orm: OrmIndex):
        self._orm = orm
        external = getattr(orm, "external", None) or {}
        self.models: dict[str, OrmModel] = {**external, **orm.models} if external else orm.models

    def __getattr__(self, name: str) -> Any:
        return getattr(self._orm, name)


@dataclass
class FnCtx:
    fq: str  # qualified name
    module: str
    path: str
    facts: dict[str, Any]
    summary: FunctionSummary | None
    class_q: str | None  # qualified name of the class of a method
    bindings: dict[str, Val]
    # per-function memos, shared by the bound copies (`Evaluator._loops_of/_assigns_of/_params_of`):
    # read as attributes on the hot path instead of a dict look-up by `fq` per name
    loop_names: dict[str, list] | None = field(default=None, repr=False, compare=False)
    assigns: dict[str, list] | None = field(default=None, repr=False, compare=False)
    #: (parameter names, first parameter is `self`/`cls` of a non-static method, of a classmethod)
    params: tuple[tuple[str, ...], bool, bool] | None = field(default=None, repr=False, compare=False)


class Evaluator:
    def __init__(self, index: ProjectIndex, orm: OrmIndex, cat: dict[str, Any], facts: dict[str, Any]):
        self.index = index
        self.orm = _WithExternal(orm)  # type: ignore[assignment]
        self.cat = cat
        self.facts = facts  # path -> collect() result
        self.keep = frozenset(cat.get("queryset_keep", []))
        self.row_methods = frozenset(cat.get("queryset_row", []))
        self.scalar_methods = frozenset(cat.get("queryset_scalar", []))
        self.values_methods = frozenset(cat.get("queryset_values", []))
        self.cached_methods = frozenset(cat.get("cached_manager_methods", []))
        self.managers = frozenset(cat.get("default_managers", []))
        self.mgr_cached = frozenset(cat.get("related_manager_cached", []))
        self.mgr_write = frozenset(cat.get("related_manager_write", []))
        self.row_write = frozenset(cat.get("row_write", []))
        self.row_query = frozenset(cat.get("row_query", []))
        self.sa = cat.get("sqlalchemy", {})
        self.sa_select = frozenset(self.sa.get("select", []))
        self.sa_keep = frozenset(self.sa.get("statement_keep", []))
        self.sa_loaders = frozenset(self.sa.get("eager_loaders", []))
        self.sa_lazy_loaders = frozenset(self.sa.get("lazy_loaders", []))
        self.sa_safe = frozenset(self.sa.get("safe_lazy", []))
        self.sa_dynamic = frozenset(self.sa.get("dynamic_lazy", []))
        self.sa_result_keep = frozenset(self.sa.get("result_keep", []))
        self.sa_result_row = frozenset(self.sa.get("result_row", []))
        self.sa_text = frozenset(self.sa.get("text", []))
        self.prefetch_cls = frozenset(cat.get("prefetch_classes", []))
        self.prefetch_objects = frozenset(cat.get("prefetch_related_objects", []))
        self.http = tuple(cat.get("http_calls", []))
        self.http_exclude = tuple(cat.get("http_exclude", []))
        self.db_modules = tuple(cat.get("dbapi_modules", []))
        self.execute_names = frozenset(cat.get("dbapi_execute", []))
        self._execute_suffixes = tuple(f".{n}" for n in self.execute_names)  # `ref.endswith(...)`: any order
        self.passthrough = frozenset(cat.get("iter_passthrough", []))
        self.paginators = frozenset(cat.get("paginators", []))
        self.evaluating = frozenset(cat.get("evaluating_builtins", []))
        self._fnctx: dict[str, FnCtx | None] = {}
        self._return_memo: dict[tuple, Val] = {}
        self._callee_memo: dict[tuple, list[Event]] = {}
        self._active: set[tuple] = set()
        self._sorted_assigns: dict[str, dict[str, list]] = {}
        self._name_memo: dict[tuple, Val] = {}
        self._loop_names: dict[str, dict[str, list]] = {}
        self._mro: dict[str, list[str]] = {}
        self._global_memo: dict[tuple, Val] = {}
        self._mgr_memo: dict[tuple, tuple] = {}
        self._dm_memo: dict[str, frozenset] = {}
        self._mgr_qs_memo: dict[tuple, Val] = {}
        self._view_qs_memo: dict[str, Val] = {}
        self._property_memo: dict[str, bool] = {}
        self._ext_vals: dict[str, Val] = {}
        self._self_vals: dict[tuple[str, bool], Val] = {}
        #: ModelAdmin class -> the model it is registered for (filled by the admin pass)
        self.admin_models: dict[str, Val] = {}

    # ----- functions ---------------------------------------------------------------------------
    def fn(self, fq: str, bindings: dict[str, Val] | None = None) -> FnCtx | None:
        base = self._fnctx.get(fq, False)
        if base is False:
            base = None
            info = self.index.functions.get(fq)
            if info is not None:
                file_facts = self.facts.get(info.path)
                qual = MODULE_SCOPE if fq == info.module else fq[len(info.module) + 1:]
                f = file_facts.get("functions", _NO_FACTS).get(qual) if file_facts else None
                if f is None:  # (a fresh one each time: no two functions share it)
                    f = {"uses": [], "assigns": [], "loops": [], "returns": []}
                class_q = f"{info.module}.{info.summary.class_qualname}" if info.summary.class_qualname else None
                base = FnCtx(fq, info.module, info.path, f, info.summary, class_q, {})
            self._fnctx[fq] = base
        if base is None:
            return None
        if bindings:
            # the copy shares the function's memos: fill them on the base first
            return FnCtx(base.fq, base.module, base.path, base.facts, base.summary, base.class_q, dict(bindings),
                         base.loop_names if base.loop_names is not None else self._loops_of(base),
                         base.assigns if base.assigns is not None else self._assigns_of(base),
                         base.params if base.params is not None else self._params_of(base))
        return base

    def _self_val(self, class_q: str, classmethod: bool) -> Val:
        """`self` (`cls` in a classmethod) of a method of `class_q` (memoised: a value per class)."""
        key = (class_q, classmethod)
        got = self._self_vals.get(key)
        if got is None:
            if classmethod:
                got = self._class_val(class_q)
            else:
                m = self.orm.models.get(class_q)
                # `self` in a model method is one row
                got = Val(ROW, model=m.qualified, fw=m.framework) if m is not None else Val(INSTANCE, extra=class_q)
            self._self_vals[key] = got
        return got

    def _ext(self, ref: str) -> Val:
        """`Val(EXT, extra=ref)`, one shared instance per ref: values are immutable and compared by
        value, and building them is a large part of evaluating chains of external objects."""
        got = self._ext_vals.get(ref)
        if got is None:
            got = self._ext_vals[ref] = Val(EXT, extra=ref)
        return got

    def _is_property(self, q: str) -> bool:
        """`_is_property` of project function `q` (memoised)."""
        got = self._property_memo.get(q)
        if got is None:
            got = self._property_memo[q] = _is_property(self.index.functions[q].summary)
        return got

    def mro(self, cls: str) -> list[str]:
        hit = self._mro.get(cls)
        if hit is None:
            hit = self._mro[cls] = self.index.mro(cls)
        return hit

    def _loops_of(self, fn: FnCtx) -> dict[str, list]:
        cached = fn.loop_names
        if cached is not None:
            return cached
        cached = self._loop_names.get(fn.fq)
        if cached is None:
            cached = {}
            for lp in fn.facts.get("loops", ()):
                t = lp[2]
                for n in ((t[1],) if t[0] == "n" else t[1] if t[0] == "t" else ()):
                    if n:
                        cached.setdefault(n, []).append(lp)
            self._loop_names[fn.fq] = cached
        fn.loop_names = cached
        return cached

    def relevant(self, fn: FnCtx, u: tuple) -> bool:
        """Can evaluating this use find anything? Attribute-only chains matter on rows only."""
        if u[9]:
            return True
        if not u[1] and (u[7] in ("iter", "test") or u[7].startswith("arg:")):
            return True
        root = u[0]
        return root in (fn.loop_names if fn.loop_names is not None else self._loops_of(fn)) \
            or root in (fn.assigns if fn.assigns is not None else self._assigns_of(fn)) or root in fn.bindings

    def _assigns_of(self, fn: FnCtx) -> dict[str, list]:
        cached = fn.assigns
        if cached is not None:
            return cached
        cached = self._sorted_assigns.get(fn.fq)
        if cached is None:
            cached = {}
            for a in fn.facts.get("assigns", ()):
                cached.setdefault(a[0], []).append(a)
            self._sorted_assigns[fn.fq] = cached
        fn.assigns = cached
        return cached

    def _params_of(self, fn: FnCtx) -> tuple[tuple[str, ...], bool, bool]:
        """(parameter names, whether the first one is the instance/class of a method, whether the
        method is a classmethod); memoised on the FnCtx."""
        got = fn.params
        if got is None:
            summary = fn.summary
            names = tuple([p.name for p in summary.params]) if summary else ()
            bound = bool(fn.class_q and names) and not _is_static(summary)
            got = fn.params = (names, bound, bound and _is_classmethod(summary))
        return got

    # ----- names ---------------------------------------------------------------------------------
    def name(self, fn: FnCtx, name: str, line: int, loops: tuple, depth: int) -> Val:
        if depth > MAX_DEPTH:
            return UNK
        best = None  # (line, kind, record)
        for loop in (fn.loop_names if fn.loop_names is not None else self._loops_of(fn)).get(name, ()):
            if loop[0] in loops and loop[3] <= line:
                if best is None or loop[3] >= best[0]:
                    best = (loop[3], "loop", loop)
        for a in (fn.assigns if fn.assigns is not None else self._assigns_of(fn)).get(name, ()):
            if a[2] < line and (best is None or a[2] >= best[0]):
                # an assignment inside a loop that does not enclose the use still counts (after the loop)
                best = (a[2], "assign", a)
        if best is not None:
            memo_key = (fn.fq, name, id(best[2])) if not fn.bindings else None
            if memo_key is not None:
                hit = self._name_memo.get(memo_key)
                if hit is not None:
                    return hit if best[1] == "loop" else self._after_mutations(fn, name, hit, best[2][2], line)
            if best[1] == "assign":
                a = best[2]
                v = self.value(fn, a[1], a[2], a[3], depth + 1)
                if memo_key is not None:
                    self._name_memo[memo_key] = v
                return self._after_mutations(fn, name, v, a[2], line)
            loop = best[2]
            outer = tuple([lid for lid in loops if lid != loop[0] and lid < loop[0]])
            it = self.value(fn, loop[1], loop[7], outer, depth + 1)
            v = self.iterate_target(it, loop[2], name)
            if memo_key is not None:
                self._name_memo[memo_key] = v
            return v
        if name in fn.bindings:
            return fn.bindings[name]
        params, bound_first, classmethod = fn.params if fn.params is not None else self._params_of(fn)
        if name in params:
            if bound_first and name == params[0]:
                return self._self_val(fn.class_q, classmethod)
            ann = fn.summary.params[params.index(name)].annotation  # (the first parameter of that name)
            if ann and not ann.startswith("$") and "[" not in ann and " " not in ann and "|" not in ann:
                v = self.ref_val(fn.module, ann + "()", depth + 1)
                if v.kind != UNKNOWN:
                    return v
            return self._ext(f"${name}")
        if name == "super" and fn.class_q:
            first = params[0] if params else None
            bound = fn.bindings.get(first) if first else None
            if bound is not None and bound.kind in (QS, VALUES):
                return Val(FUNC, extra="<super>", inner=bound)  # super().get_queryset() of a manager
            inst = bound.extra if bound is not None and bound.kind == INSTANCE else fn.class_q
            return Val(SUPER, extra=fn.class_q, inner=Val(INSTANCE, extra=inst))
        return self.global_name(fn.module, name, depth)

    def _after_mutations(self, fn: FnCtx, name: str, v: Val, start: int, end: int) -> Val:
        """`prefetch_related_objects(rows, "a__b")` between the binding and the use."""
        if v.kind not in (ROWS, ROW, QS) or not v.model:
            return v
        extra: set[str] = set()
        for u in fn.facts.get("uses", ()):
            if start <= u[2] < end and u[1] and u[1][-1][0] == "c" and len(u[1]) == 1:
                ref = self.index.resolve(fn.module, self._root_ref(fn, u[0]))
                if ref in self.prefetch_objects:
                    args = u[1][0][1]
                    if args and _is_name(args[0], name):
                        for a in args[1:]:
                            self._add_lookup(extra, a, fn, u[2], u[6])
        if extra:
            return v.but(loaded=v.loaded | frozenset(extra))
        return v

    def _root_ref(self, fn: FnCtx, name: str) -> str:
        summary = self.index.module_summary(fn.module)
        if summary is not None:
            if name in summary.imports:
                return summary.imports[name]
            if name in summary.functions or name in summary.classes or name in summary.assigns:
                return f"@{name}"
        import builtins

        if hasattr(builtins, name):
            return f"builtins.{name}"
        return f"${name}"

    def global_name(self, module: str, name: str, depth: int) -> Val:
        key = (module, name)
        hit = self._global_memo.get(key)
        if hit is None:
            hit = self._global_name(module, name, depth)
            self._global_memo[key] = hit
        return hit

    def _global_name(self, module: str, name: str, depth: int) -> Val:
        summary = self.index.module_summary(module)
        if summary is None:
            return UNK
        if name in summary.imports:
            ref = summary.imports[name]
        elif name in summary.functions or name in summary.classes:
            ref = f"@{name}"
        elif name in summary.assigns:
            mfn = self.fn(module)
            if mfn is not None:
                for a in reversed(self._assigns_of(mfn).get(name, ())):
                    return self.value(mfn, a[1], a[2], (), depth + 1)
            ref = f"@{name}"
        else:
            import builtins

            if hasattr(builtins, name):
                return Val(EXT, extra=f"builtins.{name}")
            return UNK
        return self.ref_val(module, ref, depth)

    def ref_val(self, module: str, ref: str, depth: int) -> Val:
        canon = self.index.resolve(module, ref)
        if not canon:
            return UNK
        return self.canonical_val(canon, depth)

    def canonical_val(self, canon: str, depth: int) -> Val:
        if canon in self.orm.models:
            m = self.orm.models[canon]
            return Val(MODEL, model=canon, fw=m.framework)
        if canon in self.index.path_of:
            return Val(EXT, extra=self.index.canonical_module(canon), fw="module")
        if canon in self.index.functions:
            return Val(FUNC, extra=canon)
        if canon in self.index.classes:
            return Val(CLASS, extra=canon)
        # a module-level variable of a project module
        mod, _, var = canon.rpartition(".")
        if mod in self.index.path_of and var:
            mfn = self.fn(self.index.canonical_module(mod))
            if mfn is not None:
                for a in reversed(self._assigns_of(mfn).get(var, ())):
                    return self.value(mfn, a[1], a[2], (), depth + 1)
        if canon.endswith("()") and canon[:-2] in self.index.classes:
            return Val(INSTANCE, extra=canon[:-2])
        return self._ext(canon)

    def _class_val(self, q: str) -> Val:
        if q in self.orm.models:
            return Val(MODEL, model=q, fw=self.orm.models[q].framework)
        return Val(CLASS, extra=q)

    # ----- values ----------------------------------------------------------------------------------
    def value(self, fn: FnCtx, desc: tuple, line: int, loops: tuple, depth: int,
              events: list[Event] | None = None) -> Val:
        kind = desc[0]
        if kind == "ch":
            return self.chain(fn, desc[1], desc[2], desc[3], loops, depth, events, None)
        if kind == "dict":
            return Val(DICT, extra=desc[1], inner=None, origin=(fn.fq, line, loops))
        if kind == "list":
            return Val(LIST, extra=desc[1], origin=(fn.fq, line, loops))
        if kind == "or":
            vals = [self.value(fn, d, line, loops, depth + 1) for d in desc[1]]
            known = [v for v in vals if v.kind != UNKNOWN]
            if not known:
                return UNK
            # the most optimistic alternative (most eager loading): precision first
            return max(known, key=lambda v: len(v.loaded))
        if kind == "imp":
            return self.ref_val(fn.module, desc[1], depth + 1)
        if kind == "comp":
            inner = self.value(fn, desc[1], line, loops, depth + 1)
            return Val(LIST, extra=(), inner=inner)
        return UNK

    def chain(self, fn: FnCtx, root: str, steps: tuple, line: int, loops: tuple, depth: int,
              events: list[Event] | None, pos: tuple | None, ctx: str = "") -> Val:
        if depth > MAX_DEPTH:
            return UNK
        v = self.name(fn, root, line, loops, depth + 1)
        n = len(steps)
        if not n:  # a bare name
            return v
        i = 0
        pos = pos or (line, 0, line, 0)
        while i < n:
            if v.kind == UNKNOWN:
                return UNK
            step = steps[i]
            tag = step[0]
            if tag == "a":
                nxt = steps[i + 1] if i + 1 < n else None
                if nxt is not None and nxt[0] == "c":
                    v = self.method(fn, v, step[1], nxt[1], dict(nxt[2]), line, loops, depth, events, pos,
                                    i + 2 == n, ctx)
                    i += 2
                    continue
                v = self.attr(fn, v, step[1], line, loops, depth, events, pos, i + 1 == n, ctx)
            elif tag == "c":
                v = self.call(fn, v, step[1], dict(step[2]), line, loops, depth, events, pos, ctx)
            else:
                v = self.subscript(v, step[1], events, pos, fn)
            i += 1
        return v

    # ----- steps -------------------------------------------------------------------------------------
    def _event(self, events: list[Event] | None, kind: str, fn: FnCtx, pos: tuple, **detail: Any) -> None:
        if events is not None:
            events.append(Event(kind, pos[0], pos[1], pos[2], pos[3], fn.path, detail))

    def subscript(self, v: Val, key: tuple, events, pos, fn) -> Val:
        if v.kind == QS:
            if key[0] == "k" and isinstance(key[1], int):
                self._event(events, "query", fn, pos, model=v.model, call="[index]", qs=v)
                return Val(ROW, model=v.model, loaded=v.loaded, fw=v.fw, origin=v.origin)
            return v  # a slice is still lazy
        if v.kind in (ROWS, LIST, SA_RES, SA_REL) and v.model:
            return Val(ROW, model=v.model, loaded=v.loaded, fw=v.fw, per_iter=False, origin=v.origin)
        if v.kind == EXT:
            return self._ext(f"{v.extra}[]")
        if v.kind == DICT and key[0] == "s":
            for k, d in v.extra:
                if k == ("s", key[1]):
                    f = self.fn(v.origin[0]) if v.origin else None
                    if f is not None:
                        return self.value(f, d, v.origin[1], v.origin[2], 1)
        return UNK

    def attr(self, fn: FnCtx, v: Val, name: str, line, loops, depth, events, pos, last: bool, ctx: str) -> Val:
        k = v.kind
        if k == MODEL:
            m = self.orm.models[v.model]
            if m.framework == DJANGO:
                if name in self.managers or self._declares_manager(v.model, name):
                    return self.manager_queryset(v.model, name).but(built=line, origin=(fn.path,) + pos)
                return self._class_member(fn, v.model, name, v, depth)
            # SQLAlchemy
            if name == "query":
                return Val(SA_Q, model=v.model, fw=SQLALCHEMY, built=line, origin=(fn.path,) + pos)
            f = m.fields.get(name) or getattr(m, "backrefs", {}).get(name)
            if f is not None and f.relation == "relationship":
                return Val(SA_ATTR, model=v.model, extra=name, fw=SQLALCHEMY)
            return self._class_member(fn, v.model, name, v, depth)
        if k == ROW:
            return self.row_attr(fn, v, name, line, loops, depth, events, pos, last, call=None)
        if k == INSTANCE or k == CLASS:
            cls = v.extra
            q = self._member_function(cls, name)
            if q is not None:
                if self._is_property(q):
                    return self.call_function(q, [], {}, Val(INSTANCE, extra=cls) if k == INSTANCE else None,
                                              fn, line, loops, depth, events, pos)
                return Val(FUNC, extra=q, inner=v if k == INSTANCE else None)
            if name == "get_queryset" and k == INSTANCE:  # inherited from a generic view / DRF view
                return Val(FUNC, extra="<base_qs>", inner=v)
            av = self._class_attr_val(cls, name, depth, inst=v if k == INSTANCE else None)
            if av.kind == UNKNOWN and k == INSTANCE and name in ("object", "object_list"):
                return self.view_attr(cls, name)
            return av
        if k == SUPER:
            cls = v.extra
            inst = v.inner.extra if v.inner is not None and v.inner.kind == INSTANCE else cls
            full = self.mro(inst)
            mro = full[full.index(cls) + 1:] if cls in full else self.mro(cls)[1:]
            for c in mro:
                q = f"{c}.{name}"
                if q in self.index.functions:
                    return Val(FUNC, extra=q, inner=Val(INSTANCE, extra=inst))
            if name == "get_queryset":
                return Val(FUNC, extra="<base_qs>", inner=Val(INSTANCE, extra=inst))
            return Val(EXT, extra=f"super.{name}", inner=Val(INSTANCE, extra=inst))
        if k == EXT:
            if v.fw == "module":
                return self.ref_val(v.extra, f"@{name}", depth + 1)
            if v.inner is None:
                return self._ext(f"{v.extra}.{name}")
            return Val(EXT, extra=f"{v.extra}.{name}", inner=v.inner)
        if k == ENUM:
            return UNK
        if k == LIST and v.fw == "page":
            if name in ("object_list",):
                return v.inner
            if name in ("page", "get_page", "paginate_queryset"):
                return Val(FUNC, extra="<page>", inner=v)
            return UNK
        if k == QS and name in ("objects",):
            return v
        if k == QS and name == "model" and v.model and v.fw == DJANGO:  # `self.model` in a manager
            return Val(MODEL, model=v.model, fw=DJANGO)
        return UNK

    # ----- custom managers and querysets ------------------------------------------------------
    def _declares_manager(self, model_q: str, name: str) -> bool:
        """`name` is a manager of the model (declared on it or inherited from an abstract/parent model)."""
        for c in self.mro(model_q):
            pm = self.orm.models.get(c)
            if pm is not None and name in pm.managers:
                return True
        return False

    def manager_classes(self, model_q: str, name: str) -> tuple[str, ...]:
        """The project classes whose methods `Model.<name>` has, in lookup order.

        `BookQuerySet.as_manager()` -> (BookQuerySet,); `BookManager()` -> (BookManager, and the
        QuerySet of a `Manager.from_queryset(BookQuerySet)` base along its MRO);
        `Manager.from_queryset(BookQuerySet)()` -> (BookQuerySet,).
        """
        key = (model_q, name)
        hit = self._mgr_memo.get(key)
        if hit is not None:
            return hit
        self._mgr_memo[key] = ()
        out: list[str] = []
        for c in self.mro(model_q):
            info = self.index.classes.get(c)
            if info is None:
                continue
            attrs = (self.facts.get(info.path) or {}).get("classes", {}).get(c[len(info.module) + 1:], {})
            if name in attrs:
                desc = attrs[name][0]
                if desc[0] == "ch":
                    out = self._manager_desc_classes(info.module, desc)
                break
        res = tuple(dict.fromkeys(q for q in out if q in self.index.classes))
        self._mgr_memo[key] = res
        return res

    def _class_of_chain(self, module: str, root: str, steps: tuple) -> str | None:
        mfn = self.fn(module)
        if mfn is None or any(st[0] != "a" for st in steps):
            return None
        v = self.chain(mfn, root, steps, 10 ** 9, (), 2, None, None)
        return v.extra if v.kind == CLASS else None

    def _manager_desc_classes(self, module: str, desc: tuple) -> list[str]:
        root, steps = desc[1], desc[2]
        out: list[str] = []
        for i, st in enumerate(steps):
            if st[0] != "a" or i + 1 >= len(steps) or steps[i + 1][0] != "c":
                continue
            if st[1] == "as_manager":
                cls = self._class_of_chain(module, root, steps[:i])
                return [cls] if cls else []
            if st[1] == "from_queryset":
                base = self._class_of_chain(module, root, steps[:i])
                qargs = steps[i + 1][1]
                if base:
                    out.append(base)
                if qargs and qargs[0][0] == "ch":
                    qs_cls = self._class_of_chain(module, qargs[0][1], qargs[0][2])
                    if qs_cls:
                        out.append(qs_cls)
                return out
        if steps and steps[-1][0] == "c":
            cls = self._class_of_chain(module, root, steps[:-1])
            if cls:
                out.append(cls)
                out.extend(self._from_queryset_bases(cls))
        return out

    def manager_queryset(self, model_q: str, name: str) -> Val:
        """What `Model.<manager>` is: a queryset of the model with what the manager's `get_queryset()` adds.

        Evaluated once per manager (not per use, so the depth of the calling context never changes
        it); an override that cannot be followed makes the queryset uncertain (nothing reported).
        """
        key = (model_q, name)
        hit = self._mgr_qs_memo.get(key)
        if hit is not None:
            return hit
        self._mgr_qs_memo[key] = Val(QS, model=model_q, fw=DJANGO, uncertain=True)  # recursion guard
        classes = self.manager_classes(model_q, name)
        qs = Val(QS, model=model_q, fw=DJANGO, extra=classes or None)
        m = self.orm.models.get(model_q)
        mfn = self.fn(m.module) if m is not None and classes else None
        for canon in classes:
            gq = self._member_function(canon, "get_queryset")
            if gq is not None:
                if mfn is None:
                    qs = qs.but(uncertain=True)
                    break
                try:
                    r = self.call_function(gq, [], {}, qs, mfn, 0, (), 1, None, (0, 0, 0, 0))
                except RecursionError:  # pragma: no cover
                    r = UNK
                merged = tuple(dict.fromkeys((qs.extra or ()) + (r.extra if isinstance(r.extra, tuple) else ())))
                qs = r.but(extra=merged or None, origin=None, built=0) \
                    if r.kind == QS and r.model == model_q else qs.but(uncertain=True)
                break
        self._mgr_qs_memo[key] = qs
        return qs

    def default_manager_loaded(self, model_q: str | None) -> frozenset:
        """Relations the model's default manager's `get_queryset()` always loads.

        Django builds related managers (reverse FK, many-to-many) and their prefetches from the
        related model's `_default_manager.__class__`, so a `select_related("x")` there applies to
        `owner.rows.all()` and `prefetch_related("rows")` too. Forward FK access uses the plain base
        manager instead (not covered here).
        """
        if not model_q:
            return frozenset()
        hit = self._dm_memo.get(model_q)
        if hit is not None:
            return hit
        self._dm_memo[model_q] = frozenset()
        out: frozenset = frozenset()
        m = self.orm.models.get(model_q)
        name = self._default_manager_name(model_q) if m is not None and m.framework == DJANGO else None
        if name:
            qs = self.manager_queryset(model_q, name)
            if qs.kind == QS and qs.model == model_q and not qs.uncertain:
                out = frozenset(p for p in qs.loaded if p != "*")
        self._dm_memo[model_q] = out
        return out

    def _default_manager_name(self, model_q: str) -> str | None:
        """`Meta.default_manager_name`, else the first manager declared on the model, then its parents."""
        for c in self.mro(model_q):
            pm = self.orm.models.get(c)
            if pm is None:
                continue
            explicit = pm.meta_value("default_manager_name")
            if isinstance(explicit, str):
                return explicit
            if pm.managers:
                return next(iter(pm.managers))
        return None

    def _from_queryset_bases(self, cls: str) -> list[str]:
        """`class BookManager(models.Manager.from_queryset(BookQuerySet))`: BookQuerySet's methods."""
        out: list[str] = []
        for c in self.mro(cls):
            info = self.index.classes.get(c)
            if info is None:
                continue
            for b in (self.facts.get(info.path) or {}).get("bases", {}).get(c[len(info.module) + 1:], ()):
                if b[0] == "ch":
                    out.extend(q for q in self._manager_desc_classes(info.module, b) if q != c)
        return out

    def _member_function(self, cls: str, name: str) -> str | None:
        for c in self.mro(cls):
            q = f"{c}.{name}"
            if q in self.index.functions:
                return q
        return None

    def _class_member(self, fn, model_q: str, name: str, v: Val, depth: int) -> Val:
        q = self._member_function(model_q, name)
        if q is not None:
            return Val(FUNC, extra=q)
        return UNK

    def _class_attr_val(self, cls: str, name: str, depth: int, inst: Val | None) -> Val:
        """`self.queryset` / `self.model` from the class bodies (project MRO)."""
        for c in self.mro(cls):
            info = self.index.classes[c]
            cf = (self.facts.get(info.path) or {}).get("classes", {})
            qual = c[len(info.module) + 1:]
            attrs = cf.get(qual)
            if attrs and name in attrs:
                desc, line = attrs[name]
                mfn = self.fn(info.module)
                if mfn is None:
                    return UNK
                return self.value(mfn, desc, line, (), depth + 1)
            ia = info.summary.instance_attrs.get(name) if inst is not None else None
            if ia is not None:  # `self.client = httpx.Client()` in a method
                v = ia.value
                # only constructors of imported classes (clients, sessions): project refs can recurse deeply
                if v[0] == "call" and v[1] and v[1][0] not in "$@." and "()" not in v[1]:
                    canon = self.index.resolve(info.module, v[1] + "()")
                    return self.canonical_val(canon, depth + 1) if canon else UNK
                return UNK
        return UNK

    def row_attr(self, fn: FnCtx, v: Val, name: str, line, loops, depth, events, pos, last: bool,
                 call: tuple | None) -> Val:
        m = self.orm.models.get(v.model) if v.model else None
        if m is None:
            return UNK
        if m.framework == SQLALCHEMY:
            return self.sa_row_attr(fn, v, m, name, line, loops, depth, events, pos)
        report = v.per_iter and not v.uncertain
        f = m.fields.get(name)
        loaded_top = top(v.loaded)
        if f is not None:
            if f.relation in ("fk", "o2o"):
                target = f.target or getattr(f, "external_target", None)
                if v.owner is not None and v.owner[0] == name:
                    return v.owner[1]  # fetched through owner.<reverse manager>: the FK is the owner itself
                if name in loaded_top or ("*" in v.loaded and not f.kw("null", False)):
                    sub = sub_paths(v.loaded, name) | (frozenset({"*"}) if "*" in v.loaded else frozenset())
                    return Val(ROW, model=target, loaded=sub, per_iter=v.per_iter,
                               fw=DJANGO, origin=v.origin, uncertain=v.uncertain or target is None,
                               prefix=v.prefix + name + "__", many=v.many)
                ev_ = None
                if report:
                    self._event(events, "fk", fn, pos, model=m.qualified, relation=name, row=v,
                                target=target, field_line=f.line, field_path=f.path, path=v.prefix + name)
                    ev_ = events[-1] if events else None
                elif isinstance(v.extra, Event) and v.extra.kind == "fk":
                    # the same chain goes on through another unloaded FK: widen the fix to the whole path
                    ev_ = v.extra
                    ev_.detail["path"] = v.prefix + name
                return Val(ROW, model=target, per_iter=False, fw=DJANGO, uncertain=target is None,
                           prefix=v.prefix + name + "__", extra=ev_, many=v.many)
            if f.relation in ("m2m", "generic-relation"):
                mt = f.target or getattr(f, "external_target", None)
                return Val(RELMGR, model=mt, extra=(name, name in loaded_top, m.qualified, v),
                           loaded=sub_paths(v.loaded, name) | self.default_manager_loaded(mt),
                           per_iter=v.per_iter, fw=DJANGO,
                           uncertain=v.uncertain or mt is None, origin=v.origin,
                           prefix=v.prefix + name + "__")
            if f.relation == "gfk":
                if name not in loaded_top and report:
                    self._event(events, "gfk", fn, pos, model=m.qualified, relation=name, row=v,
                                field_line=f.line, field_path=f.path, path=v.prefix + name)
                return UNK
            # a concrete field: deferred?
            if report and ((v.only is not None and name not in v.only and name not in ("id", "pk"))
                           or name in v.defer):
                self._event(events, "deferred", fn, pos, model=m.qualified, relation=name, row=v,
                            field_line=f.line, field_path=f.path, path=v.prefix + name)
            return UNK
        rev = m.reverse.get(name)
        if rev is None:
            for parent in m.parents:  # multi-table inheritance: reverse relations of parents
                pm = self.orm.models.get(parent)
                if pm is not None and name in pm.reverse:
                    rev = pm.reverse[name]
                    break
        if rev is not None:
            if rev.kind == "o2o":
                if name in loaded_top:
                    return Val(ROW, model=rev.source, loaded=sub_paths(v.loaded, name), per_iter=v.per_iter,
                               fw=DJANGO, origin=v.origin, prefix=v.prefix + name + "__")
                if report:
                    self._event(events, "fk", fn, pos, model=m.qualified, relation=name, row=v,
                                target=rev.source, reverse=True, path=v.prefix + name)
                return Val(ROW, model=rev.source, fw=DJANGO)
            # rows fetched through a reverse FK manager (or its prefetch) carry the owner in their FK cache
            known = frozenset({rev.field}) if rev.kind == "fk" else frozenset()
            return Val(RELMGR, model=rev.source, extra=(name, name in loaded_top, m.qualified, v,
                                                        rev.field if rev.kind == "fk" else None),
                       loaded=sub_paths(v.loaded, name) | known | self.default_manager_loaded(rev.source),
                       per_iter=v.per_iter, fw=DJANGO,
                       uncertain=v.uncertain, origin=v.origin, prefix=v.prefix + name + "__")
        if name in v.loaded:  # Prefetch(..., to_attr=name): a plain list
            return Val(ROWS, model=None, fw=DJANGO)
        if name.endswith("_id") or name in ("pk", "id"):
            return UNK
        if m.parents:  # multi-table inheritance: the parent link is an o2o, the fields are joined
            for parent in m.parents:
                if name == f"{self.orm.models[parent].name.lower()}_ptr":
                    return Val(ROW, model=parent, per_iter=v.per_iter, loaded=v.loaded, fw=DJANGO)
        q = self._member_function(m.qualified, name)
        if q is not None:
            if self._is_property(q):
                return self.call_function(q, [], {}, v, fn, line, loops, depth, events, pos, via=name)
            return Val(FUNC, extra=q, inner=v)
        return UNK

    def sa_row_attr(self, fn, v: Val, m: OrmModel, name: str, line, loops, depth, events, pos) -> Val:
        f = m.fields.get(name) or getattr(m, "backrefs", {}).get(name)
        if f is None or f.relation != "relationship":
            q = self._member_function(m.qualified, name) if f is None else None
            if q is not None:
                if self._is_property(q):
                    return self.call_function(q, [], {}, v, fn, line, loops, depth, events, pos, via=name)
                return Val(FUNC, extra=q, inner=v)
            return UNK
        lazy = f.kw("lazy", "select")
        extra_kw = f.kwargs.get("sa_relationship_kwargs")  # SQLModel: Relationship(sa_relationship_kwargs={...})
        if extra_kw is not None and extra_kw[0] == "dict":
            for k, val in extra_kw[1]:
                if k == ("const", "lazy"):
                    lazy = val[1] if val[0] == "const" else 0  # 0: not a known strategy
        if f.kwargs.get("lazy") is not None and f.kwargs["lazy"][0] != "const":
            return UNK  # a strategy computed at runtime
        if lazy is True or lazy is None:
            lazy = "select"
        if lazy is False:
            lazy = "joined"
        sub = sub_paths(v.loaded, name)
        if name in top(v.loaded) or "*" in v.loaded or (isinstance(lazy, str) and lazy in self.sa_safe):
            return Val(SA_REL, model=f.target, loaded=sub, per_iter=v.per_iter, fw=SQLALCHEMY, origin=v.origin,
                       uncertain=v.uncertain or f.target is None, prefix=v.prefix + name + "__")
        if isinstance(lazy, str) and lazy in self.sa_dynamic:
            return Val(SA_DYN, model=f.target, per_iter=v.per_iter, fw=SQLALCHEMY, origin=v.origin,
                       extra=(name, m.qualified), uncertain=v.uncertain)
        if not isinstance(lazy, str):
            return UNK
        if v.per_iter and not v.uncertain:
            self._event(events, "sa_lazy", fn, pos, model=m.qualified, relation=name, row=v, target=f.target,
                        field_line=f.line, field_path=f.path, path=v.prefix + name)
        return Val(SA_REL, model=f.target, per_iter=False, fw=SQLALCHEMY)

    # ----- calls ---------------------------------------------------------------------------------
    def _args(self, fn, args, line, loops, depth) -> list[Val]:
        return [self.value(fn, a, line, loops, depth + 1) for a in args]

    def method(self, fn: FnCtx, v: Val, name: str, args: tuple, kwargs: dict, line, loops, depth, events,
               pos, last: bool, ctx: str) -> Val:
        k = v.kind
        if k == QS:
            return self.qs_method(fn, v, name, args, kwargs, line, loops, depth, events, pos)
        if k == VALUES:
            if name in self.keep or name in self.values_methods:
                return v
            if name in self.row_methods or name in self.scalar_methods:
                self._event(events, "query", fn, pos, model=v.model, call=name, qs=v)
            return UNK
        if k == RELMGR:
            return self.relmgr_method(fn, v, name, args, kwargs, line, loops, depth, events, pos)
        if k == ROW:
            m = self.orm.models.get(v.model) if v.model else None
            if m is not None and name in self.row_write and m.framework == DJANGO:
                self._event(events, "write", fn, pos, model=v.model, call=name, per_iter=v.per_iter)
                return UNK
            if m is not None and name in self.row_query and m.framework == DJANGO:
                self._event(events, "query", fn, pos, model=v.model, call=name)
                return UNK
            fv = self.row_attr(fn, v, name, line, loops, depth, events, pos, last, call=args)
            if fv.kind == FUNC:
                return self.call(fn, fv, args, kwargs, line, loops, depth, events, pos, ctx=ctx)
            return UNK
        if k in (SA_SEL, SA_Q, SA_RES, SA_EXEC, SA_DYN, SA_OPT, SA_REL):
            return self.sa_method(fn, v, name, args, kwargs, line, loops, depth, events, pos)
        if k == MODEL and v.fw == SQLALCHEMY:
            pass
        fv = self.attr(fn, v, name, line, loops, depth, events, pos, last=False, ctx=ctx)
        if fv.kind == QS and k == MODEL:  # Model.objects is an attribute; Model.method() a classmethod
            return fv
        return self.call(fn, fv, args, kwargs, line, loops, depth, events, pos, ctx=ctx, receiver=v, mname=name)

    def qs_method(self, fn, v: Val, name, args, kwargs, line, loops, depth, events, pos) -> Val:
        if v.uncertain:
            return v
        if name in self.cached_methods:
            return UNK
        if name in ("select_related", "prefetch_related"):
            loaded = set(v.loaded)
            if name == "select_related" and not args:
                loaded.add("*")
            for a in args:
                if not self._add_lookup(loaded, a, fn, line, loops):
                    return v.but(uncertain=True)
            return v.but(loaded=frozenset(loaded))
        if name == "only":
            names = {a[1].split("__", 1)[0] for a in args if a[0] == "s"}
            return v.but(only=frozenset(names) if v.only is None else v.only & frozenset(names))
        if name == "defer":
            if args and args[0] == ("k", None):
                return v.but(defer=frozenset())
            return v.but(defer=v.defer | frozenset(a[1] for a in args if a[0] == "s"))
        if name in self.values_methods:
            return v.but(kind=VALUES)
        if name in self.keep:
            return v
        if name in self.row_methods:
            self._event(events, "query", fn, pos, model=v.model, call=name, qs=v)
            return Val(ROW, model=v.model, loaded=v.loaded, only=v.only, defer=v.defer, fw=DJANGO, origin=v.origin,
                       owner=v.owner)
        if name in self.scalar_methods:
            self._event(events, "query" if name not in ("bulk_create", "bulk_update") else "bulk", fn, pos,
                        model=v.model, call=name, qs=v)
            return UNK
        # a custom manager / queryset method of the project: what it adds to the chain
        for canon in (v.extra if isinstance(v.extra, tuple) else ()):
            if canon in self.index.classes:
                q = self._member_function(canon, name)
                if q is not None:
                    r = self.call_function(q, list(args), kwargs, v, fn, line, loops, depth, None, pos,
                                           arg_descs=True)
                    if r.kind in (QS, VALUES) and r.model == v.model:
                        # the chain still starts where the caller built it (the callee's value is memoised)
                        return r.but(origin=v.origin, built=v.built, owner=v.owner, extra=v.extra) \
                            if r.kind == QS else r.but(origin=v.origin, built=v.built)
                    if r.kind == ROW:
                        self._event(events, "query", fn, pos, model=v.model, call=name, qs=v)
                        return r
                    return v.but(uncertain=True)
        return v.but(uncertain=True)

    def _add_lookup(self, loaded: set, a: tuple, fn, line, loops) -> bool:
        if a[0] == "s":
            add_path(loaded, a[1])
            return True
        if a[0] == "k" and a[1] is None:
            loaded.clear()
            return True
        pv = self.value(fn, a, line, loops, 1)
        if pv.kind == PREFETCH and pv.extra:
            lookup, to_attr, inner_loaded = pv.extra
            if to_attr:
                loaded.add(to_attr)
                parent = lookup.rsplit("__", 1)[0] if "__" in lookup else None
                if parent:
                    add_path(loaded, parent)
                for p in inner_loaded:
                    loaded.add(f"{to_attr}__{p}")
            else:
                add_path(loaded, lookup)
                for p in inner_loaded:
                    loaded.add(f"{lookup}__{p}")
            return True
        if pv.kind == LIST:
            return all(self._add_lookup(loaded, d, fn, line, loops) for d in pv.extra)
        return False

    def relmgr_method(self, fn, v: Val, name, args, kwargs, line, loops, depth, events, pos) -> Val:
        accessor, prefetched, owner, row = v.extra[:4]
        back = (v.extra[4], row) if len(v.extra) > 4 and v.extra[4] else None
        report = v.per_iter and not v.uncertain
        if name in ("all",):
            if prefetched:
                return Val(ROWS, model=v.model, loaded=v.loaded, fw=DJANGO, origin=v.origin, prefix=v.prefix,
                           uncertain=v.uncertain, many=True, owner=back)
            if report:
                self._event(events, "mgr", fn, pos, model=owner, relation=accessor, row=row, target=v.model,
                            path=v.prefix[:-2])
            # the rows of this query (already reported as the relation's N+1, not again as a query)
            return Val(ROWS, model=v.model, fw=DJANGO, origin=v.origin or (fn.path,) + pos, uncertain=v.uncertain,
                       prefix=v.prefix, many=True, loaded=v.loaded, owner=back)
        if name in self.mgr_cached and prefetched:
            return UNK
        if name in self.mgr_write:
            self._event(events, "write", fn, pos, model=owner, call=f"{accessor}.{name}", per_iter=v.per_iter)
            return UNK
        if report:
            kind = "mgr_count" if name in ("count", "exists") else "mgr_query"
            self._event(events, kind, fn, pos, model=owner, relation=accessor, row=row, target=v.model,
                        call=name, prefetched=prefetched, path=v.prefix[:-2])
        # a related manager subclasses the related model's default manager: its custom methods apply
        dm = self._default_manager_name(v.model) if v.model else None
        qs = Val(QS, model=v.model, fw=DJANGO, built=line, origin=(fn.path,) + pos, loaded=v.loaded, owner=back,
                 extra=(self.manager_classes(v.model, dm) or None) if dm else None)
        if report:
            # already reported as this relation's N+1: nothing downstream is reported again
            return qs.but(kind=VALUES if name in self.values_methods else QS, uncertain=True)
        return self.qs_method(fn, qs, name, args, kwargs, line, loops, depth, events, pos)

    def call(self, fn: FnCtx, v: Val, args: tuple, kwargs: dict, line, loops, depth, events, pos, ctx: str = "",
             receiver: Val | None = None, mname: str = "") -> Val:
        k = v.kind
        if k == FUNC and v.extra == "<page>":
            return v.inner
        if k == FUNC and v.extra == "<super>":
            return v.inner
        if k == FUNC and v.extra == "<base_qs>":
            return self.base_queryset(v.inner.extra, depth)
        if k == FUNC:
            return self.call_function(v.extra, list(args), kwargs, v.inner, fn, line, loops, depth, events, pos,
                                      arg_descs=True)
        if k == CLASS:
            q = v.extra
            if self.index.is_subclass(q, _QUERYSET_BASES):
                # `BookQuerySet(self.model, using=self._db)` in a manager's get_queryset()
                md = args[0] if args else kwargs.get("model")
                mv = self.value(fn, md, line, loops, depth + 1) if md is not None else UNK
                if mv.kind == MODEL and mv.fw == DJANGO:
                    return Val(QS, model=mv.model, fw=DJANGO, built=line, origin=(fn.path,) + pos,
                               extra=(q,))
                return UNK
            init = self._member_function(q, "__init__")
            if init is not None:
                self.call_function(init, list(args), kwargs, Val(INSTANCE, extra=q), fn, line, loops, depth,
                                   events, pos, arg_descs=True)
            inner = self.value(fn, args[0], line, loops, depth + 1) if args else None
            return Val(INSTANCE, extra=q, inner=inner, origin=(fn.path,) + pos,
                       per_iter=kwargs.get("many") == ("k", True))
        if k == MODEL:
            m = self.orm.models[v.model]
            return Val(ROW, model=v.model, fw=m.framework, per_iter=False)  # Model(...): a new instance
        if k == SUPER:
            return v
        if k == EXT:
            return self.ext_call(fn, v, args, kwargs, line, loops, depth, events, pos, ctx)
        if k == SA_DYN:
            return v
        return UNK

    def ext_call(self, fn, v: Val, args, kwargs, line, loops, depth, events, pos, ctx) -> Val:
        ref: str = v.extra
        if ref == "super" or ref == "builtins.super":
            return Val(SUPER, extra=fn.class_q) if fn.class_q else UNK
        if ref in _GET_USER_MODEL and not args:
            user = self.orm.user_model_ref() if hasattr(self.orm, "user_model_ref") else None
            if user and user in self.orm.models:
                return Val(MODEL, model=user, fw=DJANGO)
            return self._ext(ref + "()")
        if ref in self.sa_select and args:
            a0 = self.value(fn, args[0], line, loops, depth + 1)
            if a0.kind == MODEL and a0.fw == SQLALCHEMY and len(args) == 1:
                return Val(SA_SEL, model=a0.model, fw=SQLALCHEMY, built=line, origin=(fn.path,) + pos)
            return Val(SA_SEL, model=None, fw=SQLALCHEMY, uncertain=True, built=line)
        if ref in self.sa_loaders or ref in self.sa_lazy_loaders:
            return self._sa_option(fn, Val(SA_OPT, extra=()), ref.rsplit(".", 1)[-1], args, line, loops, depth)
        if ref in self.prefetch_cls and args and args[0][0] == "s":
            inner = kwargs.get("queryset")
            inner_loaded: frozenset = frozenset()
            if inner is not None:
                iv = self.value(fn, inner, line, loops, depth + 1)
                inner_loaded = iv.loaded
            to_attr = kwargs.get("to_attr")
            return Val(PREFETCH, extra=(args[0][1], to_attr[1] if to_attr and to_attr[0] == "s" else None,
                                        inner_loaded))
        if ref in self.paginators and args:
            inner = self.value(fn, args[0], line, loops, depth + 1)
            return Val(LIST, extra=(), inner=inner, fw="page") if inner.kind in (QS, ROWS, SA_RES) else UNK
        if ref in self.passthrough and args:
            inner = self.value(fn, args[0], line, loops, depth + 1)
            if ref.endswith("enumerate"):
                return Val(ENUM, inner=inner)
            return self._evaluate_iterable(fn, inner, events, pos, line, loops, ref)
        if ref in self.evaluating and args:
            inner = self.value(fn, args[0], line, loops, depth + 1)
            self._evaluate_iterable(fn, inner, events, pos, line, loops, ref)
            return UNK
        if ref.startswith(self.http) and not ref.startswith(self.http_exclude):
            self._event(events, "http", fn, pos, call=ref)
            return UNK
        # session / connection / cursor methods of DB APIs
        tail = ref.rsplit(".", 1)[-1].removesuffix("()")
        if ref.endswith(self._execute_suffixes) or tail in self.sa.get("session_methods", []):
            return self.db_call(fn, v, tail, args, kwargs, line, loops, depth, events, pos)
        return self._ext(ref + "()")

    def db_call(self, fn, v: Val, tail: str, args, kwargs, line, loops, depth, events, pos) -> Val:
        ref: str = v.extra
        a0 = self.value(fn, args[0], line, loops, depth + 1) if args else UNK
        receiver = ref.rsplit(".", 1)[0]
        if tail in ("scalars", "execute", "scalar", "stream", "stream_scalars", "exec") and a0.kind in (SA_SEL,):
            self._event(events, "sa_query", fn, pos, call=tail, model=a0.model)
            if tail in ("scalars", "stream_scalars", "exec"):
                return Val(SA_RES, model=a0.model, loaded=a0.loaded, fw=SQLALCHEMY, built=a0.built or line,
                           origin=a0.origin, uncertain=a0.uncertain)
            if tail == "execute" or tail == "stream":
                return Val(SA_EXEC, model=a0.model, loaded=a0.loaded, fw=SQLALCHEMY, built=a0.built or line,
                           origin=a0.origin, uncertain=a0.uncertain)
            return Val(ROW, model=a0.model, loaded=a0.loaded, fw=SQLALCHEMY) if a0.model else UNK
        if tail == "query" and a0.kind == MODEL and a0.fw == SQLALCHEMY:
            return Val(SA_Q, model=a0.model, fw=SQLALCHEMY, built=line, origin=(fn.path,) + pos)
        if tail == "get" and a0.kind == MODEL and a0.fw == SQLALCHEMY:
            self._event(events, "sa_query", fn, pos, call="get", model=a0.model)
            return Val(ROW, model=a0.model, fw=SQLALCHEMY)
        if tail in self.execute_names:
            is_text = a0.kind == EXT and str(a0.extra).split("(")[0] in self.sa_text
            stmt = self._statement(fn, args[0], line, depth) if args else None
            is_cursor = receiver.endswith(".cursor()") or receiver.startswith(self.db_modules)
            # one fixed statement run with new parameters each time; a list of different statements
            # (`for sql in statements: cursor.execute(sql)`) is a script, not an N+1
            if is_text or a0.kind == SA_SEL or (stmt is not None and (is_cursor or _sqlish(stmt))):
                self._event(events, "raw", fn, pos, call=tail)
            return UNK
        return self._ext(ref + "()")

    def _statement(self, fn: FnCtx, desc: tuple, line: int, depth: int) -> tuple | None:
        """The SQL text argument when it is a literal (or a name bound to one), or built by formatting."""
        if desc[0] in ("s", "fstr", "binop"):
            return desc
        if desc[0] == "ch" and not desc[2]:
            for a in reversed(self._assigns_of(fn).get(desc[1], ())):
                if a[2] < line:
                    # a statement text formatted per iteration may be a different statement each time
                    return a[1] if a[1][0] == "s" or (a[1][0] in ("fstr", "binop") and not a[3]) else None
            summary = self.index.module_summary(fn.module)
            if summary is not None and desc[1] in summary.assigns:
                v = summary.assigns[desc[1]].value
                if v[0] == "const" and isinstance(v[1], str):
                    return ("s", v[1])
        return None

    def _evaluate_iterable(self, fn, inner: Val, events, pos, line, loops, ref: str) -> Val:
        if inner.kind == QS:
            if not inner.uncertain:
                self._event(events, "qs_eval", fn, pos, model=inner.model, built=inner.built, call=ref, qs=inner)
            return Val(ROWS, model=inner.model, loaded=inner.loaded, only=inner.only, defer=inner.defer,
                       fw=DJANGO, origin=inner.origin, uncertain=inner.uncertain)
        if inner.kind in (SA_SEL, SA_Q):
            if inner.kind == SA_Q:
                self._event(events, "qs_eval", fn, pos, model=inner.model, built=inner.built, call=ref, sa=True)
            return Val(SA_RES, model=inner.model, loaded=inner.loaded, fw=SQLALCHEMY, origin=inner.origin)
        if inner.kind == VALUES:
            return inner
        return inner if inner.kind in (ROWS, SA_RES, SA_REL, LIST) else UNK

    def _sa_option(self, fn, v: Val, name: str, args, line, loops, depth) -> Val:
        base = v.extra[-1][0] if v.extra else ""
        entries = list(v.extra)
        loaded = name not in ("lazyload", "raiseload", "noload", "defaultload", "defer", "undefer", "load_only")
        for a in args:
            if a[0] == "s":
                if a[1] == "*":  # a wildcard loader: every relationship at this level
                    entries.append((f"{base}__*" if base else "*", loaded))
                    continue
                path = f"{base}__{a[1]}" if base else a[1]
            else:
                av = self.value(fn, a, line, loops, depth + 1)
                if av.kind != SA_ATTR:
                    continue
                path = f"{base}__{av.extra}" if base else av.extra
            entries.append((path, loaded))
            base = path
        return Val(SA_OPT, extra=tuple(entries))

    def sa_method(self, fn, v: Val, name, args, kwargs, line, loops, depth, events, pos) -> Val:
        k = v.kind
        if k == SA_OPT:
            if name in ("selectinload", "joinedload", "subqueryload", "contains_eager", "immediateload",
                        "lazyload", "raiseload", "noload", "defaultload", "options"):
                if name == "options":
                    return v
                return self._sa_option(fn, v, name, args, line, loops, depth)
            return v
        if k in (SA_SEL, SA_Q):
            if name == "options":
                loaded = set(v.loaded)
                for a in args:
                    ov = self.value(fn, a, line, loops, depth + 1)
                    if ov.kind != SA_OPT:
                        return v.but(uncertain=True)
                    for path, ok in ov.extra:
                        if ok:
                            add_path(loaded, path)
                return v.but(loaded=frozenset(loaded))
            if name in self.sa_keep:
                return v
            if k == SA_Q:
                if name in self.sa_result_keep:
                    self._event(events, "sa_query", fn, pos, call=name, model=v.model, built=v.built)
                    return Val(SA_RES, model=v.model, loaded=v.loaded, fw=SQLALCHEMY, origin=v.origin,
                               uncertain=v.uncertain)
                if name in self.sa_result_row or name in ("get", "count", "get_or_404", "first_or_404",
                                                          "one_or_404", "scalar"):
                    self._event(events, "sa_query", fn, pos, call=name, model=v.model)
                    return Val(ROW, model=v.model, loaded=v.loaded, fw=SQLALCHEMY) if name != "count" else UNK
            return v.but(uncertain=True)
        if k in (SA_RES, SA_EXEC):
            if name == "scalars" and k == SA_EXEC:
                return v.but(kind=SA_RES)
            if name in self.sa_result_keep:
                return v
            if name in self.sa_result_row:
                return Val(ROW, model=v.model, loaded=v.loaded, fw=SQLALCHEMY) if k == SA_RES else UNK
            return UNK
        if k == SA_DYN:
            # a dynamic relationship is a query: evaluating it per row queries
            if v.per_iter and not v.uncertain and (name in self.sa_result_keep or name in self.sa_result_row
                                                   or name in ("count",)):
                self._event(events, "sa_lazy", fn, pos, model=v.extra[1], relation=v.extra[0], target=v.model,
                            dynamic=True)
                return UNK
            return v
        if k == SA_REL:
            return UNK
        return UNK

    # ----- interprocedural -------------------------------------------------------------------------
    def call_function(self, q: str, args: list, kwargs: dict, self_val: Val | None, fn: FnCtx, line, loops, depth,
                      events, pos, arg_descs: bool = False, via: str = "") -> Val:
        callee = self.fn(q)
        if callee is None or callee.summary is None:
            return UNK
        params = callee.summary.params
        bindings: dict[str, Val] = {}
        pi = 0
        if self._params_of(callee)[1]:  # a method (not static) with a first parameter
            if self_val is not None:
                bindings[params[0].name] = self_val
            pi = 1
        positional = [p for p in params[pi:] if p.kind in ("posonly", "arg")]
        for p, a in zip(positional, args):
            bindings[p.name] = a if isinstance(a, Val) else self.value(fn, a, line, loops, depth + 1)
        for kname, a in kwargs.items():
            if any(p.name == kname for p in params):
                bindings[kname] = a if isinstance(a, Val) else self.value(fn, a, line, loops, depth + 1)
        memoised = any(d.ref and ("cache" in d.ref.lower() or "memoize" in d.ref.lower())
                       and "cached_property" not in d.ref for d in callee.summary.decorators)
        if events is not None and not memoised:  # an lru_cache'd helper queries once, not per call
            orm_bound = {k: v for k, v in bindings.items() if v.kind in _ORM_KINDS}
            inner = self.callee_events(q, orm_bound, depth + 1)
            if inner:
                self._event(events, "call", fn, pos, callee=q, via=via)
                events[-1].inner = inner
        return self.returns(q, bindings, depth + 1)

    def _sig(self, bindings: dict[str, Val]) -> tuple:
        out = []
        for k, v in bindings.items():
            if v.kind != UNKNOWN:
                extra = v.extra if isinstance(v.extra, str) or (v.kind == QS and isinstance(v.extra, tuple)) \
                    else None
                out.append((k, v.kind, v.model, v.loaded, v.per_iter, v.uncertain, v.only, v.defer, extra,
                            v.owner[0] if v.owner else None, v.prefix))
        return tuple(out)

    def returns(self, q: str, bindings: dict[str, Val], depth: int) -> Val:
        key = (q, self._sig(bindings))
        if key in self._return_memo:
            return self._return_memo[key]
        if key in self._active or depth > MAX_DEPTH:
            return UNK
        self._active.add(key)
        try:
            fn = self.fn(q, bindings)
            out = UNK
            if fn is not None and not (fn.summary and (fn.summary.is_generator)):
                vals = [self.value(fn, d, ln, _loops_at(fn, ln), depth + 1) for d, ln in fn.facts.get("returns", ())]
                known = [v for v in vals if v.kind != UNKNOWN]
                if known and len(known) == len(vals):
                    out = known[-1]
                    if any(v.kind != out.kind or v.model != out.model for v in known):
                        out = out.but(uncertain=True)
        finally:
            self._active.discard(key)
        self._return_memo[key] = out
        return out

    def callee_events(self, q: str, bindings: dict[str, Val], depth: int) -> list[Event]:
        """Every query one call of `q` runs (with these argument values), directly or via callees."""
        key = (q, self._sig(bindings))
        if key in self._callee_memo:
            return self._callee_memo[key]
        if key in self._active or depth > MAX_DEPTH:
            return []
        self._active.add(key)
        out: list[Event] = []
        try:
            fn = self.fn(q, bindings)
            if fn is not None and fn.fq != fn.module:
                for u in fn.facts.get("uses", ()):
                    if not u[1] or not self.relevant(fn, u):
                        continue
                    evs: list[Event] = []
                    self.use(fn, u, evs, depth + 1)
                    for e in evs:
                        out.append(e)
        finally:
            self._active.discard(key)
        self._callee_memo[key] = out
        return out

    def use(self, fn: FnCtx, u: tuple, events: list[Event], depth: int = 0) -> Val:
        root, steps, line, col, end_line, end_col, loops, ctx, _awaited, _ = u
        pos = (line, col, end_line, end_col)
        v = self.chain(fn, root, steps, line, loops, depth, events, pos, ctx=ctx)
        if ctx in ("iter", "test") or ctx.startswith("arg:") and ctx[4:] in ("list", "len", "tuple", "set", "sorted",
                                                                           "sum", "bool", "any", "all", "max", "min"):
            if v.kind == QS and not v.uncertain:
                self._event(events, "qs_eval", fn, pos, model=v.model, built=v.built, call=ctx, qs=v)
            elif v.kind == SA_Q and not v.uncertain:
                self._event(events, "sa_query", fn, pos, model=v.model, built=v.built, call="iterate")
            elif v.kind == SA_DYN and v.per_iter and not v.uncertain and ctx == "iter":
                self._event(events, "sa_lazy", fn, pos, model=v.extra[1], relation=v.extra[0], target=v.model,
                            dynamic=True)
        return v

    def base_queryset(self, cls: str, depth: int = 0) -> Val:
        """What a generic view's / ModelAdmin's inherited get_queryset() returns: `queryset` or `model`."""
        v = self._class_attr_val(cls, "queryset", depth, None)
        if v.kind in (QS, VALUES):
            return v
        m = self._class_attr_val(cls, "model", depth, None)
        if m.kind != MODEL:
            m = self.admin_models.get(cls, UNK)
        if m.kind == MODEL and m.fw == DJANGO:
            line = self._class_attr_line(cls, "model")
            info = self.index.classes.get(cls)
            origin = (info.path, line or info.summary.line, 0, line or info.summary.line, 0) if info else None
            return Val(QS, model=m.model, fw=DJANGO, origin=origin, built=line or 0)
        return UNK

    def view_queryset(self, cls: str) -> Val:
        """The queryset a generic list/detail view works on: its `get_queryset()` or `queryset`/`model`."""
        hit = self._view_qs_memo.get(cls)
        if hit is not None:
            return hit
        self._view_qs_memo[cls] = UNK
        gq = self._member_function(cls, "get_queryset")
        if gq is not None:
            params = self.index.functions[gq].summary.params
            qs = self.returns(gq, {params[0].name: Val(INSTANCE, extra=cls)} if params else {}, 1)
        else:
            qs = self.base_queryset(cls)
        self._view_qs_memo[cls] = qs
        return qs

    def view_attr(self, cls: str, name: str) -> Val:
        """`self.object` of a detail view (the row `get_object()` fetched from the view's queryset) and
        `self.object_list` of a list view, as `get_context_data()` sees them."""
        views = self.cat.get("views", {})
        anc = self.index.ancestors(cls)
        if name == "object" and anc & set(views.get("detail_views", []) + views.get("single_object_views", [])):
            qs = self.view_queryset(cls)
            if qs.kind == QS and qs.model and not qs.uncertain:
                return Val(ROW, model=qs.model, loaded=qs.loaded, only=qs.only, defer=qs.defer, fw=DJANGO,
                           origin=qs.origin)
        elif name == "object_list" and anc & set(views.get("list_views", [])):
            qs = self.view_queryset(cls)
            if qs.kind == QS and qs.model and not qs.uncertain:
                return qs
        return UNK

    def _class_attr_line(self, cls: str, name: str) -> int | None:
        for c in self.mro(cls):
            info = self.index.classes[c]
            a = info.summary.attrs.get(name)
            if a is not None:
                return a.line
        return None

    # ----- iteration ------------------------------------------------------------------------------
    def iterate(self, it: Val) -> Val:
        k = it.kind
        if k in (QS, ROWS, SA_RES, SA_REL, SA_Q) and it.model:
            return Val(ROW, model=it.model, loaded=it.loaded, only=it.only, defer=it.defer, per_iter=True,
                       fw=it.fw or (DJANGO if k in (QS, ROWS) else SQLALCHEMY), origin=it.origin,
                       uncertain=it.uncertain, prefix=it.prefix, many=it.many, owner=it.owner)
        if k == VALUES:
            return UNK
        if k == LIST and it.inner is not None:
            return self.iterate(it.inner)
        if k == INSTANCE and it.inner is not None:  # e.g. a paginator page wrapping rows
            return UNK
        return UNK

    def iterate_target(self, it: Val, target: tuple, name: str) -> Val:
        if target[0] == "n":
            return self.iterate(it)
        if target[0] == "t" and it.kind == ENUM and len(target[1]) == 2 and target[1][1] == name:
            return self.iterate(it.inner) if it.inner is not None else UNK
        return UNK


def _is_name(desc: tuple, name: str) -> bool:
    return desc[0] == "ch" and desc[1] == name and not desc[2]


def _sqlish(desc: tuple | None) -> bool:
    if not desc:
        return False
    if desc[0] == "s":
        head = desc[1].lstrip().split(None, 1)[0].upper() if desc[1].strip() else ""
        return head in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "REPLACE", "UPSERT", "MERGE")
    if desc[0] in ("fstr", "binop"):
        return True
    return False


def _is_property(summary: FunctionSummary) -> bool:
    return any(d.ref and (d.ref in PROPERTY_DECORATORS or d.ref.endswith("cached_property"))
               for d in summary.decorators)


def _is_static(summary: FunctionSummary | None) -> bool:
    return bool(summary) and any(d.ref == "builtins.staticmethod" for d in summary.decorators)


def _is_classmethod(summary: FunctionSummary | None) -> bool:
    return bool(summary) and any(d.ref == "builtins.classmethod" for d in summary.decorators)


def _loops_at(fn: FnCtx, line: int) -> tuple:
    return tuple(lp[0] for lp in fn.facts.get("loops", ()) if lp[3] <= line <= lp[4] and not lp[5])
