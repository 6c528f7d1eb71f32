"""The blocking-I/O analyzer (category `blocking-io`, rules BA401-BA404).

* BA401 a blocking call (catalog `[catalog.blocking_io.calls]`) made directly in a coroutine.
* BA402 a coroutine calls a sync project function that reaches a blocking call through sync
        project calls, any depth, across modules; reported at the call in the coroutine with the
        chain in `related`.
* BA403 an outbound HTTP call that can wait forever (no timeout / timeout=None), sync or async.
* BA404 a synchronous Django ORM operation in a coroutine (a query method, `save()`, a related
        manager write, evaluating a queryset by `for`/`list()`/`len()`...).

What runs on the event loop is decided by `async def`: the body of a coroutine (its own call
sites; lambdas and nested defs are separate functions that only run on the loop when the coroutine
calls them) and every sync project function it calls (a constructor runs `__init__`, a base
`__init__` through `super()`, a dataclass's `__post_init__`; calling a `functools.partial` runs its
function). The one framework exception: Starlette/FastAPI startup/shutdown hooks registered as
plain `def`s, which Starlette calls directly on the loop. A callable passed (not called) to an
offloading helper runs in a thread, also wrapped in `functools.partial`; an awaited call is an
async API. File objects and `pathlib.Path` values are tracked by type: each method call on them
(and each sync `for` over a file) is a blocking call of its own line. FastAPI/Starlette `def`
endpoints and Django sync views are sync functions, so what they do never reaches the loop unless
a coroutine calls them. Entry points (endpoints, views, handlers, middleware) only raise severity.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from typing import Any

from backend_audit.analyzers.base import AnalysisContext, Analyzer, FileUnit
from backend_audit.analyzers.blocking_io import model as catalog_model
from backend_audit.analyzers.blocking_io.django_orm import DjangoORM
from backend_audit.analyzers.blocking_io.entrypoints import REGISTRATION_NAMES, entry_points, request_path
from backend_audit.analyzers.blocking_io.facts import collect_facts
from backend_audit.analyzers.blocking_io.timeouts import HTTP_NAMES, TimeoutChecks
from backend_audit.findings import Finding, Related
from backend_audit.index.project import (
    FunctionInfo,
    ProjectIndex,
    ResolvedCall,
    split_ref,
    strip_markers,
)
from backend_audit.parsing.summary import MODULE_SCOPE, CallSite, Decorator

#: a relative or absolute dotted ref as the summary writes annotations it could resolve
_PLAIN_REF = re.compile(r"\.+[A-Za-z_][\w.]*\Z")
_IDENT = re.compile(r"[A-Za-z_][\w.]*")
_DEPENDS = frozenset({"fastapi.Depends", "fastapi.params.Depends", "fastapi.param_functions.Depends"})
_TYPING_NAMES = frozenset({"Optional", "Union", "None", "Annotated", "Depends", "typing", "Type"})


@dataclass
class Hit:
    """A blocking operation at one call site (or iteration) of one function."""

    rule: str  # BA401 or BA404
    line: int
    col: int
    end_line: int
    end_col: int
    call: str
    kind: str
    alternative: str
    confidence: str


@dataclass
class _Sites:
    """The functions and call sites the project-wide checks look at, gathered in one pass over
    the project (reading every call site is memory-bound: once, not once per check). Each list
    keeps the index's order (functions, then their call sites)."""

    coroutines: list[FunctionInfo]
    #: BA403 candidates: a ref (not `$local...`) whose last segment is in `HTTP_NAMES`, no `**kwargs`
    http: list[tuple[FunctionInfo, CallSite]]
    #: possible route registrations: a ref whose last segment is in `REGISTRATION_NAMES`
    registrations: list[tuple[FunctionInfo, CallSite]]
    #: sync functions under an `@<x>.on_event(...)` decorator
    hook_decorated: list[tuple[FunctionInfo, Decorator]]
    #: `<x>.add_event_handler(event, hook)` calls and calls with a startup/shutdown hook keyword
    hook_sites: list[tuple[FunctionInfo, CallSite]]


def _display(ref: str) -> str:
    if ref.startswith("builtins."):
        return ref[len("builtins."):]
    return ref.lstrip("$")


class BlockingIOAnalyzer(Analyzer):
    name = "blocking_io"
    category = "blocking-io"

    # ----- per file ---------------------------------------------------------------------------
    def collect(self, unit: FileUnit) -> Any:
        """Facts the generic summary lacks, from two cheap regex passes over the text.

        `eval`: where Python itself evaluates a value, as (line, column, leading name, end
        column): sync `for ... in <expr>` iterations (end column -1: any expression starting
        there) and `if <expr>:` truth tests (the end column of the whole condition).
        `imports`: function-local imports (line, bound name, ref), which the summary leaves as
        unknown `$name` refs. `annotated`: `name: Type = value` locals (line, name, annotation
        text), for values the summary cannot type. `paren_methods`: (line, method) of calls on a
        parenthesised receiver, which have no ref in the summary. `attr_defaults`: (line, attribute,
        constructor) for `self.x = given or Ctor()`. `with`: (line, column) of the expression of
        a sync `with X(...)` statement, whose `__enter__`/`__exit__` run right there.

        Both passes start with a literal, so they stay cheap on files that never touch an ORM.
        """
        if unit.kind != "python" or unit.module is None:
            return None
        return collect_facts(unit.text)

    # ----- whole project ----------------------------------------------------------------------
    def analyze(self, ctx: AnalysisContext) -> list[Finding]:
        cat = catalog_model.load(ctx.catalog)
        run = _Run(ctx, cat)
        return run.findings()


class _Run(TimeoutChecks):
    """State of one analysis: memo tables over the call graph."""

    def __init__(self, ctx: AnalysisContext, cat: catalog_model.BlockingCatalog):
        self.ctx = ctx
        self.cat = cat
        self.index: ProjectIndex = ctx.index
        self.orm = DjangoORM(self.index, cat.django) if cat.django else None
        if self.orm is not None and not self.orm.active and not self._uses_django():
            self.orm = None
        self.iterations: dict[str, list[tuple[int, int, str, int]]] = {}
        self.local_imports: dict[str, list[tuple[int, str, str]]] = {}
        self.annotated: dict[str, list[tuple[int, str, str]]] = {}
        self.paren_methods: dict[str, dict[int, str]] = {}
        self._attr_facts: dict[str, list[tuple[int, str, str]]] = {}
        self._attr_types: dict[str, str] | None = None
        self.withs: dict[str, set[tuple[int, int]]] = {}
        for path, v in ctx.facts_of("blocking_io").items():
            if isinstance(v, dict):
                if v.get("eval"):
                    self.iterations[path] = v["eval"]
                if v.get("imports"):
                    self.local_imports[path] = v["imports"]
                if v.get("annotated"):
                    self.annotated[path] = v["annotated"]
                if v.get("paren_methods"):
                    self.paren_methods[path] = dict(v["paren_methods"])
                if v.get("attr_defaults"):
                    self._attr_facts[path] = v["attr_defaults"]
                if v.get("with"):
                    self.withs[path] = set(v["with"])
        self._direct: dict[str, list[Hit]] = {}
        self._variants: dict[str, list[str]] = {}
        self._offload_memo: dict[str, bool] = {}
        self._adapter_memo: dict[tuple[str, ...], bool] = {}
        self._async_decorators: dict[str, bool] = {}
        self._calls: dict[str, list[ResolvedCall]] = {}
        self._request: set[str] | None = None
        self._ranges: dict[str, tuple[list[int], list[FunctionInfo]]] = {}
        self._has_iterables = bool(cat.iterables.patterns())
        self._path_assigns: dict[str, str] | None = None
        self._hooks: set[str] | None = None
        self._sites: _Sites | None = None

    def _uses_django(self) -> bool:
        for s in self.index.summaries.values():
            for ref in s.imports.values():
                if ref.startswith("django"):
                    return True
        return False

    # ----- helpers ----------------------------------------------------------------------------
    @property
    def request_set(self) -> set[str]:
        if self._request is None:
            fw = self.cat.frameworks
            entries = entry_points(self.index, fw, self.sites.registrations) if fw else set()
            self._request = request_path(self.index, entries)
        return self._request

    def _severity(self, rule: str, fn: str) -> str:
        """One step above the rule's default on a request path, the default elsewhere."""
        default = self.ctx.catalog.rule(rule).severity
        if fn not in self.request_set:
            return "medium" if default in ("high", "critical") else default
        return {"low": "medium", "medium": "high"}.get(default, default)

    def variants(self, target: str) -> list[str]:
        """`target` plus forms where a project class instance is replaced by its external bases.

        `shop.api.Client().get` for `class Client(requests.Session)` -> `requests.Session().get`.
        """
        cached = self._variants.get(target)
        if cached is not None:
            return cached
        out = [target]
        if target in self.index.classes:  # constructing a project subclass of an external class
            out.extend(sorted(a for a in self.index.ancestors(target) if a not in self.index.classes))
        elif target[:1] not in ("$",) and not target.startswith("builtins."):
            segs = split_ref(target)
            names: list[str] = []
            for i, seg in enumerate(segs[:-1]):
                name, markers = strip_markers(seg)
                names.append(name)
                key = ".".join(names)
                if key in self.index.classes:
                    if markers == "()":
                        rest = ".".join(segs[i + 1:])
                        for anc in sorted(self.index.ancestors(key)):
                            if anc not in self.index.classes:
                                out.append(f"{anc}().{rest}")
                    break
                if markers:
                    break
        # `super().__init__(...)` of a subclass is the base class's constructor call
        out.extend([v[: -len("().__init__")] for v in out if v.endswith("().__init__")])
        self._variants[target] = out
        return out

    def is_offloader(self, target: str | None) -> bool:
        if not target:
            return False
        memo = self._offload_memo.get(target)
        if memo is None:
            memo = bool(self.cat.offloaders.match(target)) or \
                target.rsplit(".", 1)[-1] in self.cat.offloader_methods
            self._offload_memo[target] = memo
        return memo

    def runs_synchronously(self, info: FunctionInfo) -> bool:
        """A sync project function whose call runs its body right away (not offloaded)."""
        fn = info.summary
        if fn.is_async or fn.qualname == MODULE_SCOPE:
            return False
        for d in fn.decorators:
            target = self.index.resolve(info.module, d.ref) if d.ref else None
            if target and (self.is_offloader(target) or self._wraps_in_coroutine(target)):
                return False
        return True

    def _wraps_in_coroutine(self, decorator: str) -> bool:
        """A project decorator that returns an `async def` wrapper (e.g. one that offloads)."""
        memo = self._async_decorators.get(decorator)
        if memo is None:
            memo = False
            if decorator in self.index.functions:
                prefix = decorator + ".<locals>."
                memo = any(q.startswith(prefix) and i.summary.is_async for q, i in self._nested(decorator))
            self._async_decorators[decorator] = memo
        return memo

    def _nested(self, function: str) -> list[tuple[str, FunctionInfo]]:
        info = self.index.functions[function]
        _, infos = self._functions_of(info.path)
        s = info.summary
        return [(i.qualified, i) for i in infos
                if s.line < i.summary.line <= s.end_line and i.qualified.startswith(function + ".")]

    # ----- call sites, with parameter types filled in ------------------------------------------
    def calls(self, info: FunctionInfo) -> list[ResolvedCall]:
        """`index.calls()`, plus receivers typed only by a parameter annotation the generic
        summary could not use (`svc: .services.NoteService`, `repo: Optional[Repo]`)."""
        q = info.qualified
        cached = self._calls.get(q)
        if cached is not None:
            return cached
        out = shared = self.index.calls(q)
        types: dict[str, str] | None = None
        imported: dict[str, str] = {}
        retyped = self._annotated_locals(info)
        for i, rc in enumerate(out):
            ref = rc.site.ref
            fixed = self._super_or_path(info, rc)
            if fixed is not None:
                if out is shared:
                    out = list(out)
                out[i] = fixed
                continue
            if retyped and ref:
                for prefix, typ in retyped:
                    if ref.startswith(prefix) and ref[len(prefix):len(prefix) + 1] in (".", ""):
                        target = self.index.resolve(info.module, f"{typ}(){ref[len(prefix):]}")
                        if target and target[0] != "$":
                            if out is shared:
                                out = list(out)  # never mutate the index's memoised list
                            out[i] = ResolvedCall(rc.site, target, self.index.functions.get(target))
                        break
                else:
                    prefix = None
                if prefix is not None:
                    continue
            if rc.target is not None and "()." in rc.target and self.attr_types:
                target = self._retype_attribute(rc.target)
                if target is not None:
                    if out is shared:
                        out = list(out)
                    out[i] = ResolvedCall(rc.site, target, self.index.functions.get(target))
                    continue
            if rc.target is None or not ref or ref[0] != "$":
                continue
            if types is None:
                types = self._param_types(info)
                imported = self._imports_in(info)
            if not types and not imported:
                continue
            head, sep, rest = ref[1:].partition(".")
            name, markers = strip_markers(head)
            typ = types.get(name)
            if typ is not None:
                target = self.index.resolve(info.module, f"{typ}(){markers}{sep}{rest}")
            elif name in imported:
                target = self.index.resolve(info.module, f"{imported[name]}{markers}{sep}{rest}")
            else:
                continue
            if target is None or target[0] == "$":
                continue
            fn = self.index.functions.get(target)
            if fn is None and target in self.index.classes:  # constructing it runs __init__
                init = next((f"{c}.__init__" for c in self.index.mro(target)
                             if f"{c}.__init__" in self.index.functions), None)
                fn = self.index.functions.get(init) if init else None
            if out is shared:
                out = list(out)
            out[i] = ResolvedCall(rc.site, target, fn)
        self._calls[q] = out
        return out

    def _super_or_path(self, info: FunctionInfo, rc: ResolvedCall) -> ResolvedCall | None:
        """`super().m()` as the base class method it runs; `DATA_DIR.exists()` with a module-level
        `DATA_DIR = Path(...) / "x"` (which the index cannot type) as a Path method."""
        target = rc.target
        if not target:
            return None
        if target.startswith("builtins.super().") and info.summary.class_qualname and rc.function is None:
            name = target[len("builtins.super()."):]
            if not name.isidentifier():
                return None
            cls = f"{info.module}.{info.summary.class_qualname}"
            for c in self.index.mro(cls)[1:]:
                fn = self.index.functions.get(f"{c}.{name}")
                if fn is not None:
                    return ResolvedCall(rc.site, fn.qualified, fn)
            return None
        if (target == "$cls" or target.startswith("$cls.")) and info.summary.class_qualname \
                and "cls" not in info.summary.bindings and self._is_classmethod(info):
            # `cls(...)` / `cls.other()` in a classmethod: the class itself (subclasses aside)
            new = self.index.resolve(info.module, f"@{info.summary.class_qualname}{target[4:]}")
            if new and new[0] != "$":
                fn = self.index.functions.get(new)
                if fn is None and new in self.index.classes:
                    fn = next((self.index.functions[f"{c}.__init__"] for c in self.index.mro(new)
                               if f"{c}.__init__" in self.index.functions), None)
                return ResolvedCall(rc.site, new, fn)
            return None
        assigns = self.path_assigns
        if not assigns or rc.function is not None or "." not in target or target[0] in "$@":
            return None
        cut = target.find(".")
        while cut > 0:
            typ = assigns.get(target[:cut])
            if typ is not None:
                new = typ + target[cut:]
                return ResolvedCall(rc.site, new, self.index.functions.get(new))
            cut = target.find(".", cut + 1)
        return None

    def _is_classmethod(self, info: FunctionInfo) -> bool:
        return any(d.ref == "builtins.classmethod" for d in info.summary.decorators)

    @property
    def path_assigns(self) -> dict[str, str]:
        """`module.NAME` -> what its left operand is, for module-level `NAME = <ref> / ...`.

        `/` keeps the left operand's type (`Path.__truediv__`); the index does not follow binops.
        """
        if self._path_assigns is None:
            out: dict[str, str] = {}
            for path, summary in self.index.summaries.items():
                module = self.index.module_of.get(path)
                if module is None:
                    continue
                for name, attr in summary.assigns.items():
                    v = attr.value
                    while v[0] == "binop" and v[1] == "Div":
                        v = v[2]
                    if v is attr.value:
                        continue
                    left = self.index.resolve_value(module, v)
                    if left and left[0] != "$":
                        out[f"{module}.{name}"] = left
                for cls in summary.classes.values():
                    self._typed_attributes(module, summary, cls, out)
            for _ in range(3):  # `DATA = BASE / "data"` with `BASE = Path(...) / "x"`
                changed = False
                for k, v in list(out.items()):
                    for cut in [i for i, ch in enumerate(v) if ch in ".("] + [len(v)]:
                        prefix = v[:cut]
                        if prefix != k and prefix in out:
                            out[k] = out[prefix] + v[cut:]
                            changed = True
                            break
                if not changed:
                    break
            self._path_assigns = out
        return self._path_assigns

    def _typed_attributes(self, module: str, summary: Any, cls: Any, out: dict[str, str]) -> None:
        """Attributes the index cannot type: `self.root = Path(root) / "x"` (a binop), and
        `self.root = root` / `self.root = root / "x"` with `root: Path` a parameter of `__init__`."""
        params: dict[str, str] | None = None  # of __init__, built on first need
        for table, suffix in ((cls.attrs, ""), (cls.instance_attrs, "()")):
            for name, attr in table.items():
                v = attr.value
                while v[0] == "binop" and v[1] == "Div":
                    v = v[2]
                if v[0] == "ref" and v[1] and v[1][0] == "$" and table is cls.instance_attrs:
                    if params is None:
                        init = summary.functions.get(f"{cls.qualname}.__init__")
                        params = {p.name: p.annotation for p in init.params if p.annotation} if init is not None else {}
                    head = v[1][1:].split(".", 1)[0]
                    ann = params.get(head)
                    if not ann or head != v[1][1:]:
                        continue
                    base = ann if _PLAIN_REF.match(ann) else _annotation_ref(summary, ann)
                    left = self.index.resolve(module, f"{base}()") if base else None
                elif v is attr.value:
                    continue
                else:
                    left = self.index.resolve_value(module, v)
                if left and left[0] != "$":
                    out[f"{module}.{cls.qualname}{suffix}.{name}"] = left
                    if table is cls.attrs:
                        out[f"{module}.{cls.qualname}().{name}"] = left

    def _typed(self, info: FunctionInfo, ref: str | None) -> str | None:
        """`$param...` with the parameter's annotated type (`p: Path` -> `pathlib.Path()...`)."""
        if not ref or ref[0] != "$":
            return ref
        head, sep, rest = ref[1:].partition(".")
        name, markers = strip_markers(head)
        typ = self._param_types(info).get(name)
        if typ is None:
            return ref
        return self.index.resolve(info.module, f"{typ}(){markers}{sep}{rest}")

    def _partial_wrapped(self, info: FunctionInfo, rc: ResolvedCall) -> str | None:
        """The callable a call of a `functools.partial(f, ...)` object runs (canonical), if any."""
        partials = self.cat.partials
        target = rc.target
        if not partials or not target or not target.endswith("()") or target[:-2] not in partials:
            return None
        site = rc.site
        ref = site.ref or ""
        # a module-level `JOB = functools.partial(f, ...)` (this module or imported)
        if ref and "(" not in ref and ref[0] != "$":
            if ref[0] == "@":
                module, name = info.module, ref[1:]
            else:
                parent, _, name = ref.rpartition(".")
                module = self.index.resolve(info.module, parent) if parent else None
            summary = self.index.module_summary(module) if module else None
            attr = summary.assigns.get(name) if summary is not None else None
            if attr is not None and attr.value[0] == "call" and attr.value[2]:
                return self.index.resolve_value(module, attr.value[2][0]) if module else None
            return None
        # a local `job = functools.partial(f, ...)` or inline `functools.partial(f, ...)()`:
        # the nearest partial() built before this call in the same function
        if not ref.endswith("()") or self.index.resolve(info.module, ref[:-2]) not in partials:
            return None  # e.g. `self.callback()` holding a partial built elsewhere: unknown
        best = None
        for other in info.summary.calls:
            if (other.line, other.col) > (site.line, site.col):
                continue
            if other.ref and other.args and self.index.resolve(info.module, other.ref) in partials \
                    and (best is None or (other.line, other.col) > (best.line, best.col)):
                best = other
        return self.index.resolve_value(info.module, best.args[0]) if best is not None else None

    @property
    def attr_types(self) -> dict[str, str]:
        """`module.Class().attr` -> canonical ref of what `self.attr = given or Ctor()` holds."""
        if self._attr_types is None:
            self._attr_types = {}
            for path, facts in self._attr_facts.items():
                summary = self.index.summaries.get(path)
                module = self.index.module_of.get(path)
                if summary is None or module is None:
                    continue
                for line, attr, ctor in facts:
                    owner = None
                    for cls in summary.classes.values():
                        if cls.line <= line <= cls.end_line and (owner is None or cls.line > owner.line):
                            owner = cls
                    if owner is None:
                        continue
                    known = owner.instance_attrs.get(attr)
                    if known is not None and known.value[0] not in ("?",) and known.value != ("const", None):
                        continue  # the summary typed it already
                    base = _annotation_ref(summary, ctor)
                    target = self.index.resolve(module, f"{base}()") if base else None
                    if target and target[0] != "$":
                        self._attr_types[f"{module}.{owner.qualname}().{attr}"] = target
        return self._attr_types

    def _retype_attribute(self, target: str) -> str | None:
        segs = split_ref(target)
        for i in range(1, len(segs) - 1):
            key = ".".join(segs[: i + 1])
            typ = self.attr_types.get(key)
            if typ is not None:
                rest = segs[i + 1:]
                return self.index.resolve("", ".".join([typ, *rest])) if rest else typ
        return None

    def _annotated_locals(self, info: FunctionInfo) -> list[tuple[str, str]]:
        """(bound value ref, annotated type ref) for `x: T = <value of unknown type>` in `info`."""
        found = self.annotated.get(info.path)
        if not found:
            return []
        s = info.summary
        summary = self.index.summaries.get(info.path)
        out: list[tuple[str, str]] = []
        for line, name, ann in found:
            if not (s.line < line <= s.end_line) or name not in s.bindings or summary is None:
                continue
            bound = s.bindings[name]
            resolved = self.index.resolve(info.module, bound) or ""
            if resolved[:1] != "$" and "[]" not in resolved:
                continue  # the value's own type is known: it wins
            typ = _annotation_ref(summary, ann)
            if typ:
                out.append((bound, typ))
        return out

    def _imports_in(self, info: FunctionInfo) -> dict[str, str]:
        """Names imported inside `info` (or an enclosing function) before use."""
        found = self.local_imports.get(info.path)
        if not found:
            return {}
        s = info.summary
        scopes = [(s.line, s.end_line)]
        parent = s.parent
        while parent:
            outer = self.index.functions.get(f"{info.module}.{parent}")
            if outer is None:
                break
            scopes.append((outer.summary.line, outer.summary.end_line))
            parent = outer.summary.parent
        return {name: ref for line, name, ref in found if any(a <= line <= b for a, b in scopes)}

    def _param_types(self, info: FunctionInfo) -> dict[str, str]:
        bound = info.summary.bindings
        summary = self.index.summaries.get(info.path)
        out: dict[str, str] = {}
        for p in info.summary.params:
            ann = p.annotation
            if p.name in bound or p.name in ("self", "cls"):
                continue
            d = p.default
            if not ann and d and d[0] == "call" and d[1] and d[2] and d[2][0][0] == "ref" and d[2][0][1]:
                # FastAPI dependency injection: `svc=Depends(get_service)` is what get_service returns
                if self.index.resolve(info.module, d[1]) in _DEPENDS:
                    provider = self.index.resolve(info.module, d[2][0][1])
                    if provider in self.index.functions:
                        out[p.name] = d[2][0][1]  # `provider()` below: what it returns
                continue
            if not ann:
                continue
            if _PLAIN_REF.match(ann):
                out[p.name] = ann
                continue
            typ = _annotation_ref(summary, ann) if summary is not None else None
            if typ:
                out[p.name] = typ
        return out

    # ----- direct blocking operations of one function ------------------------------------------
    def direct(self, info: FunctionInfo) -> list[Hit]:
        q = info.qualified
        cached = self._direct.get(q)
        if cached is not None:
            return cached
        hits: list[Hit] = []
        cls = f"{info.module}.{info.summary.class_qualname}" if info.summary.class_qualname else None
        paren = self.paren_methods.get(info.path)
        for rc in self.calls(info):
            site = rc.site
            if site.ref is None and paren and not site.awaited:
                method = paren.get(site.end_line)
                kind = self.cat.unknown_receiver_methods.get(method or "")
                if kind is not None:
                    hits.append(Hit("BA401", site.line, site.col, site.end_line, site.end_col, f"(...).{method}",
                                    kind, "anyio.Path / aiofiles (awaited), or await asyncio.to_thread(...)",
                                    "medium"))
                continue
            if site.awaited or rc.function is not None or not rc.target:
                continue
            target = rc.target
            if target.startswith("builtins.super()") and cls:
                target = f"{cls}()" + target[len("builtins.super()"):]
            if self.is_offloader(target):
                continue
            wrapped = self._partial_wrapped(info, rc)
            if wrapped is not None:
                # calling a `functools.partial(f, ...)` object runs `f` right here
                if wrapped in self.index.functions:
                    continue  # a project function: followed by `_sync_callees`
                target = wrapped
            entry = None
            for v in self.variants(target):
                entry = self.cat.blocking(v)
                if entry is not None:
                    break
            if entry is None and target[0] == "$" and "." in target:
                kind = self.cat.unknown_receiver_methods.get(target.rsplit(".", 1)[1])
                if kind is not None:
                    entry = catalog_model.BlockingEntry(
                        kind, "anyio.Path / aiofiles (awaited), or await asyncio.to_thread(...)", "medium")
                    v = target
            if entry is not None:
                # every blocking call at its own line: `with open(p) as f` and each `f.read()`
                hits.append(Hit(entry.rule, site.line, site.col, site.end_line, site.end_col,
                                _display(v), entry.kind, entry.alternative, entry.confidence))
                continue
            if target in self.cat.file_consumers:
                hit = self._file_argument(info, site, target)
                if hit is not None:
                    hits.append(hit)
                    continue
            if self.orm is not None:
                hit = self.orm.blocking_call(target)
                if hit is not None:
                    hits.append(Hit("BA404", site.line, site.col, site.end_line, site.end_col,
                                    f"{_short(site.ref or target)}()", "database", hit.alternative, hit.confidence))
                    continue
                alt = self.orm.dj.evaluators.get(target)
                if alt and site.args:
                    arg = self.index.resolve_value(info.module, site.args[0])
                    is_qs, sure = self.orm.is_queryset(arg)
                    if is_qs:
                        hits.append(Hit("BA404", site.line, site.col, site.end_line, site.end_col,
                                        f"{_display(target)}({_short(_arg_ref(site.args[0]) or arg or '')})", "database", alt,
                                        "high" if sure else "medium"))
        if self.orm is not None or self._has_iterables:
            hits.extend(self._iterations(info))
        hits.sort(key=lambda h: (h.line, h.col))
        self._direct[q] = hits
        return hits

    def _file_argument(self, info: FunctionInfo, site: Any, target: str) -> Hit | None:
        """`json.load(fh)` with `fh` a real file object: the read happens at this call."""
        for v in list(site.args) + list(site.kwargs.values()):
            ref = _arg_ref(v)
            if not ref:
                continue
            entry = self.cat.iterables.match(self._typed(info, self.index.resolve(info.module, ref)))
            if entry is not None:
                return Hit("BA401", site.line, site.col, site.end_line, site.end_col,
                           f"{_display(target)}({_short(ref)})", entry.kind,
                           "read the content asynchronously (aiofiles / anyio, awaited) and parse the text, "
                           "or await asyncio.to_thread(...)", entry.confidence)
        return None

    def _functions_of(self, path: str) -> tuple[list[int], list[FunctionInfo]]:
        """The functions of one file sorted by position (memoised per file; found through the
        file's summary, not by grouping every function of the project)."""
        got = self._ranges.get(path)
        if got is None:
            index = self.index
            summary = index.summaries.get(path)
            module = index.module_of.get(path)
            infos: list[FunctionInfo] = []
            if summary is not None and module is not None:
                for qual in summary.functions:
                    info = index.functions.get(module if qual == MODULE_SCOPE else f"{module}.{qual}")
                    # (where two files claim one module name, a qualified name is the last file's)
                    if info is not None and info.path == path and info.summary.qualname != MODULE_SCOPE:
                        infos.append(info)
            infos.sort(key=lambda i: (i.summary.line, i.summary.col))  # (no two defs start at one place)
            got = self._ranges[path] = ([i.summary.line for i in infos], infos)
        return got

    def _owner(self, path: str, line: int, col: int, info: FunctionInfo) -> bool:
        """Whether the iteration at (line, col) belongs to `info` itself, not a nested function."""
        starts, infos = self._functions_of(path)
        i = bisect_right(starts, line) - 1
        while i >= 0:
            cand = infos[i]
            s = cand.summary
            if s.line <= line <= s.end_line and not (s.is_lambda and s.line == line and s.col > col):
                return cand.qualified == info.qualified
            i -= 1
        return False

    def _iterations(self, info: FunctionInfo) -> list[Hit]:
        positions = self.iterations.get(info.path)
        if not positions:
            return []
        s = info.summary
        lo = bisect_right(positions, (s.line, -1, "", -2))
        out: list[Hit] = []
        calls_at: dict[tuple[int, int], Any] | None = None
        for line, col, name, end in positions[lo:]:
            if line > s.end_line:
                break
            if calls_at is None:
                calls_at = {}
                for site in s.calls:
                    key = (site.line, site.col)
                    old = calls_at.get(key)
                    if old is None or (site.end_line, site.end_col) > (old.end_line, old.end_col):
                        calls_at[key] = site
            site = calls_at.get((line, col))
            if site is not None:
                if site.awaited or not site.ref or (end >= 0 and (site.end_line, site.end_col) != (line, end)):
                    continue
                ref = self.index.resolve(info.module, site.ref + "()")
                shown = site.ref + "()"
                end_line, end_col = site.end_line, site.end_col
            else:
                if (end >= 0 and end != col + len(name)) or not self._owner(info.path, line, col, info):
                    continue
                head, _, rest = name.partition(".")
                bound = s.bindings.get(head)
                if bound is None:
                    # `for line in sys.stdin`: an imported name (file objects only, not querysets)
                    summary = self.index.summaries.get(info.path)
                    imported = summary.imports.get(head) if summary is not None and head not in \
                        {p.name for p in s.params} else None
                    ref = self.index.resolve(info.module, imported + ("." + rest if rest else "")) if imported else None
                    entry = self.cat.iterables.match(ref) if ref and end < 0 else None
                    if entry is not None:
                        out.append(Hit("BA401", line, col, line, col + len(name), f"for ... in {name}",
                                       entry.kind, entry.alternative, entry.confidence))
                    continue
                ref = self._typed(info, self.index.resolve(info.module, bound + ("." + rest if rest else "")))
                shown = name
                end_line, end_col = line, col + len(name)
            if end < 0 and ref:
                entry = self.cat.iterables.match(ref)
                if entry is not None:  # `for line in f` over a file object: each step reads
                    out.append(Hit("BA401", line, col, end_line, end_col, f"for ... in {_short(shown)}",
                                   entry.kind, entry.alternative, entry.confidence))
                    continue
            if self.orm is None:
                continue
            is_qs, sure = self.orm.is_queryset(ref)
            if is_qs:
                if end < 0:
                    call, alt = f"for ... in {_short(shown)}", "async for obj in queryset"
                else:
                    call, alt = f"if {_short(shown)}:", "await queryset.aexists()"
                out.append(Hit("BA404", line, col, end_line, end_col, call, "database", alt,
                               "high" if sure else "medium"))
        return out

    # ----- transitive reach over sync project functions ----------------------------------------
    def _sync_callees(self, info: FunctionInfo) -> list[tuple[Any, FunctionInfo]]:
        """(call site, sync project function run by it) for the calls of `info`."""
        out = []
        withs = self.withs.get(info.path)
        for rc in self.calls(info):
            site = rc.site
            if site.awaited:
                continue
            if withs and (site.line, site.col) in withs:
                out.extend((site, fn) for fn in self._context_methods(info, rc))
            if rc.target and rc.target in self.index.classes:
                post = self._post_init(rc.target)  # a dataclass's generated __init__ calls it
                if post is not None:
                    out.append((site, post))
            if rc.function is not None:
                if self.runs_synchronously(rc.function):
                    out.append((site, rc.function))
                continue
            wrapped = self._partial_wrapped(info, rc)
            if wrapped is not None:
                fn = self.index.functions.get(wrapped)
                if fn is None and wrapped in self.index.classes:
                    fn = next((self.index.functions[f"{c}.__init__"] for c in self.index.mro(wrapped)
                               if f"{c}.__init__" in self.index.functions), None)
                if fn is not None and self.runs_synchronously(fn):
                    out.append((site, fn))
                continue
            if rc.target and (rc.target in self.cat.sync_callers
                              or rc.target.rsplit(".", 1)[-1] in self.cat.sync_caller_methods):
                for v in site.args:
                    if v[0] == "ref" and v[1]:
                        fn = self.index.functions.get(self.index.resolve(info.module, v[1]) or "")
                        if fn is not None and self.runs_synchronously(fn):
                            out.append((site, fn))
        return out

    def _post_init(self, cls: str) -> FunctionInfo | None:
        for c in self.index.mro(cls):
            for name in ("__post_init__", "__attrs_post_init__"):
                fn = self.index.functions.get(f"{c}.{name}")
                if fn is not None:
                    return fn if self.runs_synchronously(fn) else None
        return None

    def _context_methods(self, info: FunctionInfo, rc: ResolvedCall) -> list[FunctionInfo]:
        """`__enter__`/`__exit__` of the project class a `with X(...)` expression creates."""
        if not rc.site.ref:
            return []
        value = self.index.resolve(info.module, rc.site.ref + "()")
        cls = self.index.class_of_instance(value)
        if cls is None:
            return []
        out = []
        for name in ("__enter__", "__exit__"):
            for c in self.index.mro(cls):
                fn = self.index.functions.get(f"{c}.{name}")
                if fn is not None:
                    if self.runs_synchronously(fn):
                        out.append(fn)
                    break
        return out

    def reach(self, seeds: list[FunctionInfo]) -> dict[str, tuple[Any, str | None, Hit | None]]:
        """For every sync function reachable from `seeds` that blocks: (site, next function, hit).

        `next function` is None when the site itself is the blocking call (`hit`). Shortest chains
        first; cycles and recursion terminate because each function is settled once.
        """
        graph: dict[str, list[tuple[Any, FunctionInfo]]] = {}
        queue = deque(seeds)
        seen = {s.qualified for s in seeds}
        while queue:
            info = queue.popleft()
            edges = self._sync_callees(info)
            graph[info.qualified] = edges
            for _, fn in edges:
                if fn.qualified not in seen:
                    seen.add(fn.qualified)
                    queue.append(fn)
        callers: dict[str, list[tuple[str, Any]]] = {}
        for q, edges in graph.items():
            for site, fn in edges:
                callers.setdefault(fn.qualified, []).append((q, site))
        result: dict[str, tuple[Any, str | None, Hit | None]] = {}
        frontier: deque[str] = deque()
        for q in graph:
            info = self.index.functions[q]
            hits = self.direct(info)
            if hits:
                best = min(hits, key=lambda h: ({"high": 0, "medium": 1, "low": 2}[h.confidence], h.line, h.col))
                result[q] = (None, None, best)
                frontier.append(q)
        while frontier:
            q = frontier.popleft()
            for caller, site in callers.get(q, ()):
                if caller not in result:
                    result[caller] = (site, q, None)
                    frontier.append(caller)
        return result

    def chain(self, start: str, reach: dict[str, tuple[Any, str | None, Hit | None]]) -> tuple[list[str], list[Related], Hit]:
        names: list[str] = []
        related: list[Related] = []
        q: str | None = start
        guard = 0
        while q is not None and guard < 1000:
            guard += 1
            site, nxt, hit = reach[q]
            info = self.index.functions[q]
            names.append(q)
            if hit is not None:
                related.append(Related(info.path, hit.line, f"`{q}` makes the blocking {hit.kind} call `{hit.call}`",
                                       column=hit.col + 1))
                return names, related, hit
            related.append(Related(info.path, site.line, f"`{q}` calls `{nxt}`", column=site.col + 1))
            q = nxt
        raise RuntimeError("broken chain")  # pragma: no cover

    # ----- findings ---------------------------------------------------------------------------
    def findings(self) -> list[Finding]:
        # exceptions propagate: the engine turns them into an "analyzer-error" diagnostic
        out: list[Finding] = list(self._timeouts())
        coroutines = list(self.sites.coroutines)
        coroutines.extend(self.index.functions[q] for q in sorted(self.loop_hooks))
        if coroutines:
            out.extend(self._on_loop(coroutines))
        seen: set[tuple[str, str, int]] = set()
        unique: list[Finding] = []
        for f in out:
            key = (f.rule, f.path, f.line)
            if key not in seen:
                seen.add(key)
                unique.append(f)
        return unique

    @property
    def sites(self) -> _Sites:
        if self._sites is None:
            self._sites = self._scan_sites()
        return self._sites

    def _scan_sites(self) -> _Sites:
        fw = self.cat.frameworks
        # (the same test as `loop_hooks`: without hooks to find, their candidates are not gathered)
        hooks = fw is not None and bool(fw.loop_hook_kwargs or fw.loop_hook_registrations.patterns())
        hook_kwargs = fw.loop_hook_kwargs if hooks else frozenset()  # type: ignore[union-attr]
        found = _Sites([], [], [], [], [])
        add_coroutine, add_decorated = found.coroutines.append, found.hook_decorated.append
        add_http, add_registration, add_hook = found.http.append, found.registrations.append, found.hook_sites.append
        http_names, registration_names = HTTP_NAMES, REGISTRATION_NAMES
        for info in self.index.functions.values():
            s = info.summary
            if s.is_async:
                add_coroutine(info)
            elif hooks:
                for d in s.decorators:
                    if d.is_call and d.ref and d.ref.endswith(".on_event"):
                        add_decorated((info, d))
            for site in s.calls:
                ref = site.ref
                if not ref:
                    continue
                last = ref[ref.rfind(".") + 1:]  # the last segment (the whole ref when it has no dot)
                if last in http_names and ref[0] != "$" and not site.star_kwargs:
                    add_http((info, site))
                if last in registration_names:
                    add_registration((info, site))
                if not hooks:
                    continue
                if last == "add_event_handler" and ref.endswith(".add_event_handler") and len(site.args) >= 2:
                    add_hook((info, site))
                    continue
                kw = site.kwargs
                if kw and not hook_kwargs.isdisjoint(kw):
                    add_hook((info, site))
        return found

    @property
    def loop_hooks(self) -> set[str]:
        """Sync functions a framework calls directly on the loop: Starlette/FastAPI startup and
        shutdown hooks (`on_startup=[init]`, `add_event_handler("startup", init)`,
        `@app.on_event("startup")`), which Starlette calls as `handler()` when not a coroutine."""
        if self._hooks is not None:
            return self._hooks
        self._hooks = out = set()
        fw = self.cat.frameworks
        if fw is None or not (fw.loop_hook_kwargs or fw.loop_hook_registrations.patterns()):
            return out
        index = self.index
        hook_kwargs = tuple(fw.loop_hook_kwargs)

        def add(module: str, value: tuple) -> None:
            values = value[1] if value[0] == "list" else [value]
            for v in values:
                if v[0] == "ref" and v[1]:
                    fn = index.functions.get(index.resolve(module, v[1]) or "")
                    if fn is not None and not fn.summary.is_async and self.runs_synchronously(fn):
                        out.add(fn.qualified)

        # (the result is a set and every check is memoised: the order of the two passes is free)
        for info, d in self.sites.hook_decorated:
            if fw.loop_hook_registrations.match(index.resolve(info.module, d.ref) or "") \
                    and self.runs_synchronously(info):
                out.add(info.qualified)
        for info, site in self.sites.hook_sites:
            ref = site.ref
            if ref.endswith(".add_event_handler") and len(site.args) >= 2:
                if fw.loop_hook_registrations.match(index.resolve(info.module, ref) or ""):
                    add(info.module, site.args[1])
            elif site.kwargs:
                kw = site.kwargs
                keys = [k for k in hook_kwargs if k in kw]
                if keys and fw.loop_hook_calls.match(index.resolve(info.module, ref) or ""):
                    for k in keys:
                        add(info.module, kw[k])
        return out

    def _on_loop(self, coroutines: list[FunctionInfo]) -> list[Finding]:
        ctx = self.ctx
        out: list[Finding] = []
        seeds: dict[str, FunctionInfo] = {}
        for info in coroutines:
            for _, fn in self._sync_callees(info):
                seeds.setdefault(fn.qualified, fn)
        reach = self.reach(list(seeds.values())) if seeds else {}
        for info in coroutines:
            fname = info.qualified
            severity_of = self._severity
            on_path = fname in self.request_set
            what = "coroutine" if info.summary.is_async else "startup/shutdown hook (run on the event loop)"
            for hit in self.direct(info):
                context = {"call": hit.call, "kind": hit.kind, "alternative": hit.alternative,
                           "chain": [], "request_path": on_path, "function": fname}
                if hit.rule == "BA404":
                    msg = (f"Synchronous Django database operation `{hit.call}` in {what} `{info.summary.qualname}`: "
                           f"it blocks the event loop (Django raises SynchronousOnlyOperation); use {hit.alternative}")
                else:
                    msg = (f"Blocking {hit.kind} call `{hit.call}` in {what} `{info.summary.qualname}` stalls "
                           f"the event loop; use {hit.alternative}")
                out.append(ctx.finding(hit.rule, info.path, hit.line, hit.col, hit.end_line, hit.end_col, msg,
                                       severity=severity_of(hit.rule, fname), confidence=hit.confidence,
                                       symbol=info.summary.qualname, context=context))
            for site, fn in self._sync_callees(info):
                if fn.qualified not in reach:
                    continue
                names, related, hit = self.chain(fn.qualified, reach)
                depth = len(names)
                context = {"call": hit.call, "kind": hit.kind, "alternative": hit.alternative,
                           "chain": names + [hit.call], "request_path": on_path, "function": fname}
                steps = " -> ".join(f"`{n.rsplit('.', 1)[-1] if '<' not in n else n}`" for n in names)
                msg = (f"{what[0].upper()}{what[1:]} `{info.summary.qualname}` calls sync `{fn.qualified}`, which reaches the blocking "
                       f"{hit.kind} call `{hit.call}` ({depth} call{'s' if depth > 1 else ''} deep: {steps}); "
                       f"offload it with asyncio.to_thread or use {hit.alternative}")
                # the chain as an ordered flow (SARIF codeFlows): the call on the loop, then each step
                flow = [Related(info.path, site.line, f"`{info.summary.qualname}` (on the event loop) calls "
                                f"`{fn.qualified}`", column=site.col + 1), *related]
                out.append(ctx.finding("BA402", info.path, site.line, site.col, site.end_line, site.end_col, msg,
                                       severity=severity_of("BA402", fname), confidence=hit.confidence,
                                       related=related, flow=flow, symbol=info.summary.qualname, context=context))
        return out


def _annotation_ref(summary: Any, ann: str) -> str | None:
    """The module-relative ref of the one class an annotation's source text names, if any."""
    names = [n for n in _IDENT.findall(ann) if n.split(".")[-1] not in _TYPING_NAMES]
    if ann.startswith(("Annotated[", "typing.Annotated[", "typing_extensions.Annotated[")):
        names = names[:1]  # Annotated[Service, Depends(...)]: the type comes first
    if len(names) != 1:
        return None
    head, _, rest = names[0].partition(".")
    if head in summary.imports:
        base = summary.imports[head]
    elif head in summary.classes or head in summary.assigns:
        base = f"@{head}"
    else:
        return None
    return f"{base}.{rest}" if rest else base


def _arg_ref(value: tuple) -> str | None:
    if value[0] == "ref":
        return value[1]
    if value[0] == "call" and value[1]:
        return value[1] + "()"
    return None


def _short(ref: str) -> str:
    """A readable form of a ref for messages: `Book.objects.filter().first`."""
    ref = ref.lstrip(".@")
    ref = ref.removeprefix("builtins.")
    segs = split_ref(ref)
    for i, seg in enumerate(segs):
        if seg[:1].isupper():
            return ".".join(segs[i:])
    return ".".join(segs[-3:]) if len(segs) > 3 else ref
