"""Link the per-function taint summaries across modules and find source -> sink flows.

Each function's summary (memoised, computed once; recursion cut at the cycle) says, in terms of
its own parameters:

* `ret`    which parameters (or parameter attributes) and which concrete sources reach its return
* `psinks` which parameters reach which sinks (in it or in functions it calls)

A call to a project function substitutes the caller's argument values into the callee summary;
concrete sources that reach a sink become findings at the sink. Handler parameters (Flask route
variables, FastAPI parameters, Django URL kwargs) become sources in the handler itself, after
the framework's own validation (converters, type annotations) is taken into account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from operator import methodcaller
from typing import Any

from backend_audit.analyzers.unvalidated_input.collect import (
    CallFact,
    FuncFacts,
    name_is_class,
)
from backend_audit.analyzers.unvalidated_input.models import Sink, TaintModels
from backend_audit.index.project import FunctionInfo, ProjectIndex
from backend_audit.parsing.summary import MODULE_SCOPE, Param

NUM = 1  # flavor bit: the data was converted to a number
TAIL = 2  # flavor bit: the data follows a fixed URL prefix (path, query) in the string
KEYS = 4  # flavor bit: data in a mapping whose keys the code chose (keyword arguments)
TAIL_SAFE = frozenset(("redirect", "ssrf"))
Step = tuple[str, int, int, str]  # (path, line, col, message)
Atom = tuple[str, Any, int]  # ("S", (function, source id), flavor bits) | ("P", "param[.attr]", flavor bits)
Value = dict  # Atom -> tuple[Step, ...]

MAX_STEPS = 14
MAX_DEPTH = 60
MAX_PSINKS = 48
_FLASK_VAR = re.compile(r"<(?:([a-zA-Z_][\w]*)(?:\([^)]*\))?:)?([a-zA-Z_]\w*)>")
_DJANGO_VAR = re.compile(r"<(?:(\w+):)?(\w+)>")
_HTTP_METHODS = frozenset(("get", "post", "put", "patch", "delete", "head", "options"))
_RE_GROUP = re.compile(r"\(\?P<(\w+)>((?:[^()\\]|\\.)*)\)")
_STARTS_WITH_DJANGO = methodcaller("startswith", "django")


@dataclass
class Flow:
    kind: str
    sink: Step
    sink_end: tuple[int, int]
    sink_text: str
    function: str
    source: str
    steps: tuple[Step, ...]
    #: first steps of other flows that reach the same sink (other sources or callers)
    others: list[Step] = field(default_factory=list)


@dataclass
class Summary:
    ret: Value = field(default_factory=dict)
    ret_items: list[Value] | None = None
    #: self.x -> the concrete sources stored there by this method
    attr_values: dict[str, Value] = field(default_factory=dict)
    #: self.x -> everything stored there, parameters included (for constructors)
    attr_sym: dict[str, Value] = field(default_factory=dict)
    #: (sink kind, sink step, sink end (line, col), sink text, function, atom key, numeric, steps from the param)
    psinks: list[tuple] = field(default_factory=list)
    #: parameters every true return of this predicate has tested (`return value in SORTS`)
    tests: frozenset[str] = frozenset()


EMPTY_SUMMARY = Summary()


_UNSET = object()


class _Frame:
    """The state of one function's summary computation (a plain slotted class: one per function)."""

    __slots__ = ("q", "info", "facts", "callvals", "busy", "psinks", "handler", "items", "targets", "attrs")

    def __init__(self, q: str, info: FunctionInfo, facts: FuncFacts, targets: list[str | None]):
        self.q = q
        self.info = info
        self.facts = facts
        self.callvals: dict[int, Value] = {}
        self.busy: set[int] = set()
        self.psinks: list[tuple] = []
        #: `Solver.handler_params(info)`, computed on the first parameter atom (`Solver.frame_handler`)
        self.handler: dict[str, Any] | None | object = _UNSET
        #: call index -> {tuple element -> value} for calls of functions returning tuples
        self.items: dict[Any, Any] = {}
        #: call index -> the callee's canonical ref (`Solver.call_targets`)
        self.targets = targets
        #: `Solver.attr_value` of this function, by attribute
        self.attrs: dict[str, Value] = {}


class Solver:
    def __init__(self, index: ProjectIndex, facts: dict[str, dict[str, FuncFacts]], models: TaintModels):
        self.index = index
        self.m = models
        self.facts: dict[str, tuple[FunctionInfo, FuncFacts]] = {}
        #: (module, registry stores) of every file, resolved on the first registry call
        self._stores: list[tuple[str, dict]] = []
        self._registry: dict[tuple[str, str, str], set[str]] | None = None
        for path, per_file in facts.items():
            module = index.module_of.get(path)
            if module is None or not isinstance(per_file, dict):
                continue
            for qual, ff in per_file.items():
                if ff.registry:
                    self._stores.append((module, ff.registry))
                q = module if qual == MODULE_SCOPE else f"{module}.{qual}"
                info = index.functions.get(q)
                if info is not None:
                    self.facts[q] = (info, ff)
        self.memo: dict[str, Summary] = {}
        self.stack: set[str] = set()
        self.flows: dict[tuple, Flow] = {}
        self._urls: dict[str, dict[str, str]] | None = None
        self._handlers: dict[str, dict[str, Any] | None] = {}
        self._deps: set[str] | None = None
        self._mro: dict[str, list[str]] = {}
        self._inits: dict[str, str | None] = {}
        self._db_recv: dict[tuple, bool] = {}
        self._parsed: dict[str, tuple] = {}  # atom text -> _parse_atom(atom text)
        self._writers: dict[str, list[tuple[str, tuple[FunctionInfo, FuncFacts]]]] = {}
        self._targets: dict[str, list[str | None]] = {}
        self._signatures: dict[str, tuple[str | None, list[str], str | None, str | None, set[str]]] = {}

    # ----- driver ----------------------------------------------------------------------------
    def call_targets(self, q: str) -> list[str | None]:
        """The canonical ref each call of `q` targets (None for no ref or a `<...>` pseudo-ref);
        resolved once for `order()` and again read by `_call` (memoised)."""
        got = self._targets.get(q)
        if got is None:
            info, ff = self.facts[q]
            resolve, module = self.index.resolve, info.module
            got = self._targets[q] = []
            for c in ff.calls:
                ref = c.ref
                got.append(resolve(module, ref) if ref and ref[0] != "<" else None)
        return got

    def order(self) -> list[str]:
        """Functions callees-first (iterative post-order over the call graph), so that computing
        a summary rarely recurses: deep call chains are linked in full, not cut at MAX_DEPTH."""
        callees: dict[str, list[str]] = {}
        facts, classes = self.facts, self.index.classes
        for q in facts:
            out = []
            for t in self.call_targets(q):
                if t in facts:
                    out.append(t)
                elif t in classes:
                    init = self.init_of(t)
                    if init and init in facts:
                        out.append(init)
            callees[q] = out
        seen: set[str] = set()
        order: list[str] = []
        for root in sorted(self.facts):
            if root in seen:
                continue
            seen.add(root)
            stack = [(root, iter(callees[root]))]
            while stack:
                node, it = stack[-1]
                for nxt in it:  # the next callee not seen yet (consumed from the iterator)
                    if nxt not in seen:
                        break
                else:
                    stack.pop()
                    order.append(node)
                    continue
                seen.add(nxt)
                stack.append((nxt, iter(callees.get(nxt, ()))))
        return order

    def run(self) -> list[Flow]:
        memo = self.memo
        for q in self.order():
            if q in memo:  # already summarised for a caller
                continue
            try:
                self.summary(q)
            except RecursionError:
                self.stack.clear()  # a pathological call chain: skip it, keep the rest
        return self.partial()

    def partial(self) -> list[Flow]:
        return [self.flows[k] for k in sorted(self.flows, key=lambda k: (k[1], k[2], k[3], k[0]))]

    def summary(self, q: str) -> Summary:
        done = self.memo.get(q)
        if done is not None:
            return done
        entry = self.facts.get(q)
        if entry is None:
            return EMPTY_SUMMARY
        if q in self.stack or len(self.stack) > MAX_DEPTH:
            return EMPTY_SUMMARY  # recursion: the cycle contributes what is known so far (nothing)
        self.stack.add(q)
        try:
            info, ff = entry
            fr = _Frame(q, info, ff, self.call_targets(q))
            callvals, busy, calls = fr.callvals, fr.busy, ff.calls
            for j in range(len(calls)):
                if j not in callvals:  # (else already computed for a later call's argument)
                    # `call_value(fr, j)`, inlined: nothing of this frame is being computed here
                    busy.add(j)
                    try:
                        value = self._call(fr, calls[j], j)
                    finally:
                        busy.discard(j)
                    callvals[j] = value
            ret = self.resolve(fr, ff.ret)
            items = [self.resolve(fr, a) for a in ff.ret_items] if ff.ret_items else None
            result = Summary(ret=ret, ret_items=items, psinks=fr.psinks[:MAX_PSINKS])
            if ff.predicate:
                # tested: nothing of the parameter itself is left where the function returns true
                result.tests = frozenset(
                    p for p, atoms in ff.predicate.items()
                    if not any(a[0] == "P" and a[1].split(".", 1)[0] == p for a in self.resolve(fr, atoms)))
            if ff.attr_writes:
                for attr, atoms in ff.attr_writes.items():
                    full = self.resolve(fr, atoms)
                    result.attr_sym[attr] = full
                    v = {a: s for a, s in full.items() if a[0] == "S"}
                    if v:
                        result.attr_values[attr] = v
        finally:
            self.stack.discard(q)
        self.memo[q] = result
        return result

    # ----- values ----------------------------------------------------------------------------
    def resolve(self, fr: _Frame, atoms: frozenset[str] | tuple[str]) -> Value:
        out: Value = {}
        if not atoms:  # most argument slots hold nothing of interest
            return out
        parsed = self._parsed
        for a in sorted(atoms) if len(atoms) > 1 else atoms:  # sorted: the same flow on every run
            p = parsed.get(a)
            if p is None:
                p = parsed[a] = _parse_atom(a)
            # flavor bits: NUM (converted to a number), TAIL (after a fixed URL prefix)
            num, kind, key, j = p
            if kind == "p":  # (the branches in order of frequency)
                handler = fr.handler
                if handler is _UNSET:
                    handler = self.frame_handler(fr)
                if handler is not None:
                    got = self.handler_source(fr, key)
                    if got is not None:
                        if got == "clean":
                            continue
                        if got[0] == "value":
                            for atom, steps in got[1].items():
                                _add(out, (atom[0], atom[1], atom[2] | num), steps)
                            continue
                        flavor, desc, line = got
                        atom = ("S", (fr.q, "param:" + key), num | (NUM if flavor == "num" else 0))
                        _add(out, atom, ((fr.info.path, line, 0, f"source: {desc}"),))
                        continue
                atom = ("P", key, num)
                if out.get(atom, True):  # `_add(out, atom, ())`: absent, or reached with steps (longer)
                    out[atom] = ()
            elif kind == "r":
                value = fr.callvals.get(j)  # (`call_value`'s own first look-up)
                if value is None:
                    value = self.call_value(fr, j)
                if key is not None:  # `r:<j>#<item>`: one element of a returned tuple
                    value = fr.items.get(j, {}).get(key, value)
                for atom, steps in value.items():
                    if num & ~atom[2]:
                        atom = (atom[0], atom[1], atom[2] | num)
                    old = out.get(atom)  # `_add(out, atom, steps)`, inlined: a hot loop
                    if old is None or len(steps) < len(old):
                        out[atom] = steps
            elif kind == "a":
                for atom, steps in self.attr_value(fr, key).items():
                    _add(out, (atom[0], atom[1], atom[2] | num), steps)
                params = fr.info.summary.params
                if params:  # what the caller's instance holds: bound to the receiver at each call
                    _add(out, ("P", f"{params[0].name}.{key}", num), ())
            elif kind == "g" or kind == "q":  # data after a call that may have validated it (q: tested it)
                slot, rest = key
                if not self.validated(fr, j, slot, kind == "q"):
                    for atom, steps in self.resolve(fr, (rest,)).items():
                        _add(out, (atom[0], atom[1], atom[2] | num), steps)
            elif kind == "s":
                desc, line, col, skey = fr.facts.sources[j]
                flavor = self.source_flavor(fr, skey)
                if flavor is None:
                    continue
                atom = ("S", (fr.q, j), num | (NUM if flavor == "num" else 0))
                _add(out, atom, ((fr.info.path, line, col, f"source: {desc}"),))
        return out

    def validated(self, fr: _Frame, j: int, slot: str, predicate: bool = False) -> bool:
        """Does call j (a statement `check(x)`) validate the argument in `slot` (position or keyword)?
        With `predicate`: is call j (an `if` test) a sanitizing test of that argument? Judged by the
        callee's body when it is in the project, else by its name (`is_safe_url`, `validate_*`)."""
        call = fr.facts.calls[j]
        ref = call.ref
        # (`fr.targets` holds the resolved ref, except for the `<...>` pseudo-refs it leaves out)
        target = (fr.targets[j] if ref[0] != "<" else self.index.resolve(fr.info.module, ref)) if ref else None
        entry = self.facts.get(target) if target else None
        if predicate:
            if target not in self.index.functions:
                name = (call.ref or "").rsplit(".", 1)[-1].lstrip("@$")
                return slot in ("0", "url", "value", "target", "path", "name") and bool(self.m.guard_name.search(name))
            if entry is None or not entry[1].predicate:
                return False
            tests = self.summary(target).tests
            if not tests:
                return False
            return self._param_name(entry[0], slot) in tests
        if entry is None or not entry[1].validates:
            return False
        return self._param_name(entry[0], slot) in entry[1].validates

    @staticmethod
    def _param_name(fn: FunctionInfo, slot: str) -> str | None:
        """The parameter an argument slot (position after `self`, or keyword) binds."""
        if not slot.isdigit():
            return slot
        params = fn.summary.params
        deco = {d.ref for d in fn.summary.decorators}
        offset = 1 if fn.summary.class_qualname and params and "builtins.staticmethod" not in deco else 0
        positional = [p for p in params if p.kind in ("posonly", "arg")][offset:]
        i = int(slot)
        return positional[i].name if i < len(positional) else None

    def attr_value(self, fr: _Frame, attr: str) -> Value:
        """What the methods of the function's class store in `self.<attr>` (concrete sources only)."""
        cq = fr.info.summary.class_qualname
        if not cq:
            return {}
        # Memoised per frame (callers only read it): while this function is computed, the summary
        # stack under it stays the same, so asking again could only find the same summaries.
        out = fr.attrs.get(attr)
        if out is not None:
            return out
        out = {}
        for c in self.mro(f"{fr.info.module}.{cq}"):
            for q, entry in self._attr_writers(c):
                if q == fr.q or attr not in entry[1].attr_writes:
                    continue
                for atom, steps in self.summary(q).attr_values.get(attr, {}).items():
                    _add(out, atom, steps + ((entry[0].path, entry[0].summary.line, 0, f"stored in self.{attr}"),))
        fr.attrs[attr] = out
        return out

    def _attr_writers(self, cls: str) -> list[tuple[str, tuple[FunctionInfo, FuncFacts]]]:
        """The methods of project class `cls` (in declaration order) that store `self.<x>` (memoised)."""
        got = self._writers.get(cls)
        if got is None:
            cinfo = self.index.classes[cls]
            got = []
            for mq in cinfo.summary.methods:
                q = f"{cinfo.module}.{mq}"
                entry = self.facts.get(q)
                if entry is not None and entry[1].attr_writes:
                    got.append((q, entry))
            self._writers[cls] = got
        return got

    def call_value(self, fr: _Frame, j: int) -> Value:
        got = fr.callvals.get(j)
        if got is not None:
            return got
        if j in fr.busy:
            return {}
        fr.busy.add(j)
        try:
            value = self._call(fr, fr.facts.calls[j], j)
        finally:
            fr.busy.discard(j)
        fr.callvals[j] = value
        return value

    def _call(self, fr: _Frame, call: CallFact, j: int) -> Value:
        resolve = self.resolve
        # an empty slot resolves to an empty value: skip the call (most slots are empty)
        args = [resolve(fr, a) if a else {} for a in call.args]
        kwargs = {k: resolve(fr, v) if v else {} for k, v in call.kwargs.items()} if call.kwargs else {}
        star = resolve(fr, call.star) if call.star else {}
        recv = resolve(fr, call.recv) if call.recv else {}
        ref = call.ref
        m = self.m
        reg = call.hints.get("registry") if call.hints else None
        if reg is not None:
            got = self.registry_call(fr, call, reg, args, kwargs, star)
            if got is not None:
                return got
        if ref and ref[0] == "<":
            for sink in m.sinks_by_ref.get(ref, ()):
                self.check_sink(fr, call, sink, args, kwargs, star, recv, ref)
            return {}
        index = self.index
        target = fr.targets[j]
        fn = index.functions.get(target) if target else None
        cls = target if target and fn is None and target in index.classes else None
        if cls is not None:
            init = self.init_of(cls)
            if init:
                fn = self.index.functions.get(init)
            if self.is_orm_model(cls):
                for sink in self.m.sinks_by_ref.get("<model>", ()):
                    self.check_sink(fr, call, sink, args, kwargs, star, recv, target)
        if fn is not None and fn.qualified in self.facts or (fn is not None and cls is None):
            fields = None
            if call.hints.get("self_recv") and fr.info.summary.params:
                recv = {("P", fr.info.summary.params[0].name, 0): ()}
            elif len(call.recv) == 1 and cls is None:
                fields = self.instance_fields(fr, next(iter(call.recv)))
            value = self.link(fr, call, fn, args, kwargs, star, recv, fields)
            callee = self.memo.get(fn.qualified)
            if callee is not None and callee.ret_items and cls is None:
                fr.items[j] = {i: self._relink(fr, call, fn, v, args, kwargs, star, recv)
                               for i, v in enumerate(callee.ret_items)}
            if cls is not None:
                return _join(args + list(kwargs.values()))
            return value
        if cls is not None:
            return _join(args + list(kwargs.values()))
        # an external callee: sinks, sanitizers, propagation
        meth = ref[ref.rfind(".") + 1:] if ref and "." in ref else None  # the last segment
        by_ref = m.sinks_by_ref.get(target or "")
        sinks = list(by_ref) if by_ref else []
        by_method = m.sinks_by_method.get(meth) if meth is not None else None
        if by_method:
            for sink in by_method:
                if sink.receiver:
                    hay = f"{call.recv_ref} {target or ''}"
                    if not any(h in hay for h in sink.receiver):
                        continue
                if sink.when == "db_receiver" and not self.db_receiver(fr, call, target, meth, bool(sink.receiver)):
                    continue
                sinks.append(sink)
        for sink in sinks:
            self.check_sink(fr, call, sink, args, kwargs, star, recv, target)
        if target in m.source_calls:  # e.g. a module-level reqparse parser's parse_args()
            return {("S", (fr.q, f"call:{j}"), 0): ((fr.info.path, call.line, call.col, f"source: {call.text}()"),)}
        if target in m.consuming_sinks:
            return {}  # the value built by a sink (text(), RawSQL, Template) was reported there
        if target in m.clean_calls:
            return {}
        if target in m.numeric_calls:
            return {(a[0], a[1], a[2] | NUM): s for a, s in _join(args).items()}
        if meth in m.clean_methods and recv is not None and (call.recv or call.recv_ref.startswith(("$", "@"))):
            return {}
        if name_is_class(ref):
            return _join([recv, *args, *kwargs.values(), star])
        return _join([recv, *args])

    # ----- database receivers ----------------------------------------------------------------
    def db_receiver(self, fr: _Frame, call: CallFact, target: str | None, meth: str, named: bool) -> bool:
        """Is the receiver of `x.execute(sql)` a database object? By its resolved type first
        (`db_type`); an unknown type by its name or origin (`cur`, `$conn.cursor()`), unless the
        sink has its own receiver list (`named`: already matched)."""
        key = (fr.info.module, call.recv_ref, target)
        got = self._db_recv.get(key)
        if got is None:
            ref_text, _, local = call.recv_ref.partition(" ")
            recv = target[: -len(meth) - 1] if target and target.endswith("." + meth) else None
            if (recv is None or recv[0] == "$") and ref_text and ref_text[0] != "$":
                recv = self.index.resolve(fr.info.module, ref_text)
            verdict = self.db_type(recv or ref_text)
            if verdict is None:
                verdict = named or self.m.db_name(_receiver_name(recv or ref_text) + " " + local)
            got = self._db_recv[key] = verdict
        return got

    def db_type(self, ref: str | None) -> bool | None:
        """True: a database object (a ref inside a `db_modules` library, or an instance of a
        project class with such a base); False: a known type that is not one (a project class
        without such a base, an instance of another library's class); None: unknown."""
        if not ref or ref[0] == "$":
            return None
        if self.m.is_db_ref(ref):
            return True
        if not ref.endswith("()"):
            return None
        base = ref[:-2]
        if base in self.index.classes:
            return any(self.m.is_db_ref(a) for a in self.index.ancestors(base))
        if "(" not in base and name_is_class(base) and not self._in_project(base):
            return False  # `paypalhttp.HttpClient()`, `requests.Session()`: another library's object
        return None

    def _in_project(self, ref: str) -> bool:
        parts = ref.split(".")
        return any(".".join(parts[:i]) in self.index.path_of for i in range(1, len(parts)))

    # ----- application registries ------------------------------------------------------------
    def registry_call(self, fr: _Frame, call: CallFact, reg: tuple, args: list[Value], kwargs: dict[str, Value],
                      star: Value) -> Value | None:
        """`request.app["repo"].search(term, sort)`: link the method of the class the application
        stored under that key. None when no project class is stored there (a driver's pool, an
        unknown key): the call is then an ordinary external call (its own sinks still count)."""
        ns, kind, key, meth = reg
        classes = self.registry_classes(fr.info.module, (ns, kind, key))
        if not classes:
            return None
        out: Value = {}
        linked = False
        for cls in sorted(classes):
            member = self.index._member("instance", cls, meth, 0)
            if not member or member[1] != "function":
                continue
            fn = self.index.functions.get(member[0])
            if fn is None:
                continue
            linked = True
            for a, st in self.link(fr, call, fn, args, kwargs, star, {}, {}).items():
                _add(out, a, st)
        return out if linked else None

    def registry_key(self, module: str, key: tuple[str, str, str]) -> tuple[str, str, str]:
        """A key object (`REPO_KEY`, `keys.REPO`) by where it is defined, not by its value."""
        ns, kind, text = key
        if kind != "r":
            return key
        if text.startswith("@"):
            return (ns, kind, f"{module}.{text[1:]}")
        absolute = self.index._absolute(module, text)
        mod, _, name = absolute.rpartition(".")
        return (ns, kind, f"{self.index.canonical_module(mod) if mod in self.index.path_of else mod}.{name}")

    def registry_classes(self, module: str, key: tuple[str, str, str]) -> set[str]:
        if self._registry is None:
            self._registry = {}
            for mod, stores in self._stores:
                for k, ref in stores.items():
                    cls = self.stored_class(mod, ref)
                    if cls:
                        self._registry.setdefault(self.registry_key(mod, k), set()).add(cls)
        k = self.registry_key(module, key)
        found = self._registry.get(k)
        if found:
            return found
        if k[1] == "r":
            # aiohttp `REPO_KEY = web.AppKey("repo", ItemRepository)`: the key names the type
            mod, _, name = k[2].rpartition(".")
            summary = self.index.module_summary(mod)
            a = summary.assigns.get(name) if summary is not None else None
            if a is not None and a.value[0] == "call" and len(a.value[2]) >= 2 and a.value[2][1][0] == "ref" \
                    and a.value[2][1][1]:
                cls = self.index.resolve(mod, a.value[2][1][1])
                if cls in self.index.classes:
                    return {cls}
        return set()

    def stored_class(self, module: str, ref: str) -> str | None:
        """`Repo(...)` / a local bound to one / `self` -> the project class; `Repo.create(...)`
        (a classmethod factory) -> Repo. None for anything else."""
        r = self.index.resolve(module, ref)
        if not r or not r.endswith("()"):
            return None
        base = r[:-2]
        if base in self.index.classes:
            return base
        fn = self.index.functions.get(base)
        if fn is None:
            return None
        if fn.summary.class_qualname and any((d.ref or "").endswith("classmethod") for d in fn.summary.decorators):
            cls = f"{fn.module}.{fn.summary.class_qualname}"
            return cls if cls in self.index.classes else None
        # a factory (`await connect()`) whose every return builds the same project class
        found = set()
        for v in fn.summary.returns:
            if v[0] != "call" or not v[1]:
                return None
            found.add(self.index.resolve(fn.module, v[1]))
        if len(found) == 1:
            cls = found.pop()
            return cls if cls in self.index.classes else None
        return None

    def instance_fields(self, fr: _Frame, atom: str) -> dict[str, Value] | None:
        """For a receiver built by `Cls(...)` in this function: what its `__init__` stored in
        each `self.x`, from the constructor's arguments (so `self.table = "t"` stays clean even
        when another argument is client data). None when the receiver is something else."""
        if not atom.startswith("r:") or "#" in atom:
            return None
        k = int(atom[2:])
        key = ("fields", k)
        if key in fr.items:
            return fr.items[key]
        fr.items[key] = None  # type: ignore[assignment]
        ctor = fr.facts.calls[k]
        target = fr.targets[k]  # (resolved as `order()` did: None for no ref or a `<...>` pseudo-ref)
        if target not in self.index.classes:
            return None
        init = self.init_of(target)
        if not init or init not in self.facts:
            return None
        fn = self.index.functions[init]
        binding = self.bind(fn, [self.resolve(fr, a) for a in ctor.args],
                            {n: self.resolve(fr, v) for n, v in ctor.kwargs.items()},
                            self.resolve(fr, ctor.star) if ctor.star else {})
        out: dict[str, Value] = {}
        for attr, value in self.summary(init).attr_sym.items():
            got: Value = {}
            for a, st in value.items():
                if a[0] == "S":
                    _add(got, a, st)
                else:
                    for a2, s2 in self.substitute(a, binding).items():
                        _add(got, a2, s2)
            out[attr] = got
        fr.items[key] = out  # type: ignore[assignment]
        return out

    def link(self, fr: _Frame, call: CallFact, fn: FunctionInfo, args: list[Value], kwargs: dict[str, Value],
             star: Value, recv: Value | None = None, fields: dict[str, Value] | None = None) -> Value:
        callee = self.memo.get(fn.qualified) or self.summary(fn.qualified)  # (a summary is never false)
        if not callee.ret and not callee.psinks:
            return {}
        binding = self.bind(fn, args, kwargs, star, recv)
        closure = call.hints.get("closure")
        if closure:  # a nested function: the enclosing variables it reads, as they are here
            for name, atoms in closure.items():
                binding.setdefault(name, self.resolve(fr, atoms))
        if fields is not None and fn.summary.params:
            me = fn.summary.params[0].name
            binding[f"{me}.*"] = {}  # attribute reads of the receiver are exact
            for attr, v in fields.items():
                binding[f"{me}.{attr}"] = v
        name = fn.summary.qualname.replace(".<locals>.", ".")
        out: Value = {}
        if callee.ret:
            returned = ((fr.info.path, call.line, call.col, f"returned by {name}()"),)  # the step added
            for atom, steps in callee.ret.items():
                if atom[0] == "S":
                    _add(out, atom, steps + returned)
                    continue
                for a2, s2 in self.substitute(atom, binding).items():
                    _add(out, a2, s2 + returned)
        for kind, sink, end, text, func, key, num, steps in callee.psinks:
            for a2, s2 in self.substitute(("P", key, num), binding).items():
                hop = (fr.info.path, call.line, call.col, f"passed to {name}() as {key}")
                self.reach(fr, kind, sink, end, text, func, a2, s2 + (hop,) + steps)
        return out

    def _relink(self, fr: _Frame, call: CallFact, fn: FunctionInfo, ret: Value, args, kwargs, star,
                recv: Value | None = None) -> Value:
        binding = self.bind(fn, args, kwargs, star, recv)
        name = fn.summary.qualname.replace(".<locals>.", ".")
        step = (fr.info.path, call.line, call.col, f"returned by {name}()")
        out: Value = {}
        for atom, steps in ret.items():
            if atom[0] == "S":
                _add(out, atom, steps + (step,))
            else:
                for a2, s2 in self.substitute(atom, binding).items():
                    _add(out, a2, s2 + (step,))
        return out

    def bind(self, fn: FunctionInfo, args: list[Value], kwargs: dict[str, Value], star: Value,
             recv: Value | None = None) -> dict[str, Value]:
        receiver, positional, vararg, kwarg, names = self._signature(fn)
        out: dict[str, Value] = {}
        if receiver is not None and recv:
            out[receiver] = recv  # `self` of a method called on an instance
        for i, a in enumerate(args):
            if i < len(positional):
                out[positional[i]] = a
            elif vararg:
                out[vararg] = _join([out.get(vararg, {}), a])
        for k, v in kwargs.items():
            if k in names:
                out[k] = v
            elif kwarg:  # `f(name=x)` into `def f(**fields)`: the code chose the keys
                out[kwarg] = _join([out.get(kwarg, {}), {(a[0], a[1], a[2] | KEYS): s for a, s in v.items()}])
        if star:
            for n in names:
                if n not in out:
                    out[n] = star
        return out

    def _signature(self, fn: FunctionInfo) -> tuple[str | None, list[str], str | None, str | None, set[str]]:
        """How `bind` maps arguments onto `fn`'s parameters (memoised per function): the receiver
        parameter of a method (`self`), the positional parameter names after it, the `*args` and
        `**kwargs` names, and every parameter name after the receiver."""
        got = self._signatures.get(fn.qualified)
        if got is None:
            params: list[Param] = fn.summary.params
            deco = {d.ref for d in fn.summary.decorators}
            offset = 1 if fn.summary.class_qualname and params and "builtins.staticmethod" not in deco \
                and params[0].kind in ("posonly", "arg") else 0
            got = self._signatures[fn.qualified] = (
                params[0].name if offset else None,
                [p.name for p in params if p.kind in ("posonly", "arg")][offset:],
                next((p.name for p in params if p.kind == "vararg"), None),
                next((p.name for p in params if p.kind == "kwarg"), None),
                {p.name for p in params[offset:]})
        return got

    def substitute(self, atom: Atom, binding: dict[str, Value]) -> Value:
        key = atom[1]
        param, dot, attr = key.partition(".")
        if dot and f"{param}.*" in binding:
            value = binding.get(f"{param}.{attr.split('.', 1)[0]}")
            attr = ""
            dot = ""
        else:
            value = binding.get(param)
        if not value:
            return {}
        out: Value = {}
        for a, s in value.items():
            k = a[1]
            if a[0] == "P" and dot and "." not in k:
                k = f"{k}.{attr}"
            _add(out, (a[0], k, a[2] | atom[2]), s)
        return out

    # ----- sinks -----------------------------------------------------------------------------
    def check_sink(self, fr: _Frame, call: CallFact, sink: Sink, args: list[Value], kwargs: dict[str, Value],
                   star: Value, recv: Value, target: str | None) -> None:
        hints = call.hints
        fixed = hints.get("fixed", ())
        if sink.when == "unsafe_yaml" and hints.get("yaml_safe"):
            return
        if sink.when == "no_max_per_page" and "max_per_page" in call.kwargs:
            return
        if sink.kind == "path" and hints.get("fileobj"):
            return
        if sink.when == "request_receiver" and not recv:
            return  # `.save(path)` of something that is not an upload (a model, a form, an image)
        if sink.when == "shell" and not hints.get("shell") and (hints.get("argv") or not hints.get("argstr")):
            return  # an argv list without a shell is not parsed by a shell
        values: list[Value] = []
        for i in sink.args:
            if i < len(args) and not (sink.when == "open_prefix" and i in fixed):
                values.append(args[i])
        for k in sink.kwargs:
            if k in kwargs and not (sink.when == "open_prefix" and k in fixed):
                values.append(kwargs[k])
        if sink.star_kwargs and star:
            values.append(star)
        if sink.receiver_tainted and recv:
            values.append(recv)
        if not values and not hints.get("limit"):
            return
        site = (fr.info.path, call.line, call.col, call.text)
        if sink.kind == "sql" and hints.get("limit"):
            for atom, steps in self.resolve(fr, hints["limit"]).items():
                self.reach(fr, "limit", site, (call.end_line, call.end_col), call.text, fr.q, atom, steps)
        for atom, steps in _join(values).items():
            self.reach(fr, sink.kind, site, (call.end_line, call.end_col), call.text, fr.q, atom, steps)

    def reach(self, fr: _Frame, kind: str, site: Step, end: tuple[int, int], text: str, func: str,
              atom: Atom, steps: tuple[Step, ...]) -> None:
        if atom[2] & NUM and kind != "limit":
            return  # a number cannot inject text
        if atom[2] & TAIL and kind in TAIL_SAFE:
            return  # after a fixed scheme+host or path: cannot choose where the URL points
        if atom[2] & KEYS and kind == "mass_assignment":
            return  # a mapping whose keys the code wrote: only values are client data
        if atom[0] == "P":
            if len(fr.psinks) < MAX_PSINKS:
                fr.psinks.append((kind, site, end, text, func, atom[1], atom[2], steps[-MAX_STEPS:]))
            return
        rule = self.m.kinds[kind].rule
        key = (rule, site[0], site[1], site[2])
        source = steps[0][3].removeprefix("source: ") if steps else "request data"
        if any(s in source for s in self.m.ignored_sources.get(kind, ())):
            return
        old = self.flows.get(key)
        flow = Flow(kind, site, end, text, func, source, steps[:MAX_STEPS])
        if old is None:
            self.flows[key] = flow
            return
        # one finding per sink: keep the shortest flow, list where the others start
        starts = ([old.steps[0]] if old.steps else []) + old.others
        first = steps[0] if steps else None
        if len(steps) < len(old.steps):
            flow.others = [s for s in starts if s != first][:4]
            self.flows[key] = flow
        elif first is not None and first not in starts and len(old.others) < 4:
            old.others.append(first)

    def mro(self, cls: str) -> list[str]:
        got = self._mro.get(cls)
        if got is None:
            got = self._mro[cls] = self.index.mro(cls)
        return got

    def init_of(self, cls: str) -> str | None:
        """The `__init__` a call of project class `cls` runs (memoised)."""
        if cls not in self._inits:
            init = self.index._member("class", cls, "__init__", 0)
            self._inits[cls] = init[0] if init and init[1] == "function" else None
        return self._inits[cls]

    def is_orm_model(self, cls: str) -> bool:
        for base in self.index.ancestors(cls):
            if base in ("django.db.models.Model", "django.db.models.base.Model", "sqlalchemy.orm.DeclarativeBase",
                        "sqlmodel.SQLModel"):
                return True
            if base.endswith(("declarative_base()", "SQLAlchemy().Model", "DeclarativeBase", "registry().generate_base()")):
                return True
        return False

    # ----- framework sources -----------------------------------------------------------------
    def source_flavor(self, fr: _Frame, key: str) -> str | None:
        """'raw' / 'num' for a collected source; None when the framework validated it."""
        if not key.startswith("kwargs:"):
            return "raw"
        name = key[7:]
        cls = fr.info.summary.class_qualname
        if not cls or not name:
            return "raw"
        conv = self.urls().get(f"{fr.info.module}.{cls}", {}).get(name)
        return self._django_flavor(conv) if conv is not None else "raw"

    def _django_flavor(self, conv: str) -> str | None:
        if conv.startswith("re:"):
            pat = conv[3:]
            if re.fullmatch(r"(?:\\d|\[0-9\]|[+*?]|\{\d+(?:,\d*)?\})+", pat):
                return "num"
            if "." in pat or "[^" in pat or "\\S" in pat or "\\D" in pat or not pat:
                return "raw"
            return None
        if conv in self.m.django_numeric_converters:
            return "num"
        if conv in self.m.django_validated_converters:
            return None
        return "raw"

    def urls(self) -> dict[str, dict[str, str]]:
        """Django URL patterns: view function / class -> {kwarg: converter}."""
        if self._urls is not None:
            return self._urls
        out: dict[str, dict[str, str]] = {}
        funcs = self.m.django_url_functions
        for path, summary in self.index.summaries.items():
            if not any(map(_STARTS_WITH_DJANGO, summary.imports.values())):
                continue
            module = self.index.module_of[path]
            top = summary.functions.get(MODULE_SCOPE)
            if top is None:
                continue
            for site in top.calls:
                if not site.ref or len(site.args) < 2:
                    continue
                if self.index.resolve(module, site.ref) not in funcs:
                    continue
                pat = site.args[0]
                if pat[0] != "const" or not isinstance(pat[1], str):
                    continue
                view = site.args[1]
                target = None
                if view[0] == "ref" and view[1]:
                    target = self.index.resolve(module, view[1])
                elif view[0] == "call" and view[1] and view[1].endswith(".as_view"):
                    target = self.index.resolve(module, view[1][: -len(".as_view")])
                if not target:
                    continue
                convs = out.setdefault(target, {})
                for conv, name in _DJANGO_VAR.findall(pat[1]):
                    convs[name] = conv or "str"
                for name, rx in _RE_GROUP.findall(pat[1]):
                    convs[name] = "re:" + rx
        self._urls = out
        return out

    def frame_handler(self, fr: _Frame) -> dict[str, Any] | None:
        """`handler_params` of the frame's function: only parameter atoms need it (memoised)."""
        handler = fr.handler
        if handler is _UNSET:
            handler = fr.handler = self.handler_params(fr.info)
        return handler  # type: ignore[return-value]

    def handler_params(self, info: FunctionInfo) -> dict[str, Any] | None:
        """For a request handler: param name -> how the framework delivers it; else None."""
        q = info.qualified
        if q in self._handlers:
            return self._handlers[q]
        result = None
        fs = info.summary
        for d in fs.decorators:
            if not d.ref or not d.is_call:
                continue
            target = self.index.resolve(info.module, d.ref) or d.ref
            app, _, meth = target.rpartition(".")
            if meth not in self.m.route_methods:
                continue
            msummary = self.index.summaries.get(info.path)
            heads = {v.split(".")[0] for v in msummary.imports.values()} if msummary else set()
            framework = None
            if app in self.m.flask_apps:
                framework = "flask"
            elif app in self.m.fastapi_apps:
                framework = "fastapi"
            elif not self.m.is_external_head(app.split(".")[0].rstrip("()")):
                # an app object the index could not type (a factory, an import cycle): the module's imports decide
                if "flask" in heads or "quart" in heads:
                    framework = "flask"
                elif "fastapi" in heads:
                    framework = "fastapi"
            if framework == "flask":
                rule = d.args[0] if d.args else d.kwargs.get("rule")
                result = {"framework": "flask", "route": rule[1] if rule and rule[0] == "const" else ""}
                break
            if framework == "fastapi":
                result = {"framework": "fastapi"}
                break
        if result is None:
            convs = self.urls().get(q)
            if convs is None and fs.class_qualname and fs.name in _HTTP_METHODS:
                convs = self.urls().get(f"{info.module}.{fs.class_qualname}")  # a class-based view
            if convs is not None and (not fs.class_qualname or fs.name in _HTTP_METHODS):
                result = {"framework": "django", "convs": convs}
        if result is None and q in self.dependencies():
            result = {"framework": "fastapi"}
        self._handlers[q] = result
        return result

    def dependencies(self) -> set[str]:
        """Functions used as FastAPI dependencies (`Depends(fn)`): their parameters are request data too."""
        if self._deps is not None:
            return self._deps
        out: set[str] = set()
        deps = self.m.fastapi_dependency_functions
        for info in self.index.functions.values():
            for p in info.summary.params:
                d = p.default
                if d is None or d[0] != "call" or not d[1] or not d[2] or d[2][0][0] != "ref" or not d[2][0][1]:
                    continue
                if d[1].rsplit(".", 1)[-1] in ("Depends", "Security") and self.index.resolve(info.module, d[1]) in deps:
                    target = self.index.resolve(info.module, d[2][0][1])
                    if target:
                        out.add(target)
        self._deps = out
        return out

    def handler_source(self, fr: _Frame, key: str):
        """('raw'|'num', description, line) if parameter `key` carries client data, 'clean' if
        the framework validated it, None if it is not a request parameter."""
        h = fr.handler
        fs = fr.info.summary
        param_name, _, attr = key.partition(".")
        param = next((p for p in fs.params if p.name == param_name), None)
        if param is None:
            return None
        fw = h["framework"]
        if fw == "flask":
            for conv, name in _FLASK_VAR.findall(h.get("route") or ""):
                if name == param_name:
                    conv = conv or "string"
                    if conv in self.m.flask_numeric_converters:
                        return ("num", f"route variable <{conv}:{name}>", fs.line)
                    if conv in self.m.flask_validated_converters:
                        return "clean"
                    return ("raw", f"route variable <{conv}:{name}>", fs.line)
            return None
        if fw == "django":
            conv = h["convs"].get(param_name)
            if conv is None:
                return None
            flavor = self._django_flavor(conv)
            if flavor is None:
                return "clean"
            return (flavor, f"URL kwarg <{conv.removeprefix('re:')}:{param_name}>", fs.line)
        if fw == "fastapi":
            return self._fastapi_param(fr, param, attr)
        return None

    def _fastapi_param(self, fr: _Frame, param: Param, attr: str):
        m = self.m
        module = fr.info.module
        d = param.default
        bounded = False
        if d is not None and d[0] == "call" and d[1]:
            fref = self.index.resolve(module, d[1])
            if fref in m.fastapi_dependency_functions:
                # the parameter receives what the dependency returns (its own parameters are request data)
                dep = self.index.resolve(module, d[2][0][1]) if d[2] and d[2][0][0] == "ref" and d[2][0][1] else None
                if dep and dep in self.facts:
                    got = {a: st for a, st in self.summary(dep).ret.items() if a[0] == "S"}
                    if got:
                        step = (fr.info.path, fr.info.summary.line, 0, f"returned by dependency {dep.rsplit('.', 1)[-1]}()")
                        return ("value", {a: st + (step,) for a, st in got.items()})
                return "clean"
            if fref in m.fastapi_param_functions:
                if any(k in d[3] for k in m.fastapi_validating_kwargs):
                    return "clean"
                bounded = any(k in d[3] for k in m.fastapi_bounding_kwargs)
        flavor = self._type_flavor(module, param.annotation)
        ann = (param.annotation or "").replace("builtins.", "")
        desc = f"parameter {param.name}" + (f": {ann}" if ann else "")
        if flavor == "model":
            cls = self.index.resolve(module, param.annotation)
            if not attr:
                return "clean"  # the model as a whole is validated; its str fields are still str
            field_ann = None
            for c in self.mro(cls):
                a = self.index.classes[c].summary.attrs.get(attr)
                if a is not None:
                    field_ann = (self.index.classes[c].module, a.annotation)
                    break
            if field_ann is None or not field_ann[1]:
                return "clean"
            f2 = self._type_flavor(field_ann[0], field_ann[1])
            if f2 in ("raw", "num"):
                fa = field_ann[1].replace("builtins.", "")
                return (f2, f"{param.name}.{attr} ({fa} field of {cls.rsplit('.', 1)[-1]})", fr.info.summary.line)
            return "clean"
        if flavor == "num":
            return "clean" if bounded else ("num", desc, fr.info.summary.line)
        if flavor == "raw":
            return ("raw", desc, fr.info.summary.line)
        return "clean"

    def _type_flavor(self, module: str, ann: str | None) -> str | None:
        m = self.m
        if not ann:
            return "raw"
        if "[" in ann or "|" in ann or " " in ann or "(" in ann:
            if "Literal[" in ann or re.search(r"\b(?:pattern|regex)\s*=", ann):
                return None  # Literal[...], Annotated[str, Query(pattern=...)], constr(pattern=...)
            if re.search(r"\b(?:le|lt)\s*=", ann) and re.search(r"\b(?:int|float|conint)\b", ann):
                return None
            inner = re.findall(r"[A-Za-z_][\w.]*", ann)
            flavors = [self._type_flavor(module, t) for t in inner if t not in ("Optional", "Union", "None", "typing", "Annotated")]
            if "raw" in flavors:
                return "raw"
            if "num" in flavors:
                return "num"
            if "model" in flavors:
                return "model"
            return None
        r = self.index.resolve(module, ann) or ann
        if r in ("str", "Any", "dict", "list", "bytes") or r in m.fastapi_tainted_types:
            return "raw"
        if r in ("int", "float") or r in m.fastapi_numeric_types:
            return "num"
        if r in m.fastapi_request_objects:
            return None
        if r in self.index.classes:
            anc = self.index.ancestors(r)
            if anc & m.enum_bases:
                return None
            if anc & m.pydantic_bases:
                return "model"
        return None


def _receiver_name(ref: str) -> str:
    """The name part of a receiver ref: what follows the last call (`pkg.Api().client` ->
    "client"), at most its last two segments (`$schema_editor.connection.cursor()` ->
    "connection.cursor"), so that a package path (`dbtools.http.Client().x`) does not count."""
    ref = ref.removesuffix("()")
    if "()." in ref:
        ref = ref.rsplit("().", 1)[1]
    return " ".join(ref.split(".")[-2:])


def _parse_atom(a: str) -> tuple[int, str, Any, int]:
    """An atom's text, parsed once: (flavor bits, kind, key, call or source index).

    `g:<j>:<slot>|<rest>` / `q:...` -> key (slot, rest); `s:<i>` -> j i; `p:<key>` / `a:<key>`
    -> key; `r:<j>` / `r:<j>#<item>` -> j, key the item number (None unless all digits).
    Any other kind contributes nothing (kind "")."""
    num = 0
    while a[1:2] == "|":
        num |= NUM if a[0] == "n" else TAIL if a[0] == "t" else 0
        a = a[2:]
    if a.startswith(("g:", "q:")):
        head, _, rest = a.partition("|")
        _, j, slot = head.split(":", 2)
        return num, a[0], (slot, rest), int(j)
    kind, _, key = a.partition(":")
    if kind == "s":
        return num, kind, None, int(key)
    if kind == "p" or kind == "a":
        return num, kind, key, 0
    if kind == "r":
        key, _, item = key.partition("#")
        return num, kind, int(item) if item.isdigit() else None, int(key)
    return num, "", None, 0


def _add(out: Value, atom: Atom, steps: tuple) -> None:
    old = out.get(atom)
    if old is None or len(steps) < len(old):
        out[atom] = steps


def _join(values: list[Value]) -> Value:
    out: Value = {}
    for v in values:
        if v:
            if not out:  # the first non-empty value: a copy (`_add` of distinct atoms into nothing)
                out.update(v)
                continue
            for a, s in v.items():  # `_add(out, a, s)`, inlined: a hot loop
                old = out.get(a)
                if old is None or len(s) < len(old):
                    out[a] = s
    return out
