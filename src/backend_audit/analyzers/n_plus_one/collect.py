"""Per-file facts for the N+1 analyzer: what each function does with names, in source order.

The generic `ModuleSummary` records calls but not plain attribute reads (`book.author.name` is
not a call), so this module walks the functions of a file once and records, per function:

* `uses`: every maximal *chain* expression rooted at a name (`book.author.name`,
  `Book.objects.filter(x=1).count()`, `requests.get(url)`), with its position, the ids of the
  enclosing `for` loops / comprehensions, the syntactic context it is used in, whether it
  is awaited and whether it contains a call:
  `(root, steps, line, col, end_line, end_col, loop_ids, ctx, awaited, has_call)`;
* `assigns`: `name = <value>` (also `with ... as name`, walrus), in order, with the line where
  the binding takes effect;
* `loops`: each `for` loop and comprehension generator: what it iterates, its target names;
* `returns`: the value descriptors of `return` statements.

A chain is `(root_name, steps)` with steps `("a", attr)`, `("c", args, kwargs)` (a call of the
value so far) and `("i",)` (a subscript). Values are small tuples: `("s", str)` a string
constant, `("k", other constant)`, `("ch", root, steps)` a chain, `("list", [...])`,
`("dict", [(key, value)...])`, `("?",)`. Everything is picklable and depends only on the text.
"""

from __future__ import annotations

import ast
import sys
from typing import Any

MODULE = "<module>"
MAX_DEPTH = 40

# evaluation contexts of a use
ITER, TEST, ARG, STMT, ASSIGN, RET, OTHER = "iter", "test", "arg", "stmt", "assign", "ret", "other"


def _chain(node: ast.AST) -> tuple[str, list] | None:
    """(root name, steps) of an attribute/call/subscript chain rooted at a Name."""
    steps: list = []
    while True:
        if isinstance(node, ast.Attribute):
            steps.append(("a", node.attr))
            node = node.value
        elif isinstance(node, ast.Call):
            steps.append(("c", node))
            node = node.func
        elif isinstance(node, ast.Subscript):
            steps.append(("i", node))
            node = node.value
        elif isinstance(node, ast.Await):
            node = node.value
        elif isinstance(node, ast.Name):
            steps.reverse()
            return node.id, steps
        else:
            return None


class _FnFacts:
    __slots__ = ("assigns", "loops", "qualname", "returns", "uses")

    def __init__(self, qualname: str):
        self.qualname = qualname
        self.uses: list[tuple] = []
        self.assigns: list[tuple] = []
        self.loops: list[tuple] = []
        self.returns: list[tuple] = []

    def freeze(self) -> dict[str, Any]:
        return {"uses": self.uses, "assigns": self.assigns, "loops": self.loops, "returns": self.returns}


class Collector:
    """One pass over a module tree; qualnames follow `parsing.summary` (`A.f`, `f.<locals>.g`)."""

    def __init__(self) -> None:
        self.functions: dict[str, dict[str, Any]] = {}
        self.stack: list[_FnFacts] = []
        self.defs: list[tuple[str, str]] = []
        self.loop_stack: list[list[int]] = []
        self.loop_counter: list[int] = []
        self.awaited: set[int] = set()
        #: class qualname -> {attr: (value, line)} for class-body assignments (full chains)
        self.classes: dict[str, dict[str, tuple]] = {}
        #: class qualname -> base values, for classes with a called base (`Manager.from_queryset(QS)`)
        self.bases: dict[str, tuple] = {}
        self.memo: dict[int, tuple] = {}

    # ----- scopes ---------------------------------------------------------------------------
    def run(self, tree: ast.Module) -> dict[str, dict[str, Any]]:
        self._enter(MODULE)
        for stmt in tree.body:
            self.stmt(stmt)
        self._exit()
        return {q: f for q, f in self.functions.items() if f["uses"] or f["returns"] or f["loops"]}

    def _enter(self, qualname: str) -> None:
        self.stack.append(_FnFacts(qualname))
        self.loop_stack.append([])
        self.loop_counter.append(0)

    def _exit(self) -> None:
        f = self.stack.pop()
        self.loop_stack.pop()
        self.loop_counter.pop()
        self.functions[f.qualname] = f.freeze()

    def _qualname(self, name: str) -> str:
        if not self.defs:
            return name
        kind, outer = self.defs[-1]
        return f"{outer}.{name}" if kind == "class" else f"{outer}.<locals>.{name}"

    @property
    def fn(self) -> _FnFacts:
        return self.stack[-1]

    def _loops(self) -> tuple[int, ...]:
        return tuple(self.loop_stack[-1])

    def _new_loop(self) -> int:
        self.loop_counter[-1] += 1
        return self.loop_counter[-1]

    # ----- statements -------------------------------------------------------------------------
    def body(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, node: ast.stmt) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in node.decorator_list:
                self.expr(d, OTHER)
            q = self._qualname(node.name)
            self.defs.append(("func", q))
            self._enter(q)
            self.body(node.body)
            self._exit()
            self.defs.pop()
        elif isinstance(node, ast.ClassDef):
            for b in node.bases:
                self.expr(b, OTHER)
            q = self._qualname(node.name)
            if any(isinstance(b, ast.Call) for b in node.bases):
                self.bases[q] = tuple(self.value(b) for b in node.bases)
            attrs = self.classes.setdefault(q, {})
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and stmt.value is not None:
                    for t in stmt.targets:
                        if isinstance(t, ast.Name):
                            attrs[t.id] = (self.value(stmt.value), stmt.lineno)
                elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
                    attrs[stmt.target.id] = (self.value(stmt.value), stmt.lineno)
            self.defs.append(("class", q))
            self.body(node.body)
            self.defs.pop()
        elif isinstance(node, ast.Assign):
            self.expr(node.value, ASSIGN)
            end = node.end_lineno or node.lineno
            for t in node.targets:
                self._target(t, node.value, end)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.expr(node.value, ASSIGN)
                self._target(node.target, node.value, node.end_lineno or node.lineno)
        elif isinstance(node, ast.AugAssign):
            self.expr(node.value, OTHER)
            self.expr(node.target, OTHER)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expr(node.iter, ITER)
            lid = self._new_loop()
            has_exit = _is_range(node.iter) and any(isinstance(n, (ast.Break, ast.Return))
                                                    for s in node.body for n in ast.walk(s))
            self.fn.loops.append((lid, self.value(node.iter), _targets(node.target), node.lineno,
                                  node.end_lineno or node.lineno, False, has_exit, node.iter.lineno))
            self.loop_stack[-1].append(lid)
            self._target_uses(node.target)
            self.body(node.body)
            self.loop_stack[-1].pop()
            self.body(node.orelse)
        elif isinstance(node, ast.While) or isinstance(node, ast.If):
            self.expr(node.test, TEST)
            self.body(node.body)
            self.body(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if isinstance(node, ast.AsyncWith):
                    self.awaited.add(id(item.context_expr))
                self.expr(item.context_expr, ASSIGN if item.optional_vars is not None else OTHER)
                if isinstance(item.optional_vars, ast.Name):
                    self.fn.assigns.append((item.optional_vars.id, self.value(item.context_expr),
                                            item.context_expr.end_lineno or node.lineno, self._loops()))
            self.body(node.body)
        elif isinstance(node, ast.Return):
            if node.value is not None:
                self.expr(node.value, RET)
                self.fn.returns.append((self.value(node.value), node.lineno))
        elif isinstance(node, ast.Expr):
            self.expr(node.value, STMT)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            self.body(node.body)
            for h in node.handlers:
                self.body(h.body)
            self.body(node.orelse)
            self.body(node.finalbody)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if len(self.stack) > 1:  # a function-level import binds a local name
                line = node.end_lineno or node.lineno
                if isinstance(node, ast.ImportFrom):
                    base = "." * (node.level or 0) + (node.module or "")
                    for alias in node.names:
                        if alias.name != "*":
                            sep = "" if base.endswith(".") or not base else "."
                            self.fn.assigns.append((alias.asname or alias.name, ("imp", f"{base}{sep}{alias.name}"),
                                                    line, self._loops()))
                else:
                    for alias in node.names:
                        name = alias.asname or alias.name.split(".")[0]
                        self.fn.assigns.append((name, ("imp", alias.name if alias.asname else name), line,
                                                self._loops()))
        elif isinstance(node, ast.Match):
            self.expr(node.subject, OTHER)
            for case in node.cases:
                self.body(case.body)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child, OTHER)
                elif isinstance(child, ast.stmt):
                    self.stmt(child)

    def _target(self, target: ast.AST, value: ast.AST, line: int) -> None:
        if isinstance(target, ast.Name):
            self.fn.assigns.append((target.id, self.value(value), line, self._loops()))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                if isinstance(elt, ast.Name):
                    self.fn.assigns.append((elt.id, ("?",), line, self._loops()))
        else:
            # `row.author = x` writes the attribute: only the object it is set on is used (read)
            if isinstance(target, ast.Attribute):
                self.expr(target.value, OTHER)
            elif isinstance(target, ast.Subscript):
                self.expr(target.value, OTHER)
                self.expr(target.slice, OTHER)
            ch = _chain(target)
            if ch is not None and isinstance(target, ast.Subscript):
                key = target.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    root, steps = ch
                    if not steps[:-1]:
                        self.fn.assigns.append((f"{root}[{key.value}]", self.value(value), line, self._loops()))

    def _target_uses(self, target: ast.AST) -> None:
        if not isinstance(target, (ast.Name, ast.Tuple, ast.List)):
            self.expr(target, OTHER)

    # ----- expressions --------------------------------------------------------------------------
    def expr(self, node: ast.AST | None, ctx: str) -> None:
        if node is None:
            return
        if isinstance(node, ast.Await):
            self.awaited.add(id(node.value))
            self.expr(node.value, ctx)
            return
        t = type(node)
        if t is ast.Constant:
            return
        if t is ast.Attribute or t is ast.Call or t is ast.Subscript:
            v = self.value(node)
            if v[0] == "ch":
                steps = v[2]
                self.fn.uses.append((
                    v[1], steps, node.lineno, node.col_offset,
                    node.end_lineno or node.lineno, node.end_col_offset or node.col_offset,
                    self._loops(), ctx, id(node) in self.awaited,
                    any(st[0] == "c" for st in steps),
                ))
                n = node
                while True:
                    tn = type(n)
                    if tn is ast.Attribute:
                        n = n.value
                    elif tn is ast.Call:
                        f = n.func
                        fname = f.id if type(f) is ast.Name else (f.attr if type(f) is ast.Attribute else "")
                        actx = sys.intern(f"{ARG}:{fname}")  # one string per name: a smaller pickle
                        for a in n.args:
                            self.expr(a.value if type(a) is ast.Starred else a, actx)
                        for k in n.keywords:
                            self.expr(k.value, actx)
                        n = f
                    elif tn is ast.Subscript:
                        self.expr(n.slice, OTHER)
                        n = n.value
                    elif tn is ast.Await:
                        n = n.value
                    else:
                        break
                return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            self._comprehension(node, ctx)
            return
        if isinstance(node, ast.Lambda):
            return  # its own scope; rarely where N+1 hides
        if isinstance(node, ast.NamedExpr):
            self.expr(node.value, ASSIGN)
            self.fn.assigns.append((node.target.id, self.value(node.value), node.lineno, self._loops()))
            return
        if isinstance(node, ast.Name):
            self.fn.uses.append((node.id, (), node.lineno, node.col_offset, node.end_lineno or node.lineno,
                                 node.end_col_offset or node.col_offset, self._loops(), ctx,
                                 id(node) in self.awaited, False))
            return
        sub = TEST if isinstance(node, (ast.BoolOp, ast.UnaryOp)) and ctx == TEST else OTHER
        if isinstance(node, ast.Compare) and ctx == TEST:
            sub = "cmp"
        if isinstance(node, ast.IfExp):
            self.expr(node.test, TEST)
            self.expr(node.body, ctx)
            self.expr(node.orelse, ctx)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child, sub)
            elif isinstance(child, ast.keyword):
                self.expr(child.value, OTHER)
            elif isinstance(child, ast.comprehension):  # pragma: no cover - handled above
                pass

    def _comprehension(self, node, ctx: str) -> None:
        gens = node.generators
        self.expr(gens[0].iter, ITER)
        opened = []
        for i, gen in enumerate(gens):
            if i:
                self.expr(gen.iter, ITER)
            lid = self._new_loop()
            self.fn.loops.append((lid, self.value(gen.iter), _targets(gen.target), node.lineno,
                                  node.end_lineno or node.lineno, True, False, gen.iter.lineno))
            self.loop_stack[-1].append(lid)
            opened.append(lid)
            for cond in gen.ifs:
                self.expr(cond, TEST)
        if isinstance(node, ast.DictComp):
            self.expr(node.key, OTHER)
            self.expr(node.value, OTHER)
        else:
            self.expr(node.elt, OTHER)
        for _ in opened:
            self.loop_stack[-1].pop()

    def _steps(self, steps: list) -> tuple:
        out = []
        for kind, *rest in steps:
            if kind == "a":
                out.append(("a", rest[0]))
            elif kind == "c":
                call = rest[0]
                out.append(("c", tuple(self.value(a) for a in call.args),
                            tuple((k.arg, self.value(k.value)) for k in call.keywords if k.arg)))
            else:
                sl = rest[0].slice
                out.append(("i", self.value(sl) if isinstance(sl, ast.Constant) else ("?",)))
        return tuple(out)

    def value(self, node: ast.AST | None, depth: int = 0) -> tuple:
        if node is None or depth > MAX_DEPTH:
            return ("?",)
        key = id(node)
        memo = self.memo.get(key)
        if memo is not None:
            return memo
        v = self._value(node, depth)
        if depth < MAX_DEPTH - 2:
            self.memo[key] = v
        return v

    def _value(self, node: ast.AST, depth: int) -> tuple:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                return ("s", node.value)
            if isinstance(node.value, (int, float, bool)) or node.value is None:
                return ("k", node.value)
            return ("?",)
        if isinstance(node, ast.Await):
            return self.value(node.value, depth)
        if isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)):
            ch = _chain(node)
            if ch is None:
                return ("?",)
            return ("ch", ch[0], self._steps_shallow(ch[1], depth), node.lineno, node.col_offset)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return ("list", tuple(self.value(e.value if isinstance(e, ast.Starred) else e, depth + 1)
                                  for e in node.elts))
        if isinstance(node, ast.Dict):
            return ("dict", tuple((self.value(k, depth + 1) if k is not None else ("?",), self.value(v, depth + 1))
                                  for k, v in zip(node.keys, node.values)))
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            return ("comp", self.value(node.generators[0].iter, depth + 1))
        if isinstance(node, ast.BoolOp):
            return ("or", tuple(self.value(v, depth + 1) for v in node.values))
        if isinstance(node, ast.IfExp):
            return ("or", (self.value(node.body, depth + 1), self.value(node.orelse, depth + 1)))
        if isinstance(node, ast.JoinedStr):
            return ("fstr",)
        if isinstance(node, ast.BinOp):
            return ("binop",)
        return ("?",)

    def _steps_shallow(self, steps: list, depth: int) -> tuple:
        out = []
        for kind, *rest in steps:
            if kind == "a":
                out.append(("a", rest[0]))
            elif kind == "c":
                call = rest[0]
                out.append(("c", tuple(self.value(a.value if isinstance(a, ast.Starred) else a, depth + 1)
                                       for a in call.args),
                            tuple((k.arg, self.value(k.value, depth + 1)) for k in call.keywords if k.arg)))
            else:
                sl = rest[0].slice
                out.append(("i", self.value(sl, depth + 1) if isinstance(sl, ast.Constant) else ("?",)))
        return tuple(out)


def _targets(target: ast.AST) -> tuple:
    """A loop target: ("n", name) or ("t", (name-or-None, ...)) for tuple unpacking."""
    if isinstance(target, ast.Name):
        return ("n", target.id)
    if isinstance(target, (ast.Tuple, ast.List)):
        return ("t", tuple(e.id if isinstance(e, ast.Name) else None for e in target.elts))
    return ("?",)


def collect_python(tree: ast.Module) -> dict[str, Any]:
    c = Collector()
    functions = c.run(tree)
    return {"functions": functions, "classes": {q: a for q, a in c.classes.items() if a}, "bases": c.bases}


def _is_range(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
