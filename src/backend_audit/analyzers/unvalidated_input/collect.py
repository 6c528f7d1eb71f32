"""Per-file, per-function symbolic taint summaries (runs in a worker; a pure function of the text).

One flow-sensitive pass over each function's statements computes, for every local name, the set
of *atoms* its value may carry:

* ``p:name`` / ``p:name.attr``  the value of a parameter (or one attribute of it)
* ``s:i``                        client data read in this function (``FuncFacts.sources[i]``)
* ``r:j``                        the result of call ``j`` whose callee may be a project function;
                                 solve.py links it to the callee's summary
* ``n|<atom>``                   the same data converted to a number (clean for every sink but
                                 unbounded limits)

Reassigning a clean value clears a name; sanitizers (catalog) return clean values; a guard whose
failing branch leaves the function cleans the name after it, unless the exception that leaves is
swallowed by an ``except`` that falls through. Every call that receives atoms (or may call a
project function) is kept as a `CallFact` with its callee ref left module-relative, as in the
generic summary: solve.py resolves it with the project index.

Nested functions see the enclosing function's variables: each one they read is a pseudo-parameter
``p:<name>`` of the nested function, bound wherever the enclosing function calls it, passes it on
(`asyncio.to_thread(_write)`, `run_in_executor`, `sync_to_async`) or returns it (a `CallFact` with
a ``closure`` hint); lambda bodies are evaluated in place. Method calls on objects fetched from an
application registry (`request.app["repo"]`, `app.state.repo`, `current_app.extensions[...]`,
`g.repo`) carry a ``registry`` hint; the stores (`app["repo"] = Repo(...)`) are kept in
`FuncFacts.registry`, and solve.py links the method of the class stored under the same key.

Refs reuse `Summarizer.ref` of the generic summary (same name binding rules), not a copy.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from backend_audit.analyzers.unvalidated_input.models import TaintModels
from backend_audit.parsing.summary import (
    MODULE_SCOPE,
    LineIndex,
    ModuleSummary,
    Summarizer,
    _looks_like_type_ref,
    _Scope,
)
from backend_audit.pickling import positional_pickle

Atoms = frozenset
EMPTY: frozenset[str] = frozenset()
MAX_ATOMS = 24  # per value; beyond this taint is kept but not enumerated further

_PLACEHOLDER = re.compile(r"%s|%\(\w+\)s|\?|\$\d+|(?<!:):\w+")
_LIMIT_HOLDER = re.compile(r"(?i)\b(?:LIMIT|FETCH\s+FIRST|TOP)\s+(%s|%\(\w+\)s|\?|\$\d+|:\w+)")
_LIMIT_BEFORE = re.compile(r"(?i)\b(?:LIMIT|FETCH\s+FIRST|TOP)\s*$")
_HOST_PREFIX = re.compile(r"^(?:https?:)?//[^/?#\s{}%]+[/?#]")


@positional_pickle
@dataclass
class CallFact:
    ref: str | None
    line: int
    col: int
    end_line: int
    end_col: int
    text: str  # the callee as written, for messages
    args: list[frozenset[str]]
    kwargs: dict[str, frozenset[str]]
    star: frozenset[str] = EMPTY  # atoms of **mapping arguments
    recv: frozenset[str] = EMPTY  # atoms of the receiver of a method call
    recv_ref: str = ""  # ref (or text) of the receiver, for receiver hints
    #: "shell": shell=True; "argv": arg 0 is a list/tuple; "yaml_safe": a safe Loader;
    #: "fixed": positions/keywords whose value starts with a constant that fixes the host
    hints: dict = field(default_factory=dict)


@positional_pickle
@dataclass
class FuncFacts:
    #: (description, line, col, key) of each client-data read; key is e.g. "kwargs:slug" or ""
    sources: list[tuple[str, int, int, str]] = field(default_factory=list)
    calls: list[CallFact] = field(default_factory=list)
    ret: frozenset[str] = EMPTY
    #: per element, when every `return` is a tuple of the same length
    ret_items: list[frozenset[str]] | None = None
    #: parameters that every normal exit has validated (see `_exit`)
    validates: list[str] | None = None
    #: a predicate (`return value in SORTS`): parameter -> what it holds wherever the function
    #: returns a true value; solve.py counts the parameter as tested when that resolves to nothing
    predicate: dict[str, frozenset[str]] | None = None
    #: `self.x = value` of attributes that other methods read as `a:x`
    attr_writes: dict[str, frozenset[str]] | None = None
    #: parameter names treated as request objects (their attributes are sources, not them)
    request_params: list[str] = field(default_factory=list)
    #: application registry stores `app["repo"] = Repo()`: (namespace, "s"|"r", key) -> value ref
    registry: dict[tuple[str, str, str], str] | None = None


class _Fn:
    __slots__ = ("qualname",)

    def __init__(self, qualname: str):
        self.qualname = qualname


def _union(values) -> frozenset[str]:
    # most unions have at most one non-empty operand: that frozenset is returned as it is
    # (no copy) when it is within the cap
    first = None
    out: set[str] | None = None
    for v in values:
        if v:
            if first is None:
                first = v
            elif out is None:
                out = set(first)
                out |= v
            else:
                out |= v
    if out is None:
        if first is None:
            return EMPTY
        if type(first) is frozenset and len(first) <= MAX_ATOMS:
            return first
        out = set(first)
    if len(out) > MAX_ATOMS:
        out = set(sorted(out)[:MAX_ATOMS])
    return frozenset(out)


def _union2(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    """`_union((a, b))`, without the loop when a side is empty (the usual case)."""
    if not b:
        if not a:
            return EMPTY
        if type(a) is frozenset and len(a) <= MAX_ATOMS:
            return a
    elif not a and type(b) is frozenset and len(b) <= MAX_ATOMS:
        return b
    return _union((a, b))


def _numeric(atoms: frozenset[str]) -> frozenset[str]:
    return frozenset(a if a.startswith("n|") else "n|" + a for a in atoms)


def _merge(envs: list[dict[str, frozenset[str]]], paths: bool = True) -> dict[str, frozenset[str]]:
    """The envs joined (`paths`: some env may hold an access-path key, see `_FnState.paths`)."""
    if len(envs) == 1:
        return dict(envs[0])
    # start from a copy of the first env (same key order as inserting its keys one by one)
    out: dict[str, frozenset[str]] = dict(envs[0])
    if len(envs) == 2:
        # (the usual join, after an `if`): the later env's keys and values, then the union
        # (earlier first) where both have a key with other values; none when they are equal
        first, second = envs
        out.update(second)
        if first == second:  # (compares values by identity first: a fast test in C)
            return out
        get = second.get
        for k, v in first.items():
            w = get(k)
            if w is not None and w is not v and w != v:
                out[k] = v | w
    else:
        get = out.get
        for env in envs[1:]:
            for k, v in env.items():
                old = get(k)
                if old is None:
                    out[k] = v
                elif old != v:
                    out[k] = old | v
                else:
                    out[k] = v  # (an equal value: the later one, as the 2-env join keeps)
    if not paths:
        return out
    # an access path (`request.GET['next']`, `form.url`) cleaned by a guard on some paths only:
    # where it is missing, a read finds the data again through its base, so it is not clean
    for k in [k for k, v in out.items() if not v and not k.isidentifier()]:
        if any(k not in env for env in envs):
            del out[k]
    return out


def anchored(pattern: str) -> bool:
    """`^...$` / `\\A...\\Z`: a regex that must match the whole value."""
    start = pattern.startswith(("^", "\\A"))
    end = pattern.endswith("$") and not pattern.endswith("\\$") or pattern.endswith(("\\Z", "\\z"))
    return start and end


def safe_prefix(s: str) -> bool:
    """A constant prefix that fixes where a URL points: a local path or a scheme+host."""
    if s.startswith("/") and len(s) > 1 and s[1] not in "/\\":
        return True
    return bool(_HOST_PREFIX.match(s))


class _Derived:
    """What the collector derives from one `TaintModels`, built once per models object rather
    than per file: merged name sets, and the catalog's verdicts on callee refs and method names
    as bit flags, remembered across files."""

    __slots__ = ("guard_name", "meth_flags", "meth_lists", "models", "ref_flags", "ref_lists", "runner_meths",
                 "runner_refs", "source_attrs", "source_methods", "special_refs")

    def __init__(self, models: TaintModels):
        self.models = models
        self.source_methods = models.request_methods | models.global_request_methods
        #: every attribute `_source_attr` can accept (a cheap test before resolving the base)
        self.source_attrs = models.request_attrs | models.global_request_attrs | {models.view_kwargs_attr}
        self.runner_refs = {k: v for k, v in models.callback_runners.items() if k[:1] != "."}
        self.runner_meths = {k[1:]: v for k, v in models.callback_runners.items() if k[:1] == "."}
        self.meth_flags: dict[str, int] = {}  # method name -> `TaintCollector._meth_flags`
        # pure functions of a callee ref, remembered across files (see `_remember`)
        self.ref_flags: dict[str | None, int] = {}  # ref -> `TaintCollector._ref_flags`
        self.guard_name: dict[str, bool] = {}  # ref -> its last segment matches models.guard_name
        m = models
        #: the catalog's lists of callee refs and their _R_* bits (and of method names, _M_* bits)
        self.ref_lists = ((m.clean_calls, _R_CLEAN), (m.source_calls, _R_SOURCE), (m.regex_sub, _R_REGEX_SUB),
                          (m.tail_calls, _R_TAIL), (m.numeric_calls, _R_NUMERIC), (m.consuming_sinks, _R_CONSUMING),
                          (m.propagate_all, _R_PROPAGATE_ALL), (m.guard_calls, _R_GUARD),
                          (m.anchored_regex_calls, _R_ANCHORED))
        self.meth_lists = ((self.source_methods, _M_SOURCE), (_GETTERS, _M_GETTER), (self.runner_meths, _M_RUNNER),
                           (m.container_writers, _M_CONTAINER), (m.clean_methods, _M_CLEAN),
                           (m.containment_methods | m.guard_methods | m.anchored_regex_methods, _M_GUARDING),
                           (_SPECIAL_METHODS, _M_SPECIAL))
        #: every ref some _R_* list names (`TaintCollector._listed_ref_flags`)
        self.special_refs = frozenset(self.runner_refs).union(*(names for names, _ in self.ref_lists))


_DERIVED: _Derived | None = None
_REMEMBERED = 20000  # entries kept per cache of `_Derived` (a worker sees every ref of its files)


def _remember(cache: dict, key: Any, value: Any) -> Any:
    """`cache[key] = value`, starting the cache over when it is full (bounded memory; a huge
    dict also makes its lookups miss the CPU caches)."""
    if len(cache) >= _REMEMBERED:
        cache.clear()
    cache[key] = value
    return value

# what the catalog says of a callee ref (`TaintCollector._ref_flags`) ...
_R_RUNNER = 1  # callback_runners (by ref)
_R_CLEAN = 2  # clean_calls
_R_SOURCE = 4  # source_calls
_R_REGEX_SUB = 8  # regex_sub
_R_TAIL = 16  # tail_calls
_R_NUMERIC = 32  # numeric_calls
_R_PROJECT = 64  # `_possibly_project`
_R_CONSUMING = 128  # consuming_sinks
_R_CLASS = 256  # `name_is_class`
_R_PROPAGATE_ALL = 512  # propagate_all
_R_GUARD = 1024  # guard_calls
_R_ANCHORED = 2048  # anchored_regex_calls
_R_SPECIAL = _R_CLEAN | _R_SOURCE | _R_REGEX_SUB | _R_TAIL | _R_NUMERIC  # see `_special_call`
# ... and of a method name (`TaintCollector._meth_flags`)
_M_SOURCE = 1  # request_methods / global_request_methods
_M_GETTER = 2  # `get`, `getlist`, ... (a read from a request mapping)
_M_RUNNER = 4  # callback_runners (by method)
_M_CONTAINER = 8  # container_writers
_M_CLEAN = 16  # clean_methods
_M_GUARDING = 32  # containment_methods, guard_methods or anchored_regex_methods
_M_SPECIAL = 64  # `sub`, `format`, `update` (see `_special_call`)
_SPECIAL_METHODS = frozenset(("sub", "format", "update"))
#: the tests `_guard` may evaluate parts of (the others it only reads, or ignores)
_EVALUATING_GUARDS = frozenset((ast.Call, ast.Compare, ast.UnaryOp, ast.BoolOp, ast.NamedExpr))
_GETTERS = frozenset(("get", "getlist", "getone", "getall", "get_all"))
_MISSING = object()


def _derived(models: TaintModels) -> _Derived:
    global _DERIVED
    d = _DERIVED
    if d is None or d.models is not models:  # holds `models`: its id cannot be reused meanwhile
        d = _DERIVED = _Derived(models)
    return d


class TaintCollector(Summarizer):
    """Reuses the generic summarizer's name binding (`ref`, `name_ref`) over the same tree."""

    def __init__(self, tree: ast.Module, lines: LineIndex, module: ModuleSummary, models: TaintModels, text: str = ""):
        # deliberately not Summarizer.__init__: no second visit; the module-level bindings come
        # from the generic summary the engine already built for this text
        self.summary = ModuleSummary(imports=module.imports, star_imports=module.star_imports)
        self.lines = lines
        self.module_bound: set[str] = set()
        self.scopes: list[_Scope] = []
        self.class_stack = []
        self.func_stack: list = []
        self.loop_depth = [0]
        self.awaited: set[int] = set()
        self.def_stack: list[tuple[str, str]] = []
        self.module_bound = {q for q in module.functions if "." not in q and q != MODULE_SCOPE}
        self.module_bound.update(q for q in module.classes if "." not in q)
        self.module_bound.update(module.assigns)
        self.module = module
        self.m = models
        self.out: dict[str, FuncFacts] = {}
        self.regex_consts: dict[str, str] = {}
        for name, attr in module.assigns.items():
            v = attr.value
            if v[0] == "call" and v[1] in models.regex_compile and v[2] and v[2][0][0] == "const" \
                    and isinstance(v[2][0][1], str):
                self.regex_consts[name] = v[2][0][1]
        self.tree = tree
        self.discarded: ast.AST | None = None  # a call whose result is thrown away
        self.text = text  # for the lazy `has_limit` / `has_registry` (each a few scans of the text)
        self.class_attrs: dict[str, set[str]] = {}
        self.property_cache: dict[str, bool] = {}  # qualname -> _is_property (the module summary is fixed)
        derived = _derived(models)  # (the same for every file of a scan)
        self.source_methods = derived.source_methods
        self.source_attrs = derived.source_attrs
        self.special_refs = derived.special_refs
        self.ref_lists = derived.ref_lists
        self.meth_lists = derived.meth_lists
        self.ref_flags = derived.ref_flags
        self.meth_flags = derived.meth_flags
        self.guard_name_cache = derived.guard_name
        #: `ref(callee)` of calls already resolved, valid while no name binding changes (`_rebound`)
        self.func_refs: dict[ast.AST, str | None] = {}
        self.name_refs: dict[str, str] = {}  # name -> `Summarizer.name_ref`, see `_rebound`
        self.runner_refs = derived.runner_refs
        self.runner_meths = derived.runner_meths

    # Computed on first use (most files never ask): each scans the whole text a few times.
    @cached_property
    def has_limit(self) -> bool:
        text = self.text
        return "LIMIT" in text or "limit" in text or "FETCH" in text

    @cached_property
    def global_names(self) -> set[str]:
        return {k for k, v in self.module.imports.items() if v in self.m.app_globals}

    @cached_property
    def has_registry(self) -> bool:
        # registry stores and reads look like `app[...]`, `config_dict[...]`, `extensions[...]`,
        # `.state.x` or `g.x` (with Flask's `g` imported): a cheap test that skips most files
        text = self.text
        return bool(self.global_names) or "app[" in text or "application[" in text \
            or "config_dict[" in text or "extensions[" in text or ".state." in text or "app." in text

    # ----- driver --------------------------------------------------------------------------
    def run(self) -> dict[str, FuncFacts]:
        self.func_stack.append(_Fn(MODULE_SCOPE))
        self.scopes.append(_Scope(None))
        self.scopes[-1].func = _Fn(MODULE_SCOPE)  # type: ignore[assignment]
        self._defs(self.tree.body, "", None)
        # only an assignment to an item or attribute can store in a registry (`_registry_key`)
        if any(type(n) is ast.Assign and any(type(t) in (ast.Subscript, ast.Attribute) for t in n.targets)
               for n in self.tree.body) and self.has_registry:
            self._module_stores()
        return self.out

    def _module_stores(self) -> None:
        """`app.state.repo = Repo()` / `app["repo"] = Repo()` at module level."""
        facts = None
        self.st = _FnState(MODULE_SCOPE, FuncFacts(), None, set())
        self.env = {}
        for node in self.tree.body:
            if type(node) is ast.Assign:
                for target in node.targets:
                    k = self._registry_key(target, store=True)
                    if k is not None:
                        v = self._stored_ref(node.value)
                        if v:
                            facts = facts or self.out.setdefault(MODULE_SCOPE, FuncFacts())
                            facts.registry = facts.registry or {}
                            facts.registry[k] = v

    def _defs(self, body: list[ast.stmt], prefix: str, cls: str | None) -> None:
        top = cls is None and not prefix
        for node in body:
            t = type(node)
            if t is ast.FunctionDef or t is ast.AsyncFunctionDef:
                self._function(node, prefix + node.name, cls)
            elif t is ast.ClassDef:
                self._defs(node.body, prefix + node.name + ".", prefix + node.name)
            elif top and (t is ast.If or t is ast.Try):
                self._defs(node.body, prefix, cls)
                self._defs(node.orelse, prefix, cls)
                if t is ast.Try:
                    for h in node.handlers:
                        self._defs(h.body, prefix, cls)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, cls: str | None,
                  closure: tuple[dict, FuncFacts, frozenset[str]] | None = None) -> None:
        scope = _Scope(None, cls)
        fn = scope.func = _Fn(qualname)  # type: ignore[assignment]
        args = node.args
        params = args.posonlyargs + args.args
        has_positional = bool(params)
        if args.vararg:
            params.append(args.vararg)
        if args.kwonlyargs:
            params += args.kwonlyargs
        if args.kwarg:
            params.append(args.kwarg)
        env: dict[str, frozenset[str]] = {}
        facts = FuncFacts()
        self_name = None
        scope_params = scope.params
        scope_locals = scope.locals
        request_param_names = self.m.request_param_names
        first = 0
        if cls is not None and has_positional and not _decorated(node, "staticmethod"):
            # the first positional parameter of a method is the instance (the class)
            self_name = params[0].arg
            scope_params.add(self_name)
            scope_locals[self_name] = f"@{cls}" if _decorated(node, "classmethod") else f"@{cls}()"
            first = 1
        for i in range(first, len(params)):
            a = params[i]
            name = a.arg
            scope_params.add(name)
            if a.annotation is not None:
                ann = self.ref(a.annotation)
                if ann and ann[0] != "$" and ann not in ("str", "int") and _looks_like_type_ref(ann):
                    scope_locals[name] = f"{ann}()"
                is_request = self._is_request_annotation(name, ann)
            else:
                is_request = name in request_param_names
            if is_request:
                facts.request_params.append(name)
                continue
            env[name] = frozenset((f"p:{name}",))
        self.scopes.append(scope)
        self.func_stack.append(fn)  # (the same read-only qualname holder as the scope's)
        self._rebound()
        # attributes that methods (processed in class-body order) store data in: `self.x = x`
        if cls and self_name:
            tainted_attrs = self.class_attrs.get(cls)
            if tainted_attrs is None:
                tainted_attrs = self.class_attrs[cls] = set()
        else:
            tainted_attrs = set()
        st = _FnState(qualname, facts, self_name, set(facts.request_params), tainted_attrs, set(env))
        saved = (getattr(self, "st", None),)
        self.st = st
        self.env = env
        if closure is not None:
            self._capture(closure, env, scope)
        end_env = env
        try:
            end_env, term = self._block(node.body, env)
            if not term:
                self._exit(end_env)
        finally:
            self.scopes.pop()
            self.func_stack.pop()
            self._rebound()
            self.st = saved[0]
        facts.ret = _union(st.ret)
        if st.exit_clean:
            # parameters every normal exit has checked (a guard cleaned them, no reassignment):
            # a statement call of this function validates what the caller passed
            facts.validates = sorted(st.exit_clean - st.reassigned) or None
        if st.ret_items:
            facts.ret_items = st.ret_items
        if st.pred:
            got = {p: v for p, v in st.pred.items() if p not in st.reassigned and f"p:{p}" not in v}
            facts.predicate = got or None
        if facts.calls or facts.sources or facts.ret or facts.attr_writes or facts.validates or facts.predicate:
            self.out[qualname] = facts
        for inner, inner_q in st.nested:
            self.scopes.append(scope)
            self.func_stack.append(_Fn(qualname))
            self._rebound()
            try:
                # the enclosing variables it reads, when some place passed it data (see _closure_atoms)
                c = st.closures.get(inner.name) if st.closures else None
                free = c[2] if c is not None and c[3] and c[1] is inner else EMPTY
                self._function(inner, inner_q, None, (end_env, facts, free))
            finally:
                self.scopes.pop()
                self.func_stack.pop()
                self._rebound()

    def _capture(self, closure: tuple[dict, FuncFacts, frozenset[str]], env: dict, scope: _Scope) -> None:
        """A nested function sees the enclosing function's variables. The client data they hold
        at the end of the enclosing function (its direct sources) become sources here; and every
        variable it reads is also a pseudo-parameter `p:<name>`, bound at each place the enclosing
        function calls, passes on or returns the nested function (`_closure_atoms`) to what the
        variable holds there (parameters, call results: data of the enclosing frame)."""
        outer_env, outer, free = closure
        for name in outer.request_params:  # `request.GET[...]` read inside the nested function
            if name not in scope.params:
                self.st.request_names.add(name)
        for name in free:
            if name not in scope.params and name in outer_env:
                env[name] = frozenset((f"p:{name}",))
        for name, atoms in outer_env.items():
            if name in scope.params or "." in name or "[" in name:
                continue
            got = [f"p:{name}"] if name in free else []
            for a in sorted(atoms):  # a set: sorted, so the new sources' ids never follow the hash seed
                flags, _, rest = a.rpartition("|") if "|" in a and not a.startswith("g:") else ("", "", a)
                if rest.startswith("s:"):
                    desc, line, col, key = outer.sources[int(rest[2:])]
                    pos = ("closure", line, col, desc)
                    i = self.st.source_ids.get(pos)
                    if i is None:
                        i = len(self.st.facts.sources)
                        self.st.source_ids[pos] = i
                        self.st.facts.sources.append((desc, line, col, key))
                    got.append(f"{flags}|s:{i}" if flags else f"s:{i}")
            if got:
                env[name] = frozenset(got)

    def _closure_atoms(self, name: str) -> dict[str, frozenset[str]] | None:
        """For a nested function `name` of this function: what the enclosing variables it reads
        hold here (only those that carry something)."""
        got = self.st.closures.get(name) if self.st.closures else None
        if got is None or self.env.get(name):
            return None
        env = self.env
        if not any(env.values()):
            return None
        if got[2] is None:
            got[2] = self._free_names(got[1])  # computed once, only when some variable carries data
        out = {n: env[n] for n in got[2] if env.get(n)}
        if not out:
            return None
        got[3] = True
        return out

    def _free_names(self, fn: ast.AST) -> frozenset[str]:
        """The identifiers in a nested function's text: a superset of the enclosing variables it
        reads (its own parameters and locals are filtered where it matters), by one regex pass
        over its lines rather than a walk of its tree."""
        lines = self.lines
        end = getattr(fn, "end_lineno", None) or fn.lineno
        text = "\n".join(lines.line(i) for i in range(fn.lineno, end + 1))
        a = fn.args
        params = {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
        params.update(p.arg for p in (a.vararg, a.kwarg) if p is not None)
        return frozenset(_IDENT.findall(text)) - params

    def _closure_ref(self, node: ast.Name) -> frozenset[str]:
        """`asyncio.to_thread(_write)`, `return _write`: the nested function leaves with the
        enclosing frame's data; link it here (a pseudo call whose result is what it returns)."""
        captured = self._closure_atoms(node.id)
        if captured is None:
            return EMPTY
        j = self._record(node, self.name_ref(node.id), [], {}, EMPTY, EMPTY, "", node.id)
        self.st.facts.calls[j].hints["closure"] = captured
        return frozenset((f"r:{j}",))

    def _registry_shaped(self, node: ast.AST) -> bool:
        """False when `_registry_key(node)` is certainly None: its tests of the node's shape and
        names, without the key. Spares most files the text scans of `has_registry`."""
        m = self.m
        t = type(node)
        if t is ast.Subscript:
            c = node.value
            if type(c) is ast.Name:  # as `_registry_key` tests it
                return c.id in m.app_names or "Application()" in self.name_ref(c.id)
            return type(c) is ast.Attribute and (c.attr in m.app_extension_attrs or c.attr in m.app_registry_attrs)
        if t is ast.Attribute:
            c = node.value
            if type(c) is ast.Name:
                return (c.id in self.global_names or c.id in m.app_names) and c.id not in self.env
            return type(c) is ast.Attribute and (c.attr in m.app_state_attrs or c.attr in m.app_registry_attrs)
        return False

    def _registry_key(self, node: ast.AST, store: bool = False) -> tuple[str, str, str] | None:
        """`request.app["repo"]`, `app[REPO_KEY]`, `request.config_dict["db"]`, `app.state.repo`,
        `current_app.extensions["repo"]`: (namespace, "s" for a string key / "r" for a key
        object's ref, key). The same shape on both sides: stored at startup, read in handlers."""
        m = self.m
        t = type(node)
        if t is ast.Subscript:
            c = node.value
            ns = None
            if isinstance(c, ast.Attribute):
                if c.attr in m.app_extension_attrs:
                    ns = "ext"
                elif c.attr in m.app_registry_attrs:
                    ns = "item"
            elif isinstance(c, ast.Name) and (c.id in m.app_names or "Application()" in self.name_ref(c.id)):
                ns = "item"  # `app["repo"]`, or any name bound to `web.Application()`
            if ns is None:
                return None
            k = node.slice
            if isinstance(k, ast.Constant) and isinstance(k.value, str):
                return (ns, "s", k.value)
            if isinstance(k, (ast.Name, ast.Attribute)):
                r = self.ref(k)
                if r and r[0] != "$" and (not isinstance(k, ast.Name) or k.id not in self.env):
                    return (ns, "r", r)
            return None
        if t is ast.Attribute:
            c = node.value
            if isinstance(c, ast.Name) and c.id in self.global_names and c.id not in self.env:
                return ("g", "s", node.attr)  # Flask `g.repo = Repo()` ... `g.repo.search(q)`
            if isinstance(c, ast.Attribute) and c.attr in m.app_state_attrs:
                # `app.state.repo`, `api.state.repo`, `request.app.state.repo` (whatever the app is
                # called: a link needs the same attribute stored and read, and a class stored there)
                return ("state", "s", node.attr)
            if isinstance(c, ast.Name) and c.id in m.app_names and c.id not in self.env \
                    or isinstance(c, ast.Attribute) and c.attr in m.app_registry_attrs:
                return ("attr", "s", node.attr)  # Flask `app.repo = Repo()` ... `current_app.repo.search(q)`
        return None

    def _stored_ref(self, value: ast.AST) -> str | None:
        """The ref of what is stored in a registry (`Repo(pool)`, a local bound to one, `self`)."""
        if isinstance(value, ast.Await):
            value = value.value
        r = self.ref(value)
        if not r or r[0] == "$":
            return None
        return r

    def _is_request_annotation(self, name: str, r: str | None) -> bool:
        """A framework request object, for a parameter `name` annotated with ref `r`: by the
        annotation when it resolves (`request: SearchRequest` is a request *body model*, not the
        request), else by its name (as an unannotated parameter)."""
        if r is None:
            return name in self.m.request_param_names
        return r in self.m.request_types or r.rsplit(".", 1)[-1] in ("Request", "HttpRequest", "BaseRequest",
                                                                       "WSGIRequest", "ASGIRequest")

    # ----- remembered refs ------------------------------------------------------------------
    # `Summarizer.name_ref` / `ref` depend only on the name bindings (the scopes' locals and
    # params), and the same names and callees are resolved again and again (a callee by `_call`,
    # then by the statement handler, `_assign_name` and `_guard_call`). Both are remembered until
    # a binding changes, which calls `_rebound`.
    def name_ref(self, name: str) -> str:
        refs = self.name_refs
        r = refs.get(name)
        if r is None:
            r = refs[name] = Summarizer.name_ref(self, name)
        return r

    def _func_ref(self, func: ast.AST) -> str | None:
        refs = self.func_refs
        r = refs.get(func, _MISSING)
        if r is _MISSING:
            r = refs[func] = self.ref(func)
        return r

    def _rebound(self, name: str | None = None) -> None:
        """The binding of `name` changed (a local bound), or of any name (None: a scope entered or
        left, several names bound): forget what depends on it."""
        if name is None:
            self.name_refs.clear()
        else:
            self.name_refs.pop(name, None)
        if self.func_refs:
            self.func_refs.clear()  # (a callee's ref may start from any name)

    # ----- statements -----------------------------------------------------------------------
    def _block(self, stmts: list[ast.stmt], env: dict[str, frozenset[str]]) -> tuple[dict, bool]:
        # each statement by its handler in _STMT (a dict lookup instead of a chain of type tests);
        # a handler gets the env (also set as self.env) and returns the env after it and whether
        # the statement leaves the block
        stmt = _STMT
        for s in stmts:
            self.env = env
            try:
                handler = stmt[type(s)]
            except KeyError:  # not an ast statement type known at import
                handler = TaintCollector._s_other
            env, term = handler(self, s, env)
            if term:
                return env, True
        return env, False

    def _s_assign(self, s: ast.Assign, env: dict) -> tuple[dict, bool]:
        value = s.value
        # (a call, most often: straight to its handler rather than through `_ev`)
        v = self._call(value) if type(value) is ast.Call else self._ev(value)
        for target in s.targets:
            if type(target) is ast.Name:
                self._assign_name(target.id, v, value)
            else:
                self._assign(target, v, value)
        return self.env, False

    def _s_expr(self, s: ast.Expr, env: dict) -> tuple[dict, bool]:
        val = s.value
        if type(val) is ast.Await:
            val = val.value
        self.discarded = val
        if val is s.value and type(val) is ast.Call:
            self._call(val)
        else:
            self._ev(s.value)
        if type(val) is ast.Call:
            ref = self._func_ref(val.func)
            m = self.m
            if ref in m.terminating_calls:
                return self.env, True
            if ref in m.validating_calls and val.args and type(val.args[0]) is ast.Name:
                self.env[val.args[0].id] = EMPTY
            elif self._possibly_project(ref):
                self._maybe_validated(val)
        return self.env, False

    def _s_return(self, s: ast.Return, env: dict) -> tuple[dict, bool]:
        self._exit(self.env)
        value = s.value
        if value is not None:
            v = self._ev(value)
            self._predicate_return(value)
            st = self.st
            st.ret.append(v)
            if type(value) is ast.Tuple and not any(type(e) is ast.Starred for e in value.elts):
                items = [self._ev(e) for e in value.elts]
                if st.ret_items is None:
                    st.ret_items = items
                elif st.ret_items and len(st.ret_items) == len(items):
                    st.ret_items = [_union2(a, b) for a, b in zip(st.ret_items, items)]
                else:
                    st.ret_items = []
            else:
                st.ret_items = []
        return self.env, True

    def _s_augassign(self, s: ast.AugAssign, env: dict) -> tuple[dict, bool]:
        v = self._ev(s.value)
        if type(s.target) is ast.Name:
            self.env[s.target.id] = _union2(self.env.get(s.target.id, EMPTY), v)
            self.st.prefix_names.discard(s.target.id)
        else:
            self._assign(s.target, _union2(self._ev(s.target), v), None)
        return self.env, False

    def _s_annassign(self, s: ast.AnnAssign, env: dict) -> tuple[dict, bool]:
        if s.value is not None:
            self._assign(s.target, self._ev(s.value), s.value)
            if type(s.target) is ast.Name:
                # `repo: ItemRepository = request.app["repo"]`: the declared class types the
                # local (its methods resolve, also when passed on as `repo.search`)
                # (as in the generic summary: the declaration wins unless the value is a constructor call)
                known = self.scopes[-1].locals.get(s.target.id, "$")
                ann = self.ref(s.annotation) if known[:1] == "$" or not known.endswith("()") else None
                if ann and ann[0] != "$" and ann not in ("str", "int") and _looks_like_type_ref(ann) \
                        and self._possibly_project(ann):
                    self.scopes[-1].locals[s.target.id] = f"{ann}()"
                    self._rebound(s.target.id)
        return self.env, False

    def _s_with(self, s: ast.With | ast.AsyncWith, env: dict) -> tuple[dict, bool]:
        swallows = False
        for item in s.items:
            ctx = item.context_expr
            if isinstance(ctx, ast.Call) and self.ref(ctx.func) in self.m.suppressing_contexts:
                swallows = True
            v = self._ev(ctx)
            if item.optional_vars is not None:
                if isinstance(item.optional_vars, ast.Name):
                    r = self.ref(item.context_expr)
                    self.scopes[-1].locals[item.optional_vars.id] = r or f"${item.optional_vars.id}"
                    self._rebound(item.optional_vars.id)
                    self.env[item.optional_vars.id] = v
                else:
                    self._assign(item.optional_vars, v, None)
        if swallows:
            # `with suppress(ValueError): check(x)`: a failing check is swallowed, like `except: pass`
            pre = dict(self.env)
            body_env, term = self._block(s.body, dict(self.env))
            return (pre if term else _merge([pre, body_env], self.st.paths)), False
        return self._block(s.body, self.env)

    def _s_leave(self, s: ast.Raise | ast.Continue | ast.Break, env: dict) -> tuple[dict, bool]:
        if type(s) is ast.Raise and s.exc is not None:
            self._ev(s.exc)
        return self.env, True

    def _s_def(self, s: ast.FunctionDef | ast.AsyncFunctionDef, env: dict) -> tuple[dict, bool]:
        q = f"{self.st.qualname}.<locals>.{s.name}"
        if q not in self.st.seen_nested:
            self.st.seen_nested.add(q)
            self.st.nested.append((s, q))
        if self.st.closures is None:
            self.st.closures = {}
        self.st.closures[s.name] = [q, s, None, False]
        self.scopes[-1].locals[s.name] = f"@{q}"
        self._rebound(s.name)
        self.env[s.name] = EMPTY
        return self.env, False

    def _s_match(self, s: ast.Match, env: dict) -> tuple[dict, bool]:
        subj = self._ev(s.subject)
        outs = []
        for case in s.cases:
            e = dict(env)
            for n in ast.walk(case.pattern):
                name = getattr(n, "name", None)
                if isinstance(name, str):
                    e[name] = subj
            e2, term = self._block(case.body, e)
            if not term:
                outs.append(e2)
        outs.append(env)
        return _merge(outs, self.st.paths), False

    def _s_import(self, s: ast.Import | ast.ImportFrom, env: dict) -> tuple[dict, bool]:
        self._local_import(s)
        return self.env, False

    def _s_inert(self, s: ast.stmt, env: dict) -> tuple[dict, bool]:
        return self.env, False

    def _s_assert(self, s: ast.Assert, env: dict) -> tuple[dict, bool]:
        # not a guard: `python -O` strips asserts
        self._ev(s.test)
        return self.env, False

    def _s_other(self, s: ast.stmt, env: dict) -> tuple[dict, bool]:
        for child in ast.iter_child_nodes(s):
            if isinstance(child, ast.expr):
                self._ev(child)
        return self.env, False

    def _exit(self, env: dict) -> None:
        """A normal exit (return / end of body): which parameters are clean here?"""
        st = self.st
        done = st.exit_clean
        if done is not None and not done:
            return  # no parameter is clean at every exit: nothing left to intersect
        clean = {p for p in st.param_names if not env.get(p)} if st.param_names else set()
        st.exit_clean = clean if done is None else (done & clean)

    def _maybe_validated(self, call: ast.Call) -> None:
        """`validate_sort(sort)` as a statement: after it, `sort` carries its atoms only in case
        the callee turns out (in solve.py) not to validate that parameter: `g:<call>:<arg>|atom`."""
        j = self.st.call_ids.get((call.lineno, call.col_offset, call.end_lineno, call.end_col_offset))
        if j is None:
            return
        env = self.env
        # positional slots, then keywords (in order: a name passed twice sees its first rewrite)
        for i, a in enumerate(call.args):
            if type(a) is ast.Name and env.get(a.id):
                env[a.id] = frozenset(x if x.startswith("g:") else f"g:{j}:{i}|{x}" for x in env[a.id])
        for k in call.keywords:
            a = k.value
            if k.arg and type(a) is ast.Name and env.get(a.id):
                env[a.id] = frozenset(x if x.startswith("g:") else f"g:{j}:{k.arg}|{x}" for x in env[a.id])

    def _predicate_return(self, value: ast.expr) -> None:
        """`return value in SORTS`, `return bool(SLUG_RE.fullmatch(s))`: what each parameter
        holds where this return gives a true value (a falsy constant constrains nothing). A
        parameter is tested by the function when every such return has it clean."""
        st = self.st
        if not st.param_names or (isinstance(value, ast.Constant) and not value.value):
            return
        if st.pred is not None and not st.pred:
            return  # some return already accepts every parameter as it is
        if type(value) in _EVALUATING_GUARDS:
            env = dict(self.env)  # (taken before the guard, which may evaluate parts of the value)
            on_true, _ = self._guard(value)
            self._apply_clean(env, on_true)
        else:  # a test `_guard` reads without evaluating anything: a copy only to clean in
            on_true, _ = self._guard(value)
            env = self.env
            if on_true:
                env = dict(env)
                self._apply_clean(env, on_true)
        # what each parameter holds here (joined with the earlier returns), keeping those that
        # no longer carry themselves
        pred: dict[str, frozenset[str]] = {}
        if st.pred is None:
            for p in st.param_names:
                v = env.get(p, EMPTY)
                if f"p:{p}" not in v:
                    pred[p] = v
        else:
            for p, old in st.pred.items():  # (every key is a parameter name)
                v = _union2(old, env.get(p, EMPTY))
                if f"p:{p}" not in v:
                    pred[p] = v
        st.pred = pred

    def _apply_clean(self, env: dict, names) -> dict:
        """Clean what a guard checked in `env`; a deferred entry (`?j:slot:name`, a project
        predicate judged by its body in solve.py) marks the atoms instead. Returns the old values."""
        saved: dict = {}
        if not names:
            return saved
        for n in sorted(names):  # sets: a fixed order keeps nested `q:` markers independent of hashing
            if n[0] == "?":
                j, slot, name = n[1:].split(":", 2)
                old = env.get(name)
                if old:
                    saved.setdefault(name, old)
                    env[name] = frozenset(f"q:{j}:{slot}|{x}" for x in old)
            elif n in env or not n.isidentifier():
                if not n.isidentifier():
                    self.st.paths = True
                saved.setdefault(n, env.get(n))
                env[n] = EMPTY
        return saved

    def _local_import(self, s: ast.Import | ast.ImportFrom) -> None:
        """`from .jobs import Job` inside a function: bind the name like a module-level import."""
        locals_ = self.scopes[-1].locals
        if isinstance(s, ast.ImportFrom):
            base = "." * (s.level or 0) + (s.module or "")
            sep = "" if base.endswith(".") or not base else "."
            for alias in s.names:
                if alias.name != "*":
                    locals_[alias.asname or alias.name] = f"{base}{sep}{alias.name}"
                    self.env.pop(alias.asname or alias.name, None)
        else:
            for alias in s.names:
                name = alias.asname or alias.name.split(".")[0]
                locals_[name] = alias.name if alias.asname else name
                self.env.pop(name, None)
        self._rebound()

    def _assign(self, target: ast.AST, v: frozenset[str], value: ast.AST | None) -> None:
        tt = type(target)
        if tt is ast.Name:
            self._assign_name(target.id, v, value)
            return
        env = self.env
        st = self.st
        if value is not None and (tt is ast.Attribute or tt is ast.Subscript) and self._registry_shaped(target) \
                and self.has_registry:
            self._registry_store(target, value)
        if tt is ast.Tuple or tt is ast.List:
            if type(value) in (ast.Tuple, ast.List) and len(value.elts) == len(target.elts):
                for t, e in zip(target.elts, value.elts):
                    self._assign(t, self._ev(e), e)
            elif len(v) == 1 and next(iter(v)).startswith("r:") and "#" not in next(iter(v)) \
                    and not any(type(t) is ast.Starred for t in target.elts):
                r = next(iter(v))
                for i, t in enumerate(target.elts):
                    self._assign(t, frozenset((f"{r}#{i}",)), None)
            else:
                for t in target.elts:
                    self._assign(t.value if type(t) is ast.Starred else t, v, None)
        elif tt is ast.Attribute:
            if type(target.value) is ast.Name:
                st.paths = True
                env[f"{target.value.id}.{target.attr}"] = v
                if target.value.id == st.self_name and v and st.self_name:
                    st.tainted_attrs.add(target.attr)
                    w = st.facts.attr_writes
                    if w is None:
                        w = st.facts.attr_writes = {}
                    w[target.attr] = _union2(w.get(target.attr, EMPTY), v)
        elif tt is ast.Subscript:
            base = target.value
            key = self._ev(target.slice)
            if type(base) is ast.Name:
                if not self._chosen_key(target.slice):
                    st.const_key_dicts.discard(base.id)
                env[base.id] = _union((env.get(base.id, EMPTY), v, key))
            elif type(base) is ast.Attribute and type(base.value) is ast.Name:
                k = f"{base.value.id}.{base.attr}"
                st.paths = True
                env[k] = _union((env.get(k, EMPTY), v, key))
        elif tt is ast.Starred:
            self._assign(target.value, v, None)

    def _assign_name(self, name: str, v: frozenset[str], value: ast.AST | None) -> None:
        env = self.env
        st = self.st
        if st.registry_names:
            st.registry_names.pop(name, None)
        vt = type(value)
        if value is not None and vt in (ast.Subscript, ast.Attribute, ast.Await) \
                and self._registry_shaped(value.value if vt is ast.Await else value) and self.has_registry:
            k = self._registry_key(value.value if vt is ast.Await else value)
            if k is not None:
                if st.registry_names is None:
                    st.registry_names = {}
                st.registry_names[name] = k
        env[name] = v
        if name in st.param_names:
            st.reassigned.add(name)
        if st.item_guards:  # a checked item of the old value says nothing about the new one
            for k in [k for k in env if k.startswith((f"{name}[", f"{name}."))]:
                del env[k]
        # what is known of the value's shape: forget the old, learn the new (`shaped` holds
        # every name that may be in one of these, so most assignments skip the nine removals)
        shaped = st.shaped
        if name in shaped:
            shaped.discard(name)
            st.list_names.discard(name)
            st.prefix_names.discard(name)
            st.const_names.discard(name)
            st.parsed_of.pop(name, None)
            st.guard_vars.pop(name, None)
            st.fileobj_of.pop(name, None)
            st.normalized.discard(name)
            st.const_key_dicts.discard(name)
            st.const_keys.discard(name)
        if st.closures:
            st.closures.pop(name, None)
        if value is None:
            self.scopes[-1].locals[name] = f"${name}"
            self._rebound(name)
            return
        if vt is ast.Call:
            # `Summarizer.ref` of a call is its callee's ref + "()" (the callee was just resolved)
            fr = self._func_ref(value.func)
            self.scopes[-1].locals[name] = (None if fr is None else f"{fr}()") or f"${name}"
        else:
            self.scopes[-1].locals[name] = self.ref(value) or f"${name}"
        self._rebound(name)
        # What the value's shape tells, by its type. The tests run in this order for every type:
        # guard, list, fixed prefix, constant collection, constant keys (`_fixed` and
        # `_const_keys` may evaluate parts, recording sources). A test is left out where it is
        # False for that type without evaluating anything.
        if vt is ast.Call:
            func = value.func
            if fr is not None and _callee_root(func) not in (name, None):
                # `f(...)` / `obj.f(...)` with another name than the one just bound: its ref
                # (`Summarizer.ref` follows the name) is still `fr`
                vref = self.func_refs[func] = fr
            else:
                vref = self._func_ref(func)  # the new binding may change it (`x = x.strip()`)
            m = self.m
            if value.args and type(value.args[0]) is ast.Name and vref in m.url_parsers:
                st.parsed_of[name] = value.args[0].id
                shaped.add(name)
            if vref in m.file_objects:
                st.fileobj_of[name] = value
                shaped.add(name)
            if vref in m.normalizing_calls or (type(func) is ast.Attribute and func.attr in m.normalizing_methods):
                st.normalized.add(name)
                shaped.add(name)
            if vref in ("shlex.split", "builtins.list", "builtins.tuple"):
                st.list_names.add(name)
                shaped.add(name)
            self._guard_shape(name, value)
            ft = type(func)
            if ft is ast.Attribute:
                # of a call, only `"...".format(...)` can be a fixed prefix
                if func.attr == "format" and self._fixed(value):
                    self._add_shape(st.prefix_names, name)
            elif ft is ast.Name:
                # and only `frozenset(...)`, `set(...)`, `tuple(...)` / `dict(...)` constant ones
                self._collection_shape(name, value)
        elif vt is ast.Name:
            if self._fixed(value):
                self._add_shape(st.prefix_names, name)
            if self._const_keys(value):
                self._add_shape(st.const_key_dicts, name)
        elif vt is ast.Constant or vt is ast.JoinedStr or vt is ast.BinOp:
            if self._fixed(value):
                self._add_shape(st.prefix_names, name)
        elif vt is ast.Compare or vt is ast.BoolOp or vt is ast.UnaryOp:
            self._guard_shape(name, value)
        elif vt is ast.List or vt is ast.Tuple:
            self._add_shape(st.list_names, name)
            if _const_collection(value):
                self._add_shape(st.const_names, name)
        elif vt is ast.ListComp:
            self._add_shape(st.list_names, name)
        elif vt is ast.Set:
            if _const_collection(value):
                self._add_shape(st.const_names, name)
        elif vt is ast.Dict:
            self._collection_shape(name, value)
        elif vt is ast.DictComp and self._const_keys(value):
            self._add_shape(st.const_key_dicts, name)

    def _collection_shape(self, name: str, value: ast.Call | ast.Dict) -> None:
        """A collection of constants (`const_names`); a mapping whose keys the code chose (`const_key_dicts`)."""
        if _const_collection(value):
            self._add_shape(self.st.const_names, name)
        if self._const_keys(value):
            self._add_shape(self.st.const_key_dicts, name)

    def _add_shape(self, names: set[str], name: str) -> None:
        names.add(name)
        self.st.shaped.add(name)

    def _guard_shape(self, name: str, value: ast.expr) -> None:
        g = self._guard(value)
        if g[0] or g[1]:
            self.st.guard_vars[name] = g  # `ok = url_has_allowed_host_and_scheme(url)` ... `if ok:`
            self.st.shaped.add(name)

    def _registry_store(self, target: ast.Attribute | ast.Subscript, value: ast.AST) -> None:
        """`app["repo"] = Repo(pool)`, `app.state.repo = ...`: kept in `FuncFacts.registry`."""
        k = self._registry_key(target, store=True)
        if k is not None:
            r = self._stored_ref(value)
            if r:
                facts = self.st.facts
                if facts.registry is None:
                    facts.registry = {}
                facts.registry[k] = r

    def _if(self, s: ast.If, env: dict) -> tuple[dict, bool]:
        self._ev(s.test)
        on_true, on_false = self._guard(s.test)
        e_true = dict(self.env)
        if on_true:
            self._apply_clean(e_true, on_true)
        # the false branch takes the env itself (no copy): nothing else reads it after this
        # statement (the block goes on with what the statement returns)
        e_false = self.env
        if on_false:
            self._apply_clean(e_false, on_false)
        e1, t1 = self._block(s.body, e_true)
        e2, t2 = self._block(s.orelse, e_false) if s.orelse else (e_false, False)
        if t1 and t2:
            return e1, True
        if t1:
            return e2, False
        if t2:
            return e1, False
        return _merge([e1, e2], self.st.paths), False

    def _loop(self, s, env: dict) -> tuple[dict, bool]:
        # a second pass over the body only when a variable live before the loop gained atoms
        # in the first one (what one iteration feeds the next)
        if isinstance(s, ast.While):
            self._ev(s.test)
            before = dict(self.env)
            e1, _ = self._block(s.body, dict(self.env))
            merged = _merge([env, e1], self.st.paths)
            out = merged
            if _carried(before, merged):
                e2, _ = self._block(s.body, dict(merged))
                out = _merge([merged, e2], self.st.paths)
        else:
            it = self._ev(s.iter)
            if isinstance(s.target, ast.Name):
                r = self.ref(s.iter)
                self.scopes[-1].locals[s.target.id] = f"{r}[]" if r else f"${s.target.id}"
                self._rebound(s.target.id)
            self._assign_loose(s.target, it)
            if isinstance(s.target, ast.Name):
                if not it and self._key_collection(s.iter):
                    self.st.const_keys.add(s.target.id)
                    self.st.shaped.add(s.target.id)
                else:
                    self.st.const_keys.discard(s.target.id)
            before = dict(self.env)
            e1, _ = self._block(s.body, dict(self.env))
            merged = _merge([env, e1], self.st.paths)
            out = merged
            if _carried(before, merged):
                self.env = merged
                self._assign_loose(s.target, it)
                e2, _ = self._block(s.body, dict(self.env))
                out = _merge([merged, e2], self.st.paths)
        e3, _t3 = self._block(s.orelse, out)
        return e3, False

    def _assign_loose(self, target: ast.AST, v: frozenset[str]) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = v
            self.st.list_names.discard(target.id)
            self.st.prefix_names.discard(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._assign_loose(t.value if isinstance(t, ast.Starred) else t, v)
        else:
            self._assign(target, v, None)

    def _try(self, s, env: dict) -> tuple[dict, bool]:
        pre = dict(env)
        body_env, body_term = self._block(s.body, dict(env))
        # an exception can leave the body anywhere: a handler starts from any state it passed
        entry = _merge([pre, body_env], self.st.paths)
        outs = []
        if not body_term:
            e2, t2 = self._block(s.orelse, body_env)
            if not t2:
                outs.append(e2)
        for h in s.handlers:
            he = dict(entry)
            if h.name:
                he[h.name] = EMPTY
            e3, t3 = self._block(h.body, he)
            if not t3:
                outs.append(e3)
        if not outs:
            if s.finalbody:
                self._block(s.finalbody, dict(entry))
            return entry, True
        out = _merge(outs, self.st.paths)
        if s.finalbody:
            return self._block(s.finalbody, out)
        return out, False

    # ----- guards ---------------------------------------------------------------------------
    def _guard(self, test: ast.expr) -> tuple[set[str], set[str]]:
        """Names made clean when `test` is true, and when it is false."""
        t = type(test)  # the most frequent tests first
        if t is ast.Call:
            if len(test.args) == 1 and not test.keywords and self._func_ref(test.func) == "builtins.bool":
                return self._guard(test.args[0])
            return self._guard_call(test), set()
        if t is ast.Compare:
            if len(test.ops) == 1 and type(test.left) is ast.Call and type(test.ops[0]) in (ast.Is, ast.IsNot) \
                    and type(test.comparators[0]) is ast.Constant and test.comparators[0].value is None:
                got = self._guard_call(test.left)  # `PATTERN.fullmatch(s) is not None`
                return (got, set()) if type(test.ops[0]) is ast.IsNot else (set(), got)
            return self._guard_compare(test)
        if t is ast.Name:
            # a falsy value ("", 0, None, {}) carries nothing: the false branch cleans the name
            g = self.st.guard_vars.get(test.id)
            return (set(g[0]), set(g[1]) | {test.id}) if g else (set(), {test.id})
        if t is ast.UnaryOp:
            if type(test.op) is ast.Not:
                on_true, on_false = self._guard(test.operand)
                return on_false, on_true
            return set(), set()
        if t is ast.BoolOp:
            parts = [self._guard(v) for v in test.values]
            if type(test.op) is ast.And:
                return set().union(*(p[0] for p in parts)), set.intersection(*(p[1] for p in parts))
            return set.intersection(*(p[0] for p in parts)), set().union(*(p[1] for p in parts))
        if t is ast.NamedExpr:
            return self._guard(test.value)
        return set(), set()

    def _guard_compare(self, test: ast.Compare) -> tuple[set[str], set[str]]:
        on_true: set[str] = set()
        on_false: set[str] = set()
        left = test.left
        for op, right in zip(test.ops, test.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                subject = self._subject(left)
                if subject and self._is_constant_collection(right):
                    (on_true if isinstance(op, ast.In) else on_false).add(subject)
            elif isinstance(op, (ast.Eq, ast.NotEq)):
                for a, b in ((left, right), (right, left)):
                    subject = self._subject(a)
                    if subject and self._known_value(b):
                        (on_true if isinstance(op, ast.Eq) else on_false).add(subject)
            elif isinstance(op, (ast.Lt, ast.LtE)):
                # left < right: left is bounded above when true; right is bounded below (not enough)
                if isinstance(left, ast.Name):
                    on_true.add(left.id)
                if isinstance(right, ast.Name):
                    on_false.add(right.id)
            elif isinstance(op, (ast.Gt, ast.GtE)):
                if isinstance(left, ast.Name):
                    on_false.add(left.id)
                if isinstance(right, ast.Name):
                    on_true.add(right.id)
            left = right
        return on_true, on_false

    def _known_value(self, node: ast.AST) -> bool:
        """A value the client does not choose, which an equality test pins the subject to: a
        constant (not None), or a clean expression such as the server's own host
        (`urlparse(url).netloc == request.get_host()`: a same-host check)."""
        if isinstance(node, ast.Constant):
            return node.value is not None
        if isinstance(node, (ast.Attribute, ast.Call)):
            return not self._ev(node)
        return False

    def _subject(self, node: ast.AST) -> str | None:
        """The local a test constrains: `x`, `x.lower()`, `urlparse(x).netloc`, `parts.hostname`,
        or an item such as `data["sort"]` / `request.args.get("sort")`."""
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, (ast.Subscript, ast.Call)):
            k = self._path_key(node)
            if k is not None:
                self.st.item_guards = True
                return k
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args \
                and node.func.attr in ("lower", "upper", "strip", "casefold"):
            return self._subject(node.func.value)
        if isinstance(node, ast.Attribute) and node.attr in ("netloc", "hostname"):
            base = node.value
            if isinstance(base, ast.Name):
                return self.st.parsed_of.get(base.id)
            if isinstance(base, ast.Call) and base.args and isinstance(base.args[0], ast.Name) \
                    and self.ref(base.func) in self.m.url_parsers:
                return base.args[0].id
        return None

    def _guard_call(self, call: ast.Call) -> set[str]:
        ref = self._func_ref(call.func)
        m = self.m
        args = call.args
        rflags = self.ref_flags.get(ref)
        if rflags is None:
            rflags = self._ref_flags(ref)
        if rflags & _R_GUARD:
            if ref.endswith("fullmatch") and len(args) >= 2:
                return self._checked(args[1:2])
            kw = [k.value for k in call.keywords if k.arg in ("url", "value", "string", "obj")]
            return self._checked(args[:1] + kw)
        if rflags & _R_ANCHORED and len(args) >= 2:
            if isinstance(args[0], ast.Constant) and isinstance(args[0].value, str) and anchored(args[0].value):
                return self._checked(args[1:2])
            if isinstance(args[0], ast.Name) and args[0].id in self.regex_consts and anchored(self.regex_consts[args[0].id]):
                return self._checked(args[1:2])
            return set()
        if type(call.func) is ast.Attribute and self._meth_bits(call.func.attr) & _M_GUARDING:
            meth = call.func.attr
            recv = call.func.value
            if meth in m.containment_methods:
                # a containment check holds only on a normalised path (no `..` left to escape)
                if type(recv) is ast.Name and recv.id in self.st.normalized and args and not self._ev(args[0]):
                    return {recv.id}
                return set()
            if meth in m.guard_methods:
                if meth == "fullmatch":
                    return self._checked(args[:1])
                return self._checked([recv])
            if meth in m.anchored_regex_methods and isinstance(recv, ast.Name) and recv.id in self.regex_consts \
                    and anchored(self.regex_consts[recv.id]):
                return self._checked(args[:1])
        if rflags & _R_PROJECT:  # (`_possibly_project`, never of an empty ref)
            # a project predicate: solve.py judges it by its body (`return value in SORTS`), or by
            # its name (`is_safe_url(target)`) when the body is not in the project
            out: set[str] = set()
            j = self.st.call_ids.get((call.lineno, call.col_offset, call.end_lineno, call.end_col_offset))
            if j is not None:
                env = self.env
                for i, a in enumerate(args):
                    if type(a) is ast.Name and env.get(a.id):
                        out.add(f"?{j}:{i}:{a.id}")
                for k in call.keywords:
                    a = k.value
                    if k.arg and type(a) is ast.Name and env.get(a.id):
                        out.add(f"?{j}:{k.arg}:{a.id}")
            guard_named = self.guard_name_cache.get(ref)
            if guard_named is None:
                guard_named = _remember(self.guard_name_cache, ref,
                                        bool(self.m.guard_name.search(ref.rsplit(".", 1)[-1].lstrip("@"))))
            if guard_named:
                # access paths (`request.GET.get("next")`) still by the name alone
                kw = [k.value for k in call.keywords if k.arg in ("url", "value", "target", "path", "name")]
                out |= {n for n in self._checked([a for a in args[:1] + kw if not isinstance(a, ast.Name) or j is None])}
            return out
        return set()

    def _checked(self, nodes) -> set[str]:
        """What a guard call checks: a local (`url`), or an access path on data, as the env keys
        later reads of the same path look up: `request.GET.get("next")` / `request.GET["next"]`
        -> `request.GET['next']`, `form_data.url` -> `form_data.url`. A path checked in the test
        is clean in the branch it guards (and after it when the failing branch leaves), exactly
        as a local variable."""
        out: set[str] = set()
        for n in nodes:
            if isinstance(n, ast.Name):
                out.add(n.id)
                continue
            k = self._path_key(n) if isinstance(n, (ast.Subscript, ast.Call)) else _target_key(n)
            if k is not None:
                self.st.item_guards = True
                out.add(k)
        return out

    def _is_constant_collection(self, node: ast.expr) -> bool:
        if _const_collection(node):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "keys":
            node = node.func.value
        if isinstance(node, ast.Name):
            if node.id in self.st.const_names:
                return True
            if node.id in self.env:
                return False
            r = self.name_ref(node.id)
            return not r.startswith("$") and not r.startswith("builtins.")
        if isinstance(node, ast.Attribute):
            r = self.ref(node)
            if r is None or r.startswith("$"):
                return False
            return not (isinstance(node.value, ast.Name) and node.value.id in self.env)
        return False

    # ----- expressions ----------------------------------------------------------------------
    def _ev(self, node: ast.AST | None) -> frozenset[str]:
        t = type(node)
        if t is ast.Name:
            v = self.env.get(node.id, EMPTY)
            if not v and self.st.closures and node.id in self.st.closures:
                return self._closure_ref(node)
            return v
        if t is ast.Constant:
            return EMPTY
        # one dict lookup instead of a chain of type tests (see _EV at the end of the class)
        try:
            f = _EV[t]
        except KeyError:  # not an ast node type known at import: carries nothing
            return EMPTY
        return f(self, node)

    def _ev_nothing(self, node: ast.AST | None) -> frozenset[str]:
        return EMPTY

    def _ev_value(self, node: ast.Await | ast.Starred | ast.FormattedValue | ast.Yield | ast.YieldFrom) -> frozenset[str]:
        return self._ev(node.value)

    def _ev_joined(self, node: ast.JoinedStr) -> frozenset[str]:
        return self._concat([v.value if type(v) is ast.FormattedValue else v for v in node.values])

    def _ev_binop(self, node: ast.BinOp) -> frozenset[str]:
        op = type(node.op)
        if op is ast.Add and _stringy(node):
            return self._concat(_add_terms(node))
        if op is ast.Mod and type(node.left) is ast.Constant and isinstance(node.left.value, str):
            right = node.right
            values = right.elts if type(right) is ast.Tuple else [right]
            texts = _PERCENT.split(node.left.value)
            if len(texts) == len(values) + 1 and type(right) is not ast.Dict:
                return self._concat(_interleave(texts, values))
        return _union2(self._ev(node.left), self._ev(node.right))

    def _ev_elts(self, node: ast.List | ast.Tuple | ast.Set) -> frozenset[str]:
        ev = self._ev
        return _union([ev(e) for e in node.elts])

    def _ev_dict(self, node: ast.Dict) -> frozenset[str]:
        ev = self._ev
        return _union([ev(k) for k in node.keys if k is not None] + [ev(v) for v in node.values])

    def _ev_boolop(self, node: ast.BoolOp) -> frozenset[str]:
        ev = self._ev
        return _union([ev(v) for v in node.values])

    def _ev_ifexp(self, node: ast.IfExp) -> frozenset[str]:
        self._ev(node.test)
        on_true, on_false = self._guard(node.test)
        return _union2(self._guarded(node.body, on_true), self._guarded(node.orelse, on_false))

    def _ev_compare(self, node: ast.Compare) -> frozenset[str]:
        # evaluated for what the operands record (constants, the most frequent operands, record nothing)
        ev = self._ev
        if type(node.left) is not ast.Constant:
            ev(node.left)
        for c in node.comparators:
            if type(c) is not ast.Constant:
                ev(c)
        return EMPTY

    def _ev_unaryop(self, node: ast.UnaryOp) -> frozenset[str]:
        v = self._ev(node.operand)
        return EMPTY if type(node.op) is ast.Not else v

    def _ev_named(self, node: ast.NamedExpr) -> frozenset[str]:
        v = self._ev(node.value)
        self._assign(node.target, v, node.value)
        return v

    def _ev_slice(self, node: ast.Slice) -> frozenset[str]:
        return _union2(self._ev(node.lower), self._ev(node.upper))

    def _lambda(self, node: ast.Lambda) -> frozenset[str]:
        """A lambda's body runs with the enclosing variables (`run_in_executor(None, lambda:
        open(path))`): its sinks are checked here, in the enclosing frame; its own parameters are
        unknown (clean). The lambda itself is a function, not data."""
        env = self.env
        a = node.args
        names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
        names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
        saved = {n: env.get(n) for n in names}
        for n in names:
            env[n] = EMPTY
        try:
            self._ev(node.body)
        finally:
            for n, old in saved.items():
                if old is None:
                    env.pop(n, None)
                else:
                    env[n] = old
        return EMPTY

    def _concat(self, parts: list[ast.AST]) -> frozenset[str]:
        """A string built from parts: data after a prefix that fixes where a URL points (a local
        path, a scheme+host, a query) gets the TAIL flavor: it cannot make a redirect or an
        outbound request go elsewhere (it still counts for every other sink)."""
        acc = ""
        fixed = False
        out = []
        for p in parts:
            if isinstance(p, ast.Constant):
                if not fixed and isinstance(p.value, str):
                    acc += p.value
                    fixed = _fixes(acc)
                continue
            atoms = self._ev(p)
            if atoms:
                out.append(_tail(atoms) if fixed else atoms)
                if not fixed:
                    acc += "\x00"
            elif not fixed:
                acc += "X"
                fixed = _fixes(acc)
        return _union(out)

    def _guarded(self, node: ast.AST, clean: set[str]) -> frozenset[str]:
        """The value of `node` where the names in `clean` passed a guard (`v if v in OK else d`)."""
        env = self.env
        saved = self._apply_clean(env, clean)
        try:
            return self._ev(node)
        finally:
            for n, old in saved.items():
                if old is None:
                    env.pop(n, None)
                else:
                    env[n] = old

    def _comprehension(self, node) -> frozenset[str]:
        saved = {}
        env = self.env
        for gen in node.generators:
            it = self._ev(gen.iter)
            for n in ast.walk(gen.target):
                if isinstance(n, ast.Name):
                    if n.id not in saved:
                        saved[n.id] = env.get(n.id)
                    env[n.id] = it
            for cond in gen.ifs:
                self._ev(cond)
                on_true, _ = self._guard(cond)
                for n, old in self._apply_clean(env, [n for n in on_true if n[0] == "?" or n in env]).items():
                    saved.setdefault(n, old)
        if isinstance(node, ast.DictComp):
            v = _union2(self._ev(node.key), self._ev(node.value))
        else:
            v = self._ev(node.elt)
        for k, old in saved.items():
            if old is None:
                env.pop(k, None)
            else:
                env[k] = old
        return v

    # sources --------------------------------------------------------------------------------
    def _request_obj(self, node: ast.AST) -> int:
        """1: a request object passed to the function; 2: the framework's global request."""
        if isinstance(node, ast.Name):
            if node.id in self.st.request_names:
                return 1
            if node.id in self.env or node.id in self.scopes[-1].params:
                return 0
            r = self.name_ref(node.id)
            return 2 if r in self.m.global_requests else 0
        if isinstance(node, ast.Attribute) and node.attr == "request" and isinstance(node.value, ast.Name):
            if node.value.id == self.st.self_name:
                return 1
            if self.ref(node) in self.m.global_requests:  # `import flask` ... `flask.request.args`
                return 2
        return 0

    def _source_attr(self, node: ast.Attribute) -> str | None:
        kind = self._request_obj(node.value)
        if kind == 1 and node.attr in self.m.request_attrs:
            return ""
        if kind == 2 and node.attr in self.m.global_request_attrs:
            return ""
        if node.attr == self.m.view_kwargs_attr and isinstance(node.value, ast.Name) \
                and node.value.id == self.st.self_name and self.st.self_name:
            return "kwargs"
        return None

    def _source_call(self, node: ast.Call) -> bool:
        f = node.func
        if not isinstance(f, ast.Attribute) or f.attr not in self.source_methods:
            return False
        kind = self._request_obj(f.value)
        if kind == 1:
            return f.attr in self.m.request_methods
        if kind == 2:
            return f.attr in self.m.global_request_methods
        return False

    def _new_source(self, node: ast.AST, key: str = "") -> frozenset[str]:
        pos = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
        i = self.st.source_ids.get(pos)
        if i is None:
            i = len(self.st.facts.sources)
            self.st.source_ids[pos] = i
            self.st.facts.sources.append((self._seg(node), node.lineno, self.lines.char_col(node.lineno, node.col_offset), key))
        return frozenset((f"s:{i}",))

    def _seg(self, node: ast.AST, limit: int = 60) -> str:
        line = self.lines.line(node.lineno)
        if node.end_lineno == node.lineno:
            if line.isascii():  # byte columns are character columns
                text = line[node.col_offset:node.end_col_offset]
            else:
                text = line.encode("utf-8")[node.col_offset:node.end_col_offset].decode("utf-8", "replace")
        else:
            text = line.encode("utf-8")[node.col_offset:].decode("utf-8", "replace").rstrip() + " ..."
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def _kwargs_key(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return f"kwargs:{node.value}"
        return "kwargs:"

    def _attribute(self, node: ast.Attribute) -> frozenset[str]:
        attr = node.attr
        if attr in self.source_attrs:  # else `_source_attr` is None whatever the base is
            src = self._source_attr(node)
            if src is not None:
                return self._new_source(node, src)
        if attr in self.m.validated_attrs:
            self._ev(node.value)
            return EMPTY
        base = node.value
        if type(base) is ast.Name:
            env = self.env
            name = base.id
            st = self.st
            if st.paths:  # else no env of this function holds an access path such as "self.x"
                v = env.get(f"{name}.{attr}")
                if v is not None:
                    return v
            if name == st.self_name and st.self_name:
                if attr in st.tainted_attrs:
                    return frozenset((f"a:{attr}",))
                cls = self.scopes[-1].class_qualname
                if cls and self._is_property(f"{cls}.{attr}"):
                    # `self.search_term` computed by a @property: a call of that method
                    j = self._record(node, f"@{cls}().{attr}", [], {}, EMPTY, EMPTY, "self", attr)
                    st.facts.calls[j].hints["self_recv"] = True
                    return frozenset((f"r:{j}",))
            v = env.get(name, EMPTY)
            if len(v) == 1 and f"p:{name}" in v:
                return frozenset((f"p:{name}.{attr}",))
            return v
        # (the usual receivers straight to their handlers rather than through `_ev`)
        tb = type(base)
        if tb is ast.Attribute:
            return self._attribute(base)
        return self._call(base) if tb is ast.Call else self._ev(base)

    def _is_property(self, qualname: str) -> bool:
        got = self.property_cache.get(qualname)
        if got is None:
            fn = self.module.functions.get(qualname)
            got = self.property_cache[qualname] = fn is not None and any(
                (d.ref or "").endswith(("builtins.property", "cached_property")) for d in fn.decorators)
        return got

    def _path_key(self, node: ast.AST) -> str | None:
        """`data["sort"]`, `request.args.get("sort")`: an item a guard can check and a later read
        can find again in the environment, by its text."""
        if isinstance(node, ast.Subscript):
            base, key = node.value, node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and node.args:
            base, key = node.func.value, node.args[0]
        else:
            return None
        if not (isinstance(key, ast.Constant) and isinstance(key.value, (str, int))):
            return None
        parts = []
        while isinstance(base, ast.Attribute):
            parts.append(base.attr)
            base = base.value
        if not isinstance(base, ast.Name):
            return None
        parts.append(base.id)
        return ".".join(reversed(parts)) + f"[{key.value!r}]"

    def _subscript(self, node: ast.Subscript) -> frozenset[str]:
        if self.st.item_guards:
            k = self._path_key(node)
            if k is not None and k in self.env:
                self._ev(node.value)
                return self.env[k]
        base = node.value
        if type(base) is ast.Attribute and base.attr in self.source_attrs:
            src = self._source_attr(base)
            if src is not None:
                return self._new_source(node, self._kwargs_key(node.slice) if src == "kwargs" else "")
        sl = node.slice
        if isinstance(sl, ast.Slice):
            upper = sl.upper
            if upper is not None:
                # the row count is upper - lower: `qs[offset:offset + size]` counts `size` rows
                lower = sl.lower
                terms = _add_terms(upper)
                if lower is not None:
                    low = ast.dump(lower)
                    terms = [t for t in terms if ast.dump(t) != low]
                atoms = _union([self._ev(t) for t in terms])
                self._ev(sl)
                if atoms:
                    r = self.ref(base) or ""
                    if any(h in r for h in ("objects", "query", "filter()", "all()", "order_by()", "select(")):
                        self._record(node, "<slice>", [atoms], {}, EMPTY, EMPTY, r, self._seg(node, 50))
            return self._ev(base)
        self._ev(sl)
        if self._const_mapping(base):
            return EMPTY
        return self._ev(base)

    def _const_mapping(self, node: ast.AST) -> bool:
        """A module-level constant table (a literal dict/list, or an UPPER_CASE name)."""
        if not isinstance(node, ast.Name):
            return False
        name = node.id
        if name in self.st.const_names:
            return True
        if name in self.env or name in self.scopes[-1].params:
            return False
        r = self.name_ref(name)
        if r.startswith(("$", "builtins.")):
            return False
        a = self.module.assigns.get(name)
        if a is not None and a.value[0] in ("dict", "list"):
            return True
        return name.isupper()

    def _call(self, node: ast.Call) -> frozenset[str]:
        func = node.func
        ft = type(func)
        st = self.st
        ev = self._ev
        meth = None
        mflags = 0  # what the catalog says of the method name (_M_* bits)
        recv = EMPTY
        recv_ref = ""
        module_recv = False
        if ft is ast.Attribute:
            meth = func.attr
            mflags = self.meth_flags.get(meth)
            if mflags is None:
                mflags = self._meth_flags(meth)
            if mflags & _M_SOURCE and self._source_call(node):
                return self._new_source(node)
            base = func.value
            base_is_name = type(base) is ast.Name
            # `request.GET.get("q")`, `self.kwargs.get("slug")`: the read is the source
            if meth == "get" and st.item_guards:
                k = self._path_key(node)
                if k is not None and k in self.env:
                    return self.env[k]
            if mflags & _M_GETTER and type(base) is ast.Attribute and base.attr in self.source_attrs:
                src = self._source_attr(base)
                if src is not None:
                    for a in node.args:
                        ev(a)
                    key = self._kwargs_key(node.args[0]) if src == "kwargs" and node.args else ""
                    atoms = self._new_source(node, key)
                    for k in node.keywords:  # Flask / Werkzeug `args.get("page", type=int)` converts
                        if k.arg == "type" and self.ref(k.value) in self.m.numeric_calls:
                            return _numeric(atoms)
                    return atoms
            if meth == "get" and self._const_mapping(base):
                # a lookup in a constant table returns one of its constants (or the default)
                return _union([ev(a) for a in node.args[1:]] + [ev(k.value) for k in node.keywords])
            if base_is_name:  # (as `_ev` and `Summarizer.ref` take a name)
                recv = self.env.get(base.id, EMPTY)
                if not recv and st.closures and base.id in st.closures:
                    recv = self._closure_ref(base)
                base_ref = self.name_ref(base.id)
            else:
                tb = type(base)
                recv = self._attribute(base) if tb is ast.Attribute else self._call(base) if tb is ast.Call else ev(base)
                base_ref = self.ref(base)
            ref = f"{base_ref}.{meth}" if base_ref is not None else None
            self.func_refs[func] = ref  # as `Summarizer.ref(func)` builds it (see `_func_ref`)
            recv_ref = base_ref or ""
            # `yaml.load(...)` is a module function, `connection.ops.quote_name(...)` a method
            module_recv = base_is_name and not recv and "." not in recv_ref \
                and self.summary.imports.get(base.id) == recv_ref
            if base_is_name:
                if not recv_ref:
                    recv_ref = base.id
                elif base.id not in recv_ref:
                    recv_ref = f"{recv_ref} {base.id}"
        elif ft is ast.Name:
            ref = self.func_refs[func] = self.name_ref(func.id)
        else:
            ev(func)
            ref = self.func_refs[func] = self.ref(func)
            if ft is ast.Call and func.args and self.ref(func.func) in self.m.callable_wrappers:
                ref = self.ref(func.args[0]) or ref  # `sync_to_async(save)(name)` calls save(name)
        args = []
        any_arg = False  # does some argument carry atoms?
        node_args = node.args
        if node_args:
            env = self.env  # (evaluating an argument may change entries, never rebinds self.env)
            closures = st.closures
            for a in node_args:
                # names and constants inline (most arguments): as `_ev` evaluates them
                ta = type(a)
                if ta is ast.Name:
                    v = env.get(a.id, EMPTY)
                    if not v and closures and a.id in closures:
                        v = self._closure_ref(a)
                elif ta is ast.Constant:
                    v = EMPTY
                else:
                    v = ev(a)
                if v:
                    any_arg = True
                args.append(v)
        kwargs: dict[str, frozenset[str]] = {}
        star = EMPTY
        keywords = node.keywords
        for k in keywords:
            v = ev(k.value)
            if k.arg is None:
                if not self._const_keys(k.value):
                    star = _union2(star, v)
            else:
                kwargs[k.arg] = v
        if kwargs and not any_arg:  # (the last value counts where a keyword is repeated)
            any_arg = any(kwargs.values())
        # what the catalog says of the callee (_R_* bits; one lookup for the tests below)
        rflags = self.ref_flags.get(ref)
        if rflags is None:
            rflags = self._ref_flags(ref)
        if rflags & _R_RUNNER or mflags & _M_RUNNER:
            runner = self.runner_refs[ref] if rflags & _R_RUNNER else None
            if runner is None and mflags & _M_RUNNER and not module_recv:
                runner = self.runner_meths[meth]
            if runner is not None and runner < len(node_args):
                got = self._run_callback(node, runner, args, kwargs)
                if got is not None:
                    return got
        # (a Name receiver is only found among registry_names, filled once has_registry held)
        if meth is not None and (any_arg or star) and (
                type(func.value) is ast.Name and st.registry_names
                or type(func.value) in (ast.Attribute, ast.Subscript) and self._registry_shaped(func.value)) \
                and self.has_registry:
            base = func.value
            registry = st.registry_names.get(base.id) if type(base) is ast.Name and st.registry_names else None
            if registry is None:
                registry = self._registry_key(base)
            if registry is not None:
                # a method of an object the application stored at startup: solve.py looks for the
                # stored class and links its method (else the call is handled like any other)
                if not ref or ref[0] == "$":
                    # unknown to the index: name the receiver by its key (`app["pool"]` -> "pool")
                    # so that receiver-named sinks (`pool.fetch(sql)`) still match
                    key = registry[2].rsplit(".", 1)[-1].lstrip("@")
                    ref = f"${key}.{meth}"
                    recv_ref = f"{recv_ref} {key}".strip()
                j = self._record(node, ref, args, kwargs, star, recv, recv_ref, None)
                st.facts.calls[j].hints["registry"] = (*registry, meth)
                return frozenset((f"r:{j}",))
        if rflags & _R_SPECIAL or mflags & _M_SPECIAL:  # (one test for the rare callees below)
            special = self._special_call(node, ref, rflags, meth, args, kwargs, star, recv, recv_ref)
            if special is not None:
                return special
        tainted = bool(recv or star or any_arg)
        project = rflags & _R_PROJECT
        captured = self._closure_atoms(func.id) if ft is ast.Name and st.closures else None
        self_recv = meth is not None and bool(st.tainted_attrs) and type(func.value) is ast.Name \
            and func.value.id == st.self_name
        j = None
        # an external callee that is no sink needs no record: its result is computed right here
        name = meth if meth is not None else func.id if ft is ast.Name else None
        if (tainted and (project or name in self.m.sink_names)) or self_recv or (project and node is not self.discarded) \
                or captured:
            j = self._record(node, ref, args, kwargs, star, recv, recv_ref, None)
            if self_recv:
                st.facts.calls[j].hints["self_recv"] = True
            if captured:
                st.facts.calls[j].hints["closure"] = captured
        if meth is not None and not module_recv:
            if mflags & _M_CONTAINER and (args or kwargs):
                key = _target_key(func.value)
                if meth in ("update", "setdefault") and key in st.const_key_dicts and \
                        not (meth == "update" and not node.args) and \
                        not (meth == "setdefault" and node.args and isinstance(node.args[0], ast.Constant)) and \
                        not (meth == "update" and node.args and self._const_keys(node.args[0])):
                    st.const_key_dicts.discard(key)
                if key is not None:
                    if type(func.value) is not ast.Name:
                        st.paths = True  # `self.items.append(x)`: key "self.items"
                    self.env[key] = _union((self.env.get(key, EMPTY), *args, *kwargs.values()))
            if mflags & _M_CLEAN:
                return EMPTY
        if project and j is not None:
            return frozenset((f"r:{j}",))
        if rflags & _R_CONSUMING:
            return EMPTY  # what a sink builds (text(), RawSQL, Template) is reported at the sink
        if rflags & _R_CLASS:
            return _union((recv, *args, *kwargs.values(), star))  # an object built from the data
        if (meth is None or module_recv) and not rflags & _R_PROPAGATE_ALL and args:
            # a library function: its result is made from its first argument (`unquote(x)`,
            # `json.loads(x)`); the others are options (`translate_url(url, lang)`) unless listed
            return args[0]
        return _union2(recv, args[0]) if len(args) == 1 else _union((recv, *args))

    def _special_call(self, node: ast.Call, ref: str | None, rflags: int, meth: str | None, args: list,
                      kwargs: dict, star: frozenset[str], recv: frozenset[str], recv_ref: str) -> frozenset[str] | None:
        """The value of a sanitizer, source, regex substitution, tail or numeric conversion,
        `"...".format(...)` or `obj.__dict__.update(...)` call; None for any other call."""
        func = node.func
        if rflags & _R_CLEAN:
            return EMPTY
        if rflags & _R_SOURCE:
            return self._new_source(node)
        if (meth == "sub" or rflags & _R_REGEX_SUB) and self._strips_to_safe_chars(node, ref, meth):
            return EMPTY
        if rflags & _R_TAIL:
            return _tail(_union((*args, *kwargs.values())))
        if meth == "format" and type(func.value) is ast.Constant and isinstance(func.value.value, str):
            return self._format(func.value.value, node)
        if rflags & _R_NUMERIC:
            return _numeric(_union(args))
        if meth == "update" and type(func.value) is ast.Attribute and func.value.attr == "__dict__":
            if args and args[0]:
                self._record(node, "<__dict__.update>", args, kwargs, star, recv, recv_ref, "__dict__.update")
            return EMPTY
        return None

    def _ref_flags(self, ref: str | None) -> int:
        """The _R_* bits of a callee ref (remembered across files)."""
        f = _R_PROJECT if self._project_head(ref) else 0
        if name_is_class(ref):
            f |= _R_CLASS
        if ref in self.special_refs:  # (most refs are in none of the catalog's lists)
            f |= self._listed_ref_flags(ref)
        return _remember(self.ref_flags, ref, f)

    def _listed_ref_flags(self, ref: str) -> int:
        """The _R_* bits of the catalog's lists that name `ref`."""
        f = _R_RUNNER if ref and ref in self.runner_refs else 0
        for names, bit in self.ref_lists:
            if ref in names:
                f |= bit
        return f

    def _meth_flags(self, meth: str) -> int:
        """The _M_* bits of a method name (remembered across files)."""
        f = 0
        for names, bit in self.meth_lists:
            if meth in names:
                f |= bit
        return _remember(self.meth_flags, meth, f)

    def _meth_bits(self, meth: str) -> int:
        got = self.meth_flags.get(meth)
        return self._meth_flags(meth) if got is None else got

    def _run_callback(self, node: ast.Call, pos: int, args: list, kwargs: dict) -> frozenset[str] | None:
        """`asyncio.to_thread(save, name, data)`, `loop.run_in_executor(None, save, name)`,
        `executor.submit(save, name)`: a call of the project function `save` with the arguments
        after it (recorded at the function argument). None when it is no project function."""
        fnode = node.args[pos]
        if type(fnode) not in (ast.Name, ast.Attribute):
            return None
        fref = self.ref(fnode)
        registry = None
        if type(fnode) is ast.Attribute and (not fref or fref[0] == "$") and self.has_registry:
            # `asyncio.to_thread(repo.search, q)` with `repo = request.app["repo"]`: a bound
            # method of the object the application stored (linked like a direct call in solve.py)
            base = fnode.value
            registry = self.st.registry_names.get(base.id) if isinstance(base, ast.Name) and self.st.registry_names \
                else None
            if registry is None:
                registry = self._registry_key(base)
        if registry is None and not self._possibly_project(fref):
            return None
        rest = args[pos + 1:]
        if any(type(a) is ast.Starred for a in node.args[pos + 1:]):
            return None
        if not (any(rest) or any(kwargs.values())):
            return None
        if registry is not None and (not fref or fref[0] == "$"):
            fref = f"${registry[2].rsplit('.', 1)[-1].lstrip('@')}.{fnode.attr}"
        j = self._record(fnode, fref, rest, kwargs, EMPTY, EMPTY, "", self._seg(fnode, 50))
        if registry is not None:
            self.st.facts.calls[j].hints["registry"] = (*registry, fnode.attr)
        return frozenset((f"r:{j}",))

    def _strips_to_safe_chars(self, node: ast.Call, ref: str | None, meth: str | None) -> bool:
        """`re.sub(r"[^a-z0-9_-]", "", x)`: what is left is letters, digits, `_` and `-` only."""
        args = node.args
        if ref in self.m.regex_sub and len(args) >= 3:
            pattern, repl = args[0], args[1]
        elif meth == "sub" and isinstance(node.func.value, ast.Name) and node.func.value.id in self.regex_consts \
                and len(args) >= 2:
            pattern, repl = ast.Constant(self.regex_consts[node.func.value.id]), args[0]
        else:
            return False
        if not (isinstance(repl, ast.Constant) and repl.value == ""):
            return False
        if not (isinstance(pattern, ast.Constant) and isinstance(pattern.value, str)):
            return False
        return bool(_STRIP_TO_SAFE.fullmatch(pattern.value))

    def _format(self, fmt: str, call: ast.Call) -> frozenset[str]:
        """`"https://x/{}?q={q}".format(a, q=b)` as a concatenation (see `_concat`)."""
        texts = _BRACE_SPLIT.split(fmt)
        fields = _BRACE.findall(fmt)
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        if any(k.arg is None for k in call.keywords) or any(isinstance(a, ast.Starred) for a in call.args):
            return _union([self._ev(a) for a in call.args] + [self._ev(k.value) for k in call.keywords])
        values: list[ast.AST] = []
        auto = 0
        for f in fields:
            name = re.split(r"[.\[!:]", f, maxsplit=1)[0]
            if name == "":
                v = call.args[auto] if auto < len(call.args) else None
                auto += 1
            elif name.isdigit():
                v = call.args[int(name)] if int(name) < len(call.args) else None
            else:
                v = kw.get(name)
            values.append(v if v is not None else ast.Constant(""))
        return self._concat(_interleave(texts, values))

    def _possibly_project(self, ref: str | None) -> bool:
        f = self.ref_flags.get(ref)
        if f is None:
            f = self._ref_flags(ref)
        return bool(f & _R_PROJECT)

    def _project_head(self, ref: str | None) -> bool:
        if not ref:
            return False
        c = ref[0]
        if c in "@.":
            return True
        if c == "$":
            return False
        return not self.m.is_external_head(ref.split(".", 1)[0])

    def _record(self, node: ast.AST, ref: str | None, args, kwargs, star, recv, recv_ref: str, text: str | None) -> int:
        st = self.st
        lineno = node.lineno
        col = node.col_offset
        end_lineno = node.end_lineno
        end_col = node.end_col_offset
        pos = (lineno, col, end_lineno, end_col)
        j = st.call_ids.get(pos)
        if j is not None:
            old = st.facts.calls[j]
            old.args = [_union2(a, b) for a, b in zip(old.args, args)] if len(old.args) == len(args) else args
            for k, v in kwargs.items():
                old.kwargs[k] = _union2(old.kwargs.get(k, EMPTY), v)
            old.star = _union2(old.star, star)
            old.recv = _union2(old.recv, recv)
            return j
        hints: dict = {}
        func = node.func if type(node) is ast.Call else None
        tf = type(func)
        name = func.attr if tf is ast.Attribute else func.id if tf is ast.Name else None
        if func is not None and name in self.m.sink_names:
            fixed = []
            for i, a in enumerate(node.args[:2]):
                if self._fixed(a):
                    fixed.append(i)
            for k in node.keywords:
                if k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value:
                    hints["shell"] = True
                elif k.arg in ("Loader", "loader"):
                    r = self.ref(k.value) or ""
                    if r.endswith(("SafeLoader", "CSafeLoader", "BaseLoader")):
                        hints["yaml_safe"] = True
                elif k.arg in ("url", "location", "to", "redirect_to") and self._fixed(k.value):
                    fixed.append(k.arg)
                elif k.arg == "args" and self._is_list(k.value):
                    hints["argv"] = True
            if len(node.args) > 1 and (self.ref(node.args[1]) or "").endswith(("SafeLoader", "CSafeLoader", "BaseLoader")):
                hints["yaml_safe"] = True
            if node.args and self._is_fileobj(node.args[0]):
                hints["fileobj"] = True  # send_file(io.BytesIO(data)): content, not a path
            if node.args and self._is_list(node.args[0]):
                hints["argv"] = True
            elif node.args and _is_str_built(node.args[0]):
                hints["argstr"] = True
            if fixed:
                hints["fixed"] = fixed
            if node.args and _sql_shaped(node) and self.has_limit:
                lim = self._limit_atoms(node)
                if lim:
                    hints["limit"] = lim
            if text is None:
                text = self._seg(func, 50)
        calls = st.facts.calls
        j = len(calls)
        st.call_ids[pos] = j
        end_line = end_lineno or lineno
        char_col = self.lines.char_col
        # (positional: ref, line, col, end_line, end_col, text, args, kwargs, star, recv, recv_ref, hints)
        calls.append(CallFact(
            ref, lineno, char_col(lineno, col), end_line, char_col(end_line, end_col or col), text or name or "",
            list(args), dict(kwargs), star, recv, recv_ref, hints,
        ))
        return j

    def _normalizes(self, node: ast.AST) -> bool:
        """`os.path.realpath(...)`, `Path(...).resolve()`: a path with no `..` segments left."""
        if not isinstance(node, ast.Call):
            return False
        if isinstance(node.func, ast.Attribute) and node.func.attr in self.m.normalizing_methods:
            return True
        return self.ref(node.func) in self.m.normalizing_calls

    def _const_keys(self, node: ast.AST) -> bool:
        """A mapping whose keys the code chose (`{"name": q}`, `d["name"] = q`): only values are data."""
        if isinstance(node, ast.Dict):
            return all(k is not None and self._chosen_key(k) for k in node.keys)
        if isinstance(node, ast.Name):
            return node.id in self.st.const_key_dicts
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            if not all(k.arg is not None for k in node.keywords) or len(node.args) > 1:
                return False
            if not node.args:
                return True
            # `dict((f, data[f]) for f in FIELDS)`: pairs whose first item is a chosen key
            arg = node.args[0]
            if isinstance(arg, (ast.GeneratorExp, ast.ListComp)) and isinstance(arg.elt, ast.Tuple) \
                    and len(arg.elt.elts) == 2:
                return self._const_keys(ast.DictComp(key=arg.elt.elts[0], value=arg.elt.elts[1],
                                                     generators=arg.generators))
            if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "zip" \
                    and len(arg.args) == 2 and not arg.keywords:
                return self._key_collection(arg.args[0])  # `dict(zip(FIELDS, values))`
            return self._const_keys(arg)
        if isinstance(node, ast.DictComp) and isinstance(node.key, ast.Constant):
            return True
        if isinstance(node, ast.DictComp) and isinstance(node.key, ast.Name):
            # `{k: data[k] for k in FIELDS}` / `{k: v for k, v in data.items() if k in FIELDS}`
            key = node.key.id
            for gen in node.generators:
                if isinstance(gen.target, ast.Name) and gen.target.id == key and self._key_collection(gen.iter):
                    return True
                for cond in gen.ifs:
                    if isinstance(cond, ast.Compare) and isinstance(cond.left, ast.Name) and cond.left.id == key \
                            and len(cond.ops) == 1 and isinstance(cond.ops[0], ast.In) \
                            and self._is_constant_collection(cond.comparators[0]):
                        return True
        return False

    def _chosen_key(self, node: ast.AST) -> bool:
        """A mapping key the code chose: a constant, or a loop variable over a constant
        collection of names (`for f in self.filter_fields: filters[f] = request.GET[f]`)."""
        if isinstance(node, ast.Constant):
            return True
        return isinstance(node, ast.Name) and node.id in self.st.const_keys and not self.env.get(node.id)

    def _key_collection(self, node: ast.AST) -> bool:
        """A collection of names the code wrote: a literal of constants, a local bound to one, a
        module constant (a literal, or an UPPER_CASE name), a class attribute of this class whose
        body sets it to a literal of constants (`url_filter_parameters = ["collection"]`), and
        none of it carrying request data. `.keys()` of such a mapping too."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "keys" \
                and not node.args:
            node = node.func.value
        if self._ev(node):
            return False
        if _const_collection(node):
            return True
        if isinstance(node, ast.Name):
            name = node.id
            if name in self.st.const_names:
                return True
            if name in self.env or name in self.scopes[-1].params:
                return False
            a = self.module.assigns.get(name)
            if a is not None:
                return _const_list(a.value)
            r = self.name_ref(name)
            return name.isupper() and not r.startswith(("$", "builtins."))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == self.st.self_name and self.st.self_name:
                cls = self.module.classes.get(self.scopes[-1].class_qualname or "")
                if cls is None:
                    return node.attr.isupper()
                a = cls.attrs.get(node.attr)
                i = cls.instance_attrs.get(node.attr)  # `self.x = ...` in some method overrides it
                if a is not None and i is None:
                    return _const_list(a.value)
                return i is not None and _const_list(i.value) and (a is None or _const_list(a.value))
            if node.value.id not in self.env and node.value.id not in self.scopes[-1].params:
                return node.attr.isupper()  # `settings.FILTER_FIELDS`, `Model.SORT_KEYS`
        return False

    def _code_defined(self, node: ast.AST) -> bool:
        """A base URL taken from code or settings (`settings.API_URL`, `API_BASE`), not from a local."""
        if isinstance(node, ast.Name):
            return node.id not in self.env and node.id not in self.scopes[-1].params and not self._ev(node)
        if isinstance(node, ast.Attribute):
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in self.env and root.id != self.st.self_name:
                return False
            return not self._ev(node)
        return False

    def _limit_atoms(self, call: ast.Call) -> frozenset[str]:
        """Atoms of the value that sets a SQL LIMIT: interpolated after `LIMIT`, or its bound parameter."""
        sql = call.args[0]
        parts: list[ast.AST] = []
        if isinstance(sql, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.FormattedValue) else v for v in sql.values]
        elif isinstance(sql, ast.BinOp) and isinstance(sql.op, ast.Add):
            parts = _add_terms(sql)
        elif isinstance(sql, ast.Constant) and isinstance(sql.value, str) and len(call.args) > 1 \
                and isinstance(call.args[1], (ast.List, ast.Tuple)):
            holders = _PLACEHOLDER.findall(sql.value)
            m = _LIMIT_HOLDER.search(sql.value)
            if m and len(holders) == len(call.args[1].elts):
                i = len(_PLACEHOLDER.findall(sql.value[: m.start(1)]))
                return self._ev(call.args[1].elts[i])
            return EMPTY
        out = []
        prev = ""
        for p in parts:
            if isinstance(p, ast.Constant) and isinstance(p.value, str):
                prev = p.value
            else:
                if _LIMIT_BEFORE.search(prev):
                    out.append(self._ev(p))
                prev = ""
        return _union(out)

    def _is_fileobj(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            node = self.st.fileobj_of.get(node.id, node)
        return isinstance(node, ast.Call) and self.ref(node.func) in self.m.file_objects

    def _is_list(self, node: ast.AST) -> bool:
        if isinstance(node, (ast.List, ast.Tuple, ast.ListComp)):
            return True
        if isinstance(node, ast.Name):
            return node.id in self.st.list_names
        if isinstance(node, ast.Call):
            r = self.ref(node.func) or ""
            return r in ("shlex.split", "builtins.list", "builtins.tuple")
        return False

    def _fixed(self, node: ast.AST) -> bool:
        """The value starts with a constant that pins it to a local path or a fixed host."""
        t = type(node)
        if t is ast.JoinedStr:
            first = node.values[0] if node.values else None
            if isinstance(first, ast.FormattedValue):
                return len(node.values) > 1 and self._code_defined(first.value)
            return isinstance(first, ast.Constant) and isinstance(first.value, str) and safe_prefix(first.value)
        if t is ast.BinOp:
            if isinstance(node.op, ast.Add):
                left = node.left
                if isinstance(left, ast.Constant):
                    return isinstance(left.value, str) and safe_prefix(left.value)
                if isinstance(left, (ast.Name, ast.Attribute)) and self._code_defined(left) and not self._fixed(left):
                    return not (isinstance(left, ast.Name) and left.id in self.env)
                return self._fixed(left)
            if isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
                return safe_prefix(node.left.value.split("%", 1)[0] + ("x" if "%" in node.left.value else ""))
            return False
        if t is ast.Constant:
            return True
        if t is ast.Call and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
                and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
            s = node.func.value.value
            return safe_prefix(s.split("{", 1)[0] + ("x" if "{" in s else ""))
        if t is ast.Name:
            if node.id in self.st.prefix_names:
                return True
            if node.id not in self.env and node.id not in self.scopes[-1].params:
                a = self.module.assigns.get(node.id)  # a module-level constant such as API_BASE
                return a is not None and a.value[0] == "const" and isinstance(a.value[1], str) and safe_prefix(a.value[1])
        return False


#: `TaintCollector._ev` by node type (ast.Name is handled before the lookup)
_EV: dict[type, Callable[[TaintCollector, Any], frozenset[str]]] = {
    ast.Attribute: TaintCollector._attribute,
    ast.Call: TaintCollector._call,
    ast.Subscript: TaintCollector._subscript,
    ast.JoinedStr: TaintCollector._ev_joined,
    ast.BinOp: TaintCollector._ev_binop,
    ast.Await: TaintCollector._ev_value,
    ast.List: TaintCollector._ev_elts,
    ast.Tuple: TaintCollector._ev_elts,
    ast.Set: TaintCollector._ev_elts,
    ast.Dict: TaintCollector._ev_dict,
    ast.BoolOp: TaintCollector._ev_boolop,
    ast.IfExp: TaintCollector._ev_ifexp,
    ast.Compare: TaintCollector._ev_compare,
    ast.UnaryOp: TaintCollector._ev_unaryop,
    ast.Starred: TaintCollector._ev_value,
    ast.NamedExpr: TaintCollector._ev_named,
    ast.ListComp: TaintCollector._comprehension,
    ast.SetComp: TaintCollector._comprehension,
    ast.GeneratorExp: TaintCollector._comprehension,
    ast.DictComp: TaintCollector._comprehension,
    ast.FormattedValue: TaintCollector._ev_value,
    ast.Slice: TaintCollector._ev_slice,
    ast.Lambda: TaintCollector._lambda,
    ast.Yield: TaintCollector._ev_value,
    ast.YieldFrom: TaintCollector._ev_value,
}

#: `TaintCollector._block`: the handler of each statement type (others: `_s_other`)
_STMT: dict[type, Callable[[TaintCollector, Any, dict], tuple[dict, bool]]] = {
    ast.Assign: TaintCollector._s_assign,
    ast.Expr: TaintCollector._s_expr,
    ast.Return: TaintCollector._s_return,
    ast.If: TaintCollector._if,
    ast.AugAssign: TaintCollector._s_augassign,
    ast.AnnAssign: TaintCollector._s_annassign,
    ast.For: TaintCollector._loop,
    ast.AsyncFor: TaintCollector._loop,
    ast.While: TaintCollector._loop,
    ast.Try: TaintCollector._try,
    ast.With: TaintCollector._s_with,
    ast.AsyncWith: TaintCollector._s_with,
    ast.Raise: TaintCollector._s_leave,
    ast.Continue: TaintCollector._s_leave,
    ast.Break: TaintCollector._s_leave,
    ast.FunctionDef: TaintCollector._s_def,
    ast.AsyncFunctionDef: TaintCollector._s_def,
    ast.Match: TaintCollector._s_match,
    ast.ImportFrom: TaintCollector._s_import,
    ast.Import: TaintCollector._s_import,
    ast.Delete: TaintCollector._s_inert,
    ast.Global: TaintCollector._s_inert,
    ast.Nonlocal: TaintCollector._s_inert,
    ast.Pass: TaintCollector._s_inert,
    ast.ClassDef: TaintCollector._s_inert,
    ast.Assert: TaintCollector._s_assert,
}
if hasattr(ast, "TryStar"):  # Python 3.11+
    _STMT[ast.TryStar] = TaintCollector._try


def _subclasses(base: type) -> list[type]:
    out: list[type] = []
    stack = [base]
    while stack:
        for sub in stack.pop().__subclasses__():
            out.append(sub)
            stack.append(sub)
    return out


# Every other node type (and None) gets the default handler, so that the lookups are plain
# `dict[type]` subscripts (no `.get` call); a type made later falls back through KeyError.
for _t in [type(None), *_subclasses(ast.AST)]:
    _EV.setdefault(_t, TaintCollector._ev_nothing)
for _t in _subclasses(ast.stmt):
    _STMT.setdefault(_t, TaintCollector._s_other)


class _FnState:
    __slots__ = (
        "call_ids",
        "closures",
        "const_key_dicts",
        "const_keys",
        "const_names",
        "exit_clean",
        "facts",
        "fileobj_of",
        "guard_vars",
        "item_guards",
        "list_names",
        "nested",
        "normalized",
        "param_names",
        "parsed_of",
        "paths",
        "pred",
        "prefix_names",
        "qualname",
        "reassigned",
        "registry_names",
        "request_names",
        "ret",
        "ret_items",
        "seen_nested",
        "self_name",
        "shaped",
        "source_ids",
        "tainted_attrs",
    )

    def __init__(self, qualname: str, facts: FuncFacts, self_name: str | None, request_names: set[str],
                 tainted_attrs: set[str] | None = None, param_names: set[str] | None = None):
        self.qualname = qualname
        self.facts = facts
        self.self_name = self_name
        self.request_names = request_names
        self.ret: list[frozenset[str]] = []
        self.source_ids: dict[tuple, int] = {}
        self.call_ids: dict[tuple, int] = {}
        self.list_names: set[str] = set()
        self.prefix_names: set[str] = set()
        self.const_names: set[str] = set()
        self.nested: list = []
        self.seen_nested: set[str] = set()
        self.ret_items: list | None = None
        self.tainted_attrs: set[str] = set() if tainted_attrs is None else tainted_attrs
        self.const_key_dicts: set[str] = set()
        #: loop variables that iterate over a constant collection of names (`for f in FIELDS`)
        self.const_keys: set[str] = set()
        #: every name that may be in list_names, prefix_names, const_names, parsed_of, guard_vars,
        #: fileobj_of, normalized, const_key_dicts or const_keys (a superset: a cheap test first)
        self.shaped: set[str] = set()
        self.normalized: set[str] = set()
        self.guard_vars: dict[str, tuple[set[str], set[str]]] = {}
        self.parsed_of: dict[str, str] = {}
        self.item_guards = False  # some guard checked an item such as data["sort"]
        #: some env of this function may hold an access-path key ("self.x", "request.GET['q']"):
        #: set wherever one is stored; until then reads and merges skip looking for them
        self.paths = False
        self.fileobj_of: dict[str, ast.AST] = {}
        self.param_names: set[str] = set() if param_names is None else param_names
        self.reassigned: set[str] = set()
        self.exit_clean: set[str] | None = None
        #: parameter -> its atoms where the function returns a (possibly) true value; None: no such return
        self.pred: dict[str, frozenset[str]] | None = None
        #: nested def name -> [qualname, def node, enclosing variables it reads (lazily), linked?]
        self.closures: dict[str, list] | None = None
        #: locals bound to an application registry entry (`repo = request.app["repo"]`)
        self.registry_names: dict[str, tuple[str, str, str]] | None = None


_IDENT = re.compile(r"[A-Za-z_]\w*")
_PERCENT = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdrifxXeEgGa]")
# a negated class of word characters (and `-`) removed everywhere: `[^a-z0-9_-]+`, `\W`
_STRIP_TO_SAFE = re.compile(r"(?:\[\^(?:[A-Za-z0-9_]|-|\\w|\\d)+\]|\\W)[+*]?")
_BRACE = re.compile(r"\{([^{}]*)\}")
_BRACE_SPLIT = re.compile(r"\{[^{}]*\}")


def _sql_shaped(call: ast.Call) -> bool:
    """Can `_limit_atoms` find anything (and evaluate anything) in this call? Its first argument
    is an f-string, a `+` chain, or a string with a list/tuple of parameters after it."""
    sql = call.args[0]
    t = type(sql)
    if t is ast.JoinedStr:
        return True
    if t is ast.BinOp:
        return type(sql.op) is ast.Add
    return t is ast.Constant and isinstance(sql.value, str) and len(call.args) > 1 \
        and type(call.args[1]) in (ast.List, ast.Tuple)


def _interleave(texts: list[str], values: list[ast.AST]) -> list[ast.AST]:
    out: list[ast.AST] = []
    for i, t in enumerate(texts):
        if t:
            out.append(ast.Constant(t))
        if i < len(values):
            out.append(values[i])
    return out


def _carried(before: dict, after: dict) -> bool:
    """Did a variable that existed before the loop body gain atoms in it?"""
    for k, v in before.items():
        w = after.get(k)
        if w is not None and w is not v and w != v:
            return True
    return False


def _tail(atoms: frozenset[str]) -> frozenset[str]:
    return frozenset(a if a.startswith(("t|", "n|t|")) else "t|" + a for a in atoms)


def _fixes(acc: str) -> bool:
    """Does this prefix (X = a value the code chose, NUL = client data) pin where a URL points?"""
    if "?" in acc or "#" in acc:
        return True  # past the authority: whatever came before, later data is query/fragment text
    if "\x00" in acc:
        return False
    if acc.startswith(("X/", "X?")):
        return True
    return safe_prefix(acc)


def _add_terms(node: ast.AST) -> list[ast.AST]:
    """The operands of a `+` chain, left to right (`a + b + c` -> [a, b, c])."""
    terms: list[ast.AST] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
            stack += [n.right, n.left]
        else:
            terms.append(n)
    return terms


def _stringy(node: ast.BinOp) -> bool:
    """A `+` chain that builds a string (some part is a string literal or an f-string)."""
    n: ast.AST = node
    while isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
        if isinstance(n.right, (ast.JoinedStr,)) or (isinstance(n.right, ast.Constant) and isinstance(n.right.value, str)):
            return True
        n = n.left
    return isinstance(n, ast.JoinedStr) or (isinstance(n, ast.Constant) and isinstance(n.value, str))


def name_is_class(ref: str | None) -> bool:
    """`Serializer(...)`, `forms.Form(...)`: by convention a class, whose instance holds its arguments."""
    if not ref:
        return False
    last = ref.rsplit(".", 1)[-1].lstrip("$@")
    return last[:1].isupper() and not last.isupper()


def _is_str_built(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _is_str_built(node.left) or _is_str_built(node.right)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join")


def _callee_root(func: ast.AST) -> str | None:
    """The name a callee `f` / `obj.f` starts from (None for other shapes)."""
    t = type(func)
    if t is ast.Name:
        return func.id
    if t is ast.Attribute and type(func.value) is ast.Name:
        return func.value.id
    return None


def _decorated(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    """`@staticmethod` / `@classmethod` written as a bare name."""
    for d in node.decorator_list:
        if type(d) is ast.Name and d.id == name:
            return True
    return False


def _names(nodes) -> set[str]:
    return {n.id for n in nodes if isinstance(n, ast.Name)}


def _target_key(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


def _const_list(value: tuple) -> bool:
    """A value descriptor of a literal list/tuple/set (or dict) of constants."""
    if value[0] == "list":
        return all(v[0] == "const" for v in value[1])
    if value[0] == "dict":
        return all(k[0] == "const" for k, _ in value[1])
    return False


def _const_collection(node: ast.AST) -> bool:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(isinstance(e, ast.Constant) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(isinstance(k, ast.Constant) for k in node.keys if k is not None)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set", "tuple"):
        return len(node.args) == 1 and _const_collection(node.args[0])
    return False


def collect_facts(tree: ast.Module, lines: LineIndex, module: ModuleSummary, models: TaintModels,
                  text: str = "request") -> dict[str, FuncFacts]:
    return TaintCollector(tree, lines, module, models, text).run()
