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
from dataclasses import dataclass, field

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
    out: set[str] = set()
    for v in values:
        if v:
            out |= v
    if len(out) > MAX_ATOMS:
        out = set(sorted(out)[:MAX_ATOMS])
    return frozenset(out)


def _numeric(atoms: frozenset[str]) -> frozenset[str]:
    return frozenset(a if a.startswith("n|") else "n|" + a for a in atoms)


def _merge(envs: list[dict[str, frozenset[str]]]) -> dict[str, frozenset[str]]:
    if len(envs) == 1:
        return dict(envs[0])
    out: dict[str, frozenset[str]] = {}
    for env in envs:
        for k, v in env.items():
            old = out.get(k)
            out[k] = v if old is None or old == v else (old | v)
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
        self.import_values = set(self.summary.imports.values())
        self.regex_consts: dict[str, str] = {}
        for name, attr in module.assigns.items():
            v = attr.value
            if v[0] == "call" and v[1] in models.regex_compile and v[2] and v[2][0][0] == "const" \
                    and isinstance(v[2][0][1], str):
                self.regex_consts[name] = v[2][0][1]
        self.tree = tree
        self.discarded: ast.AST | None = None  # a call whose result is thrown away
        self.has_limit = "LIMIT" in text or "limit" in text or "FETCH" in text
        self.class_attrs: dict[str, set[str]] = {}
        self.source_methods = models.request_methods | models.global_request_methods
        # registry stores and reads look like `app[...]`, `config_dict[...]`, `extensions[...]`,
        # `.state.x` or `g.x` (with Flask's `g` imported): a cheap test that skips most files
        self.global_names = {k for k, v in module.imports.items() if v in models.app_globals}
        self.runner_refs = {k: v for k, v in models.callback_runners.items() if k[:1] != "."}
        self.runner_meths = {k[1:]: v for k, v in models.callback_runners.items() if k[:1] == "."}
        self.has_registry = bool(self.global_names) or "app[" in text or "application[" in text \
            or "config_dict[" in text or "extensions[" in text or ".state." in text or "app." in text

    # ----- driver --------------------------------------------------------------------------
    def run(self) -> dict[str, FuncFacts]:
        self.func_stack.append(_Fn(MODULE_SCOPE))
        self.scopes.append(_Scope(None))
        self.scopes[-1].func = _Fn(MODULE_SCOPE)  # type: ignore[assignment]
        self._defs(self.tree.body, "", None)
        if self.has_registry:
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
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(node, prefix + node.name, cls)
            elif isinstance(node, ast.ClassDef):
                self._defs(node.body, prefix + node.name + ".", prefix + node.name)
            elif isinstance(node, (ast.If, ast.Try)) and cls is None and not prefix:
                self._defs(node.body, prefix, cls)
                self._defs(node.orelse, prefix, cls)
                for h in getattr(node, "handlers", []):
                    self._defs(h.body, prefix, cls)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, cls: str | None,
                  closure: tuple[dict, FuncFacts, frozenset[str]] | None = None) -> None:
        scope = _Scope(None, cls)
        scope.func = _Fn(qualname)  # type: ignore[assignment]
        args = node.args
        params = [a for a in args.posonlyargs + args.args]
        if args.vararg:
            params.append(args.vararg)
        params += args.kwonlyargs
        if args.kwarg:
            params.append(args.kwarg)
        env: dict[str, frozenset[str]] = {}
        facts = FuncFacts()
        self_name = None
        is_static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
        for i, a in enumerate(params):
            scope.params.add(a.arg)
            if i == 0 and cls is not None and not is_static and a in args.posonlyargs + args.args:
                self_name = a.arg
                is_cm = any(isinstance(d, ast.Name) and d.id == "classmethod" for d in node.decorator_list)
                scope.locals[a.arg] = f"@{cls}" if is_cm else f"@{cls}()"
                continue
            if a.annotation is not None:
                ann = self.ref(a.annotation)
                if ann and ann[0] != "$" and ann not in ("str", "int") and _looks_like_type_ref(ann):
                    scope.locals[a.arg] = f"{ann}()"
            if self._is_request_param(a):
                facts.request_params.append(a.arg)
                continue
            env[a.arg] = frozenset((f"p:{a.arg}",))
        self.scopes.append(scope)
        self.func_stack.append(_Fn(qualname))
        st = _FnState(qualname, facts, self_name, set(facts.request_params))
        # attributes that methods (processed in class-body order) store data in: `self.x = x`
        st.tainted_attrs = self.class_attrs.setdefault(cls, set()) if cls and self_name else set()
        st.param_names = set(env)
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
            try:
                # the enclosing variables it reads, when some place passed it data (see _closure_atoms)
                c = st.closures.get(inner.name) if st.closures else None
                free = c[2] if c is not None and c[3] and c[1] is inner else EMPTY
                self._function(inner, inner_q, None, (end_env, facts, free))
            finally:
                self.scopes.pop()
                self.func_stack.pop()

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
            for a in atoms:
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

    def _is_request_param(self, a: ast.arg) -> bool:
        """A framework request object: by its annotation when it has one (`request: SearchRequest`
        is a request *body model*, not the request), else by its name."""
        ann = a.annotation
        if ann is not None:
            r = self.ref(ann)
            if r is None:
                return a.arg in self.m.request_param_names
            return r in self.m.request_types or r.rsplit(".", 1)[-1] in ("Request", "HttpRequest", "BaseRequest",
                                                                           "WSGIRequest", "ASGIRequest")
        return a.arg in self.m.request_param_names

    # ----- statements -----------------------------------------------------------------------
    def _block(self, stmts: list[ast.stmt], env: dict[str, frozenset[str]]) -> tuple[dict, bool]:
        for s in stmts:
            env, term = self._stmt(s, env)
            if term:
                return env, True
        return env, False

    def _stmt(self, s: ast.stmt, env: dict) -> tuple[dict, bool]:
        self.env = env
        t = type(s)
        if t is ast.Assign:
            v = self._ev(s.value)
            for target in s.targets:
                self._assign(target, v, s.value)
            return self.env, False
        if t is ast.Expr:
            val = s.value
            if isinstance(val, ast.Await):
                val = val.value
            self.discarded = val
            self._ev(s.value)
            if isinstance(val, ast.Call):
                ref = self.ref(val.func)
                if ref in self.m.terminating_calls:
                    return self.env, True
                if ref in self.m.validating_calls and val.args and isinstance(val.args[0], ast.Name):
                    self.env[val.args[0].id] = EMPTY
                elif self._possibly_project(ref):
                    self._maybe_validated(val)
            return self.env, False
        if t is ast.Return:
            self._exit(self.env)
            if s.value is not None:
                v = self._ev(s.value)
                self._predicate_return(s.value)
                self.st.ret.append(v)
                st = self.st
                if isinstance(s.value, ast.Tuple) and not any(isinstance(e, ast.Starred) for e in s.value.elts):
                    items = [self._ev(e) for e in s.value.elts]
                    if st.ret_items is None:
                        st.ret_items = items
                    elif st.ret_items and len(st.ret_items) == len(items):
                        st.ret_items = [_union((a, b)) for a, b in zip(st.ret_items, items)]
                    else:
                        st.ret_items = []
                else:
                    st.ret_items = []
            return self.env, True
        if t is ast.If:
            return self._if(s, env)
        if t is ast.AugAssign:
            v = self._ev(s.value)
            if isinstance(s.target, ast.Name):
                self.env[s.target.id] = _union((self.env.get(s.target.id, EMPTY), v))
                self.st.prefix_names.discard(s.target.id)
            else:
                self._assign(s.target, _union((self._ev(s.target), v)), None)
            return self.env, False
        if t is ast.AnnAssign:
            if s.value is not None:
                self._assign(s.target, self._ev(s.value), s.value)
                if isinstance(s.target, ast.Name):
                    # `repo: ItemRepository = request.app["repo"]`: the declared class types the
                    # local (its methods resolve, also when passed on as `repo.search`)
                    # (as in the generic summary: the declaration wins unless the value is a constructor call)
                    known = self.scopes[-1].locals.get(s.target.id, "$")
                    ann = self.ref(s.annotation) if known[:1] == "$" or not known.endswith("()") else None
                    if ann and ann[0] != "$" and ann not in ("str", "int") and _looks_like_type_ref(ann) \
                            and self._possibly_project(ann):
                        self.scopes[-1].locals[s.target.id] = f"{ann}()"
            return self.env, False
        if t in (ast.For, ast.AsyncFor, ast.While):
            return self._loop(s, env)
        if t is ast.Try or t.__name__ == "TryStar":
            return self._try(s, env)
        if t in (ast.With, ast.AsyncWith):
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
                        self.env[item.optional_vars.id] = v
                    else:
                        self._assign(item.optional_vars, v, None)
            if swallows:
                # `with suppress(ValueError): check(x)`: a failing check is swallowed, like `except: pass`
                pre = dict(self.env)
                body_env, term = self._block(s.body, dict(self.env))
                return (pre if term else _merge([pre, body_env])), False
            return self._block(s.body, self.env)
        if t in (ast.Raise, ast.Continue, ast.Break):
            if t is ast.Raise and s.exc is not None:
                self._ev(s.exc)
            return self.env, True
        if t in (ast.FunctionDef, ast.AsyncFunctionDef):
            q = f"{self.st.qualname}.<locals>.{s.name}"
            if q not in self.st.seen_nested:
                self.st.seen_nested.add(q)
                self.st.nested.append((s, q))
            if self.st.closures is None:
                self.st.closures = {}
            self.st.closures[s.name] = [q, s, None, False]
            self.scopes[-1].locals[s.name] = f"@{q}"
            self.env[s.name] = EMPTY
            return self.env, False
        if t is ast.Match:
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
            return _merge(outs), False
        if t is ast.ImportFrom or t is ast.Import:
            self._local_import(s)
            return self.env, False
        if t in _INERT:
            return self.env, False
        if t is ast.Assert:
            # not a guard: `python -O` strips asserts
            self._ev(s.test)
            return self.env, False
        for child in ast.iter_child_nodes(s):
            if isinstance(child, ast.expr):
                self._ev(child)
        return self.env, False

    def _exit(self, env: dict) -> None:
        """A normal exit (return / end of body): which parameters are clean here?"""
        st = self.st
        clean = {p for p in st.param_names if not env.get(p)}
        st.exit_clean = clean if st.exit_clean is None else (st.exit_clean & clean)

    def _maybe_validated(self, call: ast.Call) -> None:
        """`validate_sort(sort)` as a statement: after it, `sort` carries its atoms only in case
        the callee turns out (in solve.py) not to validate that parameter: `g:<call>:<arg>|atom`."""
        j = self.st.call_ids.get((call.lineno, call.col_offset, call.end_lineno, call.end_col_offset))
        if j is None:
            return
        env = self.env
        named = [(str(i), a) for i, a in enumerate(call.args)] + [(k.arg, k.value) for k in call.keywords if k.arg]
        for slot, a in named:
            if isinstance(a, ast.Name) and env.get(a.id):
                env[a.id] = frozenset(x if x.startswith("g:") else f"g:{j}:{slot}|{x}" for x in env[a.id])

    def _predicate_return(self, value: ast.expr) -> None:
        """`return value in SORTS`, `return bool(SLUG_RE.fullmatch(s))`: what each parameter
        holds where this return gives a true value (a falsy constant constrains nothing). A
        parameter is tested by the function when every such return has it clean."""
        st = self.st
        if not st.param_names or (isinstance(value, ast.Constant) and not value.value):
            return
        if st.pred is not None and not st.pred:
            return  # some return already accepts every parameter as it is
        env = dict(self.env)
        on_true, _ = self._guard(value)
        self._apply_clean(env, on_true)
        got = {p: env.get(p, EMPTY) for p in st.param_names}
        if st.pred is None:
            st.pred = got
        else:
            st.pred = {p: _union((st.pred[p], got[p])) for p in st.pred if p in got}
        st.pred = {p: v for p, v in st.pred.items() if f"p:{p}" not in v}

    def _apply_clean(self, env: dict, names) -> dict:
        """Clean what a guard checked in `env`; a deferred entry (`?j:slot:name`, a project
        predicate judged by its body in solve.py) marks the atoms instead. Returns the old values."""
        saved: dict = {}
        for n in sorted(names):  # sets: a fixed order keeps nested `q:` markers independent of hashing
            if n[0] == "?":
                j, slot, name = n[1:].split(":", 2)
                old = env.get(name)
                if old:
                    saved.setdefault(name, old)
                    env[name] = frozenset(f"q:{j}:{slot}|{x}" for x in old)
            elif n in env or not n.isidentifier():
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

    def _assign(self, target: ast.AST, v: frozenset[str], value: ast.AST | None) -> None:
        env = self.env
        st = self.st
        if value is not None and self.has_registry and type(target) in (ast.Subscript, ast.Attribute):
            k = self._registry_key(target, store=True)
            if k is not None:
                r = self._stored_ref(value)
                if r:
                    reg = st.facts.registry
                    if reg is None:
                        reg = st.facts.registry = {}
                    reg[k] = r
        if isinstance(target, ast.Name):
            name = target.id
            if st.registry_names:
                st.registry_names.pop(name, None)
            if value is not None and self.has_registry and type(value) in (ast.Subscript, ast.Attribute, ast.Await):
                k = self._registry_key(value.value if isinstance(value, ast.Await) else value)
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
            # what is known of the value's shape: forget the old, learn the new
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
                return
            self.scopes[-1].locals[name] = self.ref(value) or f"${name}"
            vt = type(value)
            if vt is ast.Call:
                vref = self.ref(value.func)
                m = self.m
                if value.args and isinstance(value.args[0], ast.Name) and vref in m.url_parsers:
                    st.parsed_of[name] = value.args[0].id
                if vref in m.file_objects:
                    st.fileobj_of[name] = value
                if vref in m.normalizing_calls or (isinstance(value.func, ast.Attribute)
                                                   and value.func.attr in m.normalizing_methods):
                    st.normalized.add(name)
                if vref in ("shlex.split", "builtins.list", "builtins.tuple"):
                    st.list_names.add(name)
            if vt in (ast.Call, ast.Compare, ast.BoolOp, ast.UnaryOp):
                g = self._guard(value)
                if g[0] or g[1]:
                    st.guard_vars[name] = g  # `ok = url_has_allowed_host_and_scheme(url)` ... `if ok:`
            if vt in (ast.List, ast.Tuple, ast.ListComp):
                st.list_names.add(name)
            if vt in (ast.JoinedStr, ast.BinOp, ast.Constant, ast.Name, ast.Call) and self._fixed(value):
                st.prefix_names.add(name)
            if vt in (ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Call) and _const_collection(value):
                st.const_names.add(name)
            if vt in (ast.Dict, ast.DictComp, ast.Name, ast.Call) and self._const_keys(value):
                st.const_key_dicts.add(name)
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                for t, e in zip(target.elts, value.elts):
                    self._assign(t, self._ev(e), e)
            elif len(v) == 1 and next(iter(v)).startswith("r:") and "#" not in next(iter(v)) \
                    and not any(isinstance(t, ast.Starred) for t in target.elts):
                r = next(iter(v))
                for i, t in enumerate(target.elts):
                    self._assign(t, frozenset((f"{r}#{i}",)), None)
            else:
                for t in target.elts:
                    self._assign(t.value if isinstance(t, ast.Starred) else t, v, None)
        elif isinstance(target, ast.Attribute):
            if isinstance(target.value, ast.Name):
                env[f"{target.value.id}.{target.attr}"] = v
                if target.value.id == st.self_name and v and st.self_name:
                    st.tainted_attrs.add(target.attr)
                    w = st.facts.attr_writes
                    if w is None:
                        w = st.facts.attr_writes = {}
                    w[target.attr] = _union((w.get(target.attr, EMPTY), v))
        elif isinstance(target, ast.Subscript):
            base = target.value
            key = self._ev(target.slice)
            if isinstance(base, ast.Name) and not self._chosen_key(target.slice):
                st.const_key_dicts.discard(base.id)
            if isinstance(base, ast.Name):
                env[base.id] = _union((env.get(base.id, EMPTY), v, key))
            elif isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name):
                k = f"{base.value.id}.{base.attr}"
                env[k] = _union((env.get(k, EMPTY), v, key))
        elif isinstance(target, ast.Starred):
            self._assign(target.value, v, None)

    def _if(self, s: ast.If, env: dict) -> tuple[dict, bool]:
        self._ev(s.test)
        on_true, on_false = self._guard(s.test)
        e_true = dict(self.env)
        self._apply_clean(e_true, on_true)
        e_false = dict(self.env)
        self._apply_clean(e_false, on_false)
        e1, t1 = self._block(s.body, e_true)
        e2, t2 = self._block(s.orelse, e_false)
        if t1 and t2:
            return e1, True
        if t1:
            return e2, False
        if t2:
            return e1, False
        return _merge([e1, e2]), False

    def _loop(self, s, env: dict) -> tuple[dict, bool]:
        # a second pass over the body only when a variable live before the loop gained atoms
        # in the first one (what one iteration feeds the next)
        if isinstance(s, ast.While):
            self._ev(s.test)
            before = dict(self.env)
            e1, _ = self._block(s.body, dict(self.env))
            merged = _merge([env, e1])
            out = merged
            if _carried(before, merged):
                e2, _ = self._block(s.body, dict(merged))
                out = _merge([merged, e2])
        else:
            it = self._ev(s.iter)
            if isinstance(s.target, ast.Name):
                r = self.ref(s.iter)
                self.scopes[-1].locals[s.target.id] = f"{r}[]" if r else f"${s.target.id}"
            self._assign_loose(s.target, it)
            if isinstance(s.target, ast.Name):
                if not it and self._key_collection(s.iter):
                    self.st.const_keys.add(s.target.id)
                else:
                    self.st.const_keys.discard(s.target.id)
            before = dict(self.env)
            e1, _ = self._block(s.body, dict(self.env))
            merged = _merge([env, e1])
            out = merged
            if _carried(before, merged):
                self.env = merged
                self._assign_loose(s.target, it)
                e2, _ = self._block(s.body, dict(self.env))
                out = _merge([merged, e2])
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
        entry = _merge([pre, body_env])
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
        out = _merge(outs)
        if s.finalbody:
            return self._block(s.finalbody, out)
        return out, False

    # ----- guards ---------------------------------------------------------------------------
    def _guard(self, test: ast.expr) -> tuple[set[str], set[str]]:
        """Names made clean when `test` is true, and when it is false."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            t, f = self._guard(test.operand)
            return f, t
        if isinstance(test, ast.BoolOp):
            parts = [self._guard(v) for v in test.values]
            if isinstance(test.op, ast.And):
                return set().union(*(p[0] for p in parts)), set.intersection(*(p[1] for p in parts))
            return set.intersection(*(p[0] for p in parts)), set().union(*(p[1] for p in parts))
        if isinstance(test, ast.NamedExpr):
            return self._guard(test.value)
        if isinstance(test, ast.Name):
            # a falsy value ("", 0, None, {}) carries nothing: the false branch cleans the name
            g = self.st.guard_vars.get(test.id)
            return (set(g[0]), set(g[1]) | {test.id}) if g else (set(), {test.id})
        if isinstance(test, ast.Compare):
            if len(test.ops) == 1 and isinstance(test.left, ast.Call) and isinstance(test.ops[0], (ast.Is, ast.IsNot)) \
                    and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None:
                got = self._guard_call(test.left)  # `PATTERN.fullmatch(s) is not None`
                return (got, set()) if isinstance(test.ops[0], ast.IsNot) else (set(), got)
            return self._guard_compare(test)
        if isinstance(test, ast.Call):
            if len(test.args) == 1 and not test.keywords and self.ref(test.func) == "builtins.bool":
                return self._guard(test.args[0])
            return self._guard_call(test), set()
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
        ref = self.ref(call.func)
        m = self.m
        args = call.args
        if ref in m.guard_calls:
            if ref.endswith("fullmatch") and len(args) >= 2:
                return self._checked(args[1:2])
            kw = [k.value for k in call.keywords if k.arg in ("url", "value", "string", "obj")]
            return self._checked(args[:1] + kw)
        if ref in m.anchored_regex_calls and len(args) >= 2:
            if isinstance(args[0], ast.Constant) and isinstance(args[0].value, str) and anchored(args[0].value):
                return self._checked(args[1:2])
            if isinstance(args[0], ast.Name) and args[0].id in self.regex_consts and anchored(self.regex_consts[args[0].id]):
                return self._checked(args[1:2])
            return set()
        if isinstance(call.func, ast.Attribute):
            meth = call.func.attr
            recv = call.func.value
            if meth in m.containment_methods:
                # a containment check holds only on a normalised path (no `..` left to escape)
                if isinstance(recv, ast.Name) and recv.id in self.st.normalized and args and not self._ev(args[0]):
                    return {recv.id}
                return set()
            if meth in m.guard_methods:
                if meth == "fullmatch":
                    return self._checked(args[:1])
                return self._checked([recv])
            if meth in m.anchored_regex_methods and isinstance(recv, ast.Name) and recv.id in self.regex_consts \
                    and anchored(self.regex_consts[recv.id]):
                return self._checked(args[:1])
        if ref and self._possibly_project(ref):
            # a project predicate: solve.py judges it by its body (`return value in SORTS`), or by
            # its name (`is_safe_url(target)`) when the body is not in the project
            out: set[str] = set()
            j = self.st.call_ids.get((call.lineno, call.col_offset, call.end_lineno, call.end_col_offset))
            named = [(str(i), a) for i, a in enumerate(args)] + [(k.arg, k.value) for k in call.keywords if k.arg]
            if j is not None:
                for slot, a in named:
                    if isinstance(a, ast.Name) and self.env.get(a.id):
                        out.add(f"?{j}:{slot}:{a.id}")
            if self.m.guard_name.search(ref.rsplit(".", 1)[-1].lstrip("@")):
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
        if node is None:
            return EMPTY
        t = type(node)
        if t is ast.Constant:
            return EMPTY
        if t is ast.Name:
            v = self.env.get(node.id, EMPTY)
            if not v and self.st.closures and node.id in self.st.closures:
                return self._closure_ref(node)
            return v
        if t is ast.Attribute:
            return self._attribute(node)
        if t is ast.Call:
            return self._call(node)
        if t is ast.Subscript:
            return self._subscript(node)
        if t is ast.JoinedStr:
            return self._concat([v.value if isinstance(v, ast.FormattedValue) else v for v in node.values])
        if t is ast.BinOp:
            op = node.op
            if isinstance(op, ast.Add) and _stringy(node):
                return self._concat(_add_terms(node))
            if isinstance(op, ast.Mod) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
                values = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
                texts = _PERCENT.split(node.left.value)
                if len(texts) == len(values) + 1 and not isinstance(node.right, ast.Dict):
                    return self._concat(_interleave(texts, values))
            return _union((self._ev(node.left), self._ev(node.right)))
        if t is ast.Await:
            return self._ev(node.value)
        if t in (ast.List, ast.Tuple, ast.Set):
            return _union([self._ev(e) for e in node.elts])
        if t is ast.Dict:
            return _union([self._ev(k) for k in node.keys if k is not None] + [self._ev(v) for v in node.values])
        if t is ast.BoolOp:
            return _union([self._ev(v) for v in node.values])
        if t is ast.IfExp:
            self._ev(node.test)
            on_true, on_false = self._guard(node.test)
            return _union((self._guarded(node.body, on_true), self._guarded(node.orelse, on_false)))
        if t is ast.Compare:
            self._ev(node.left)
            for c in node.comparators:
                self._ev(c)
            return EMPTY
        if t is ast.UnaryOp:
            v = self._ev(node.operand)
            return EMPTY if isinstance(node.op, ast.Not) else v
        if t is ast.Starred:
            return self._ev(node.value)
        if t is ast.NamedExpr:
            v = self._ev(node.value)
            self._assign(node.target, v, node.value)
            return v
        if t in (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp):
            return self._comprehension(node)
        if t is ast.FormattedValue:
            return self._ev(node.value)
        if t is ast.Slice:
            return _union((self._ev(node.lower), self._ev(node.upper)))
        if t is ast.Lambda:
            return self._lambda(node)
        if t in (ast.Yield, ast.YieldFrom):
            return self._ev(node.value)
        return EMPTY

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
            v = _union((self._ev(node.key), self._ev(node.value)))
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
            text = line.encode("utf-8")[node.col_offset:node.end_col_offset].decode("utf-8", "replace")
        else:
            text = line.encode("utf-8")[node.col_offset:].decode("utf-8", "replace").rstrip() + " ..."
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def _kwargs_key(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return f"kwargs:{node.value}"
        return "kwargs:"

    def _attribute(self, node: ast.Attribute) -> frozenset[str]:
        src = self._source_attr(node)
        if src is not None:
            return self._new_source(node, src)
        if node.attr in self.m.validated_attrs:
            self._ev(node.value)
            return EMPTY
        base = node.value
        if isinstance(base, ast.Name):
            key = f"{base.id}.{node.attr}"
            if key in self.env:
                return self.env[key]
            if base.id == self.st.self_name and self.st.self_name:
                if node.attr in self.st.tainted_attrs:
                    return frozenset((f"a:{node.attr}",))
                cls = self.scopes[-1].class_qualname
                if cls and self._is_property(f"{cls}.{node.attr}"):
                    # `self.search_term` computed by a @property: a call of that method
                    j = self._record(node, f"@{cls}().{node.attr}", [], {}, EMPTY, EMPTY, "self", node.attr)
                    self.st.facts.calls[j].hints["self_recv"] = True
                    return frozenset((f"r:{j}",))
            v = self.env.get(base.id, EMPTY)
            if len(v) == 1 and f"p:{base.id}" in v:
                return frozenset((f"p:{base.id}.{node.attr}",))
            return v
        return self._ev(base)

    def _is_property(self, qualname: str) -> bool:
        fn = self.module.functions.get(qualname)
        return fn is not None and any((d.ref or "").endswith(("builtins.property", "cached_property"))
                                      for d in fn.decorators)

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
        if isinstance(base, ast.Attribute):
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
        if self._source_call(node):
            return self._new_source(node)
        func = node.func
        m = self.m
        meth = None
        recv = EMPTY
        recv_ref = ""
        module_recv = False
        if isinstance(func, ast.Attribute):
            meth = func.attr
            base = func.value
            # `request.GET.get("q")`, `self.kwargs.get("slug")`: the read is the source
            if meth == "get" and self.st.item_guards:
                k = self._path_key(node)
                if k is not None and k in self.env:
                    return self.env[k]
            if meth in ("get", "getlist", "getone", "getall", "get_all") and isinstance(base, ast.Attribute):
                src = self._source_attr(base)
                if src is not None:
                    for a in node.args:
                        self._ev(a)
                    key = self._kwargs_key(node.args[0]) if src == "kwargs" and node.args else ""
                    atoms = self._new_source(node, key)
                    for k in node.keywords:  # Flask / Werkzeug `args.get("page", type=int)` converts
                        if k.arg == "type" and self.ref(k.value) in m.numeric_calls:
                            return _numeric(atoms)
                    return atoms
            if meth == "get" and self._const_mapping(base):
                # a lookup in a constant table returns one of its constants (or the default)
                return _union([self._ev(a) for a in node.args[1:]] + [self._ev(k.value) for k in node.keywords])
            recv = self._ev(base)
            base_ref = self.ref(base)
            ref = f"{base_ref}.{meth}" if base_ref is not None else None
            recv_ref = base_ref or ""
            # `yaml.load(...)` is a module function, `connection.ops.quote_name(...)` a method
            module_recv = isinstance(base, ast.Name) and not recv and "." not in recv_ref \
                and self.summary.imports.get(base.id) == recv_ref
            if not recv_ref and isinstance(base, ast.Name):
                recv_ref = base.id
            elif isinstance(base, ast.Name) and base.id not in recv_ref:
                recv_ref = f"{recv_ref} {base.id}"
        elif not isinstance(func, ast.Name):
            self._ev(func)
            ref = self.ref(func)
            if type(func) is ast.Call and func.args and self.ref(func.func) in m.callable_wrappers:
                ref = self.ref(func.args[0]) or ref  # `sync_to_async(save)(name)` calls save(name)
        else:
            ref = self.name_ref(func.id)
        args = [self._ev(a) for a in node.args]
        kwargs: dict[str, frozenset[str]] = {}
        star = EMPTY
        for k in node.keywords:
            v = self._ev(k.value)
            if k.arg is None:
                if not self._const_keys(k.value):
                    star = _union((star, v))
            else:
                kwargs[k.arg] = v
        runner = self.runner_refs.get(ref) if ref else None
        if runner is None and meth is not None and meth in self.runner_meths and not module_recv:
            runner = self.runner_meths[meth]
        if runner is not None and runner < len(node.args):
            got = self._run_callback(node, runner, args, kwargs)
            if got is not None:
                return got
        registry = None
        if meth is not None and self.has_registry and (any(args) or any(kwargs.values()) or star):
            base = func.value
            registry = self.st.registry_names.get(base.id) if isinstance(base, ast.Name) and self.st.registry_names \
                else None
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
                self.st.facts.calls[j].hints["registry"] = (*registry, meth)
                return frozenset((f"r:{j}",))
        if ref in m.clean_calls:
            return EMPTY
        if ref in m.source_calls:
            return self._new_source(node)
        if self._strips_to_safe_chars(node, ref, meth):
            return EMPTY
        if ref in m.tail_calls:
            return _tail(_union((*args, *kwargs.values())))
        if meth == "format" and isinstance(func.value, ast.Constant) and isinstance(func.value.value, str):
            return self._format(func.value.value, node)
        if ref in m.numeric_calls:
            return _numeric(_union(args))
        if meth == "update" and isinstance(func.value, ast.Attribute) and func.value.attr == "__dict__":
            if args and args[0]:
                self._record(node, "<__dict__.update>", args, kwargs, star, recv, recv_ref, "__dict__.update")
            return EMPTY
        tainted = bool(recv or star or any(args) or any(kwargs.values()))
        project = self._possibly_project(ref)
        captured = self._closure_atoms(func.id) if isinstance(func, ast.Name) and self.st.closures else None
        self_recv = bool(self.st.tainted_attrs) and meth is not None and isinstance(func.value, ast.Name) \
            and func.value.id == self.st.self_name
        j = None
        # an external callee that is no sink needs no record: its result is computed right here
        name = meth if meth is not None else func.id if isinstance(func, ast.Name) else None
        if (tainted and (project or name in m.sink_names)) or self_recv or (project and node is not self.discarded) \
                or captured:
            j = self._record(node, ref, args, kwargs, star, recv, recv_ref, None)
            if self_recv:
                self.st.facts.calls[j].hints["self_recv"] = True
            if captured:
                self.st.facts.calls[j].hints["closure"] = captured
        if meth is not None and not module_recv:
            if meth in m.container_writers and (args or kwargs):
                key = _target_key(func.value)
                if meth in ("update", "setdefault") and key in self.st.const_key_dicts and \
                        not (meth == "update" and not node.args) and \
                        not (meth == "setdefault" and node.args and isinstance(node.args[0], ast.Constant)) and \
                        not (meth == "update" and node.args and self._const_keys(node.args[0])):
                    self.st.const_key_dicts.discard(key)
                if key is not None:
                    self.env[key] = _union((self.env.get(key, EMPTY), *args, *kwargs.values()))
            if meth in m.clean_methods:
                return EMPTY
        if project and j is not None:
            return frozenset((f"r:{j}",))
        if ref in m.consuming_sinks:
            return EMPTY  # what a sink builds (text(), RawSQL, Template) is reported at the sink
        if name_is_class(ref):
            return _union((recv, *args, *kwargs.values(), star))  # an object built from the data
        if (meth is None or module_recv) and ref not in m.propagate_all and args:
            # a library function: its result is made from its first argument (`unquote(x)`,
            # `json.loads(x)`); the others are options (`translate_url(url, lang)`) unless listed
            return args[0]
        return _union((recv, *args))

    def _run_callback(self, node: ast.Call, pos: int, args: list, kwargs: dict) -> frozenset[str] | None:
        """`asyncio.to_thread(save, name, data)`, `loop.run_in_executor(None, save, name)`,
        `executor.submit(save, name)`: a call of the project function `save` with the arguments
        after it (recorded at the function argument). None when it is no project function."""
        fnode = node.args[pos]
        if type(fnode) not in (ast.Name, ast.Attribute):
            return None
        fref = self.ref(fnode)
        registry = None
        if type(fnode) is ast.Attribute and self.has_registry and (not fref or fref[0] == "$"):
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
        if not ref:
            return False
        c = ref[0]
        if c in "@.":
            return True
        if c == "$":
            return False
        return not self.m.is_external_head(ref.split(".", 1)[0])

    def _record(self, node: ast.AST, ref: str | None, args, kwargs, star, recv, recv_ref: str, text: str | None) -> int:
        pos = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
        j = self.st.call_ids.get(pos)
        if j is not None:
            old = self.st.facts.calls[j]
            old.args = [_union((a, b)) for a, b in zip(old.args, args)] if len(old.args) == len(args) else args
            for k, v in kwargs.items():
                old.kwargs[k] = _union((old.kwargs.get(k, EMPTY), v))
            old.star = _union((old.star, star))
            old.recv = _union((old.recv, recv))
            return j
        hints: dict = {}
        func = node.func if isinstance(node, ast.Call) else None
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
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
            if node.args and self.has_limit:
                lim = self._limit_atoms(node)
                if lim:
                    hints["limit"] = lim
            if text is None:
                text = self._seg(func, 50)
        j = len(self.st.facts.calls)
        self.st.call_ids[pos] = j
        end_line = node.end_lineno or node.lineno
        self.st.facts.calls.append(CallFact(
            ref=ref, line=node.lineno, col=self.lines.char_col(node.lineno, node.col_offset), end_line=end_line,
            end_col=self.lines.char_col(end_line, node.end_col_offset or node.col_offset), text=text or name or "",
            args=list(args), kwargs=dict(kwargs), star=star, recv=recv, recv_ref=recv_ref, hints=hints,
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


_INERT = frozenset((ast.Delete, ast.Global, ast.Nonlocal, ast.Pass, ast.ClassDef))


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
        "source_ids",
        "tainted_attrs",
    )

    def __init__(self, qualname: str, facts: FuncFacts, self_name: str | None, request_names: set[str]):
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
        self.tainted_attrs: set[str] = set()
        self.const_key_dicts: set[str] = set()
        #: loop variables that iterate over a constant collection of names (`for f in FIELDS`)
        self.const_keys: set[str] = set()
        self.normalized: set[str] = set()
        self.guard_vars: dict[str, tuple[set[str], set[str]]] = {}
        self.parsed_of: dict[str, str] = {}
        self.item_guards = False  # some guard checked an item such as data["sort"]
        self.fileobj_of: dict[str, ast.AST] = {}
        self.param_names: set[str] = set()
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
