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
from ast import Attribute, Await, Call, Constant, Name, Starred, Subscript
from collections.abc import Callable
from typing import Any

MODULE = "<module>"
MAX_DEPTH = 40

# evaluation contexts of a use
ITER, TEST, ARG, STMT, ASSIGN, RET, OTHER = "iter", "test", "arg", "stmt", "assign", "ret", "other"

#: the value nothing is known about (one shared tuple: pickle writes it once per file)
UNKNOWN: tuple = ("?",)
#: the step of a call without arguments, shared likewise
_CALL_NO_ARGS: tuple = ("c", (), ())
_EMPTY_LIST: tuple = ("list", ())
_EMPTY_DICT: tuple = ("dict", ())

# Speed: this module runs on every file of a scan. It dispatches on `type(node)` (the exact classes
# `ast.parse` creates) through per-type tables instead of isinstance chains, reads child fields
# directly instead of `ast.iter_child_nodes`, walks each chain once for its use and its value, and
# shares equal immutable parts of the facts (see `Collector.__init__`) so they pickle smaller.


def _walk_chain(node: ast.AST) -> tuple[list[ast.AST], ast.AST, bool]:
    """Follow an attribute/call/subscript chain (through `await`) down to its root.

    Returns the chain's attributes, calls and subscripts, outermost first; the node the walk stopped
    at (a Name if the chain is rooted at one); and whether the chain contains a call.
    """
    links: list[ast.AST] = []
    has_call = False
    while True:
        t = type(node)
        if t is Attribute or t is Subscript:
            links.append(node)
            node = node.value
        elif t is Call:
            links.append(node)
            has_call = True
            node = node.func
        elif t is Await:
            node = node.value
        else:
            return links, node, has_call


class _FnFacts:
    __slots__ = ("assigns", "loops", "n_loops", "open_loops", "qualname", "returns", "uses")

    def __init__(self, qualname: str):
        self.qualname = qualname
        self.uses: list[tuple] = []
        self.assigns: list[tuple] = []
        self.loops: list[tuple] = []
        self.returns: list[tuple] = []
        #: ids of the loops enclosing the current node, innermost last (shared by the facts made there)
        self.open_loops: tuple[int, ...] = ()
        #: loop ids handed out so far in this function
        self.n_loops = 0

    def freeze(self) -> dict[str, Any]:
        return {"uses": self.uses, "assigns": self.assigns, "loops": self.loops, "returns": self.returns}


class Collector:
    """One pass over a module tree; qualnames follow `parsing.summary` (`A.f`, `f.<locals>.g`)."""

    def __init__(self) -> None:
        self.functions: dict[str, dict[str, Any]] = {}
        self.stack: list[_FnFacts] = []
        #: the innermost function being collected (`stack[-1]`; `run` sets it)
        self.fn: _FnFacts = _FnFacts(MODULE)
        self.defs: list[tuple[str, str]] = []
        self.awaited: set[int] = set()
        #: class qualname -> {attr: (value, line)} for class-body assignments (full chains)
        self.classes: dict[str, dict[str, tuple]] = {}
        #: class qualname -> base values, for classes with a called base (`Manager.from_queryset(QS)`)
        self.bases: dict[str, tuple] = {}
        self.memo: dict[int, tuple] = {}
        #: callee name -> its interned `arg:<name>` context
        self.arg_ctx: dict[str, str] = {}
        # Equal immutable parts are shared (one object each per file) so that pickle's memo writes
        # them once and unpickling builds them once: attribute steps, the steps `(("a", attr),)`
        # of `name.attr`, constant values and the tuples of open loop ids.
        self.strings: dict[str, tuple] = {}
        self.scalars: dict[tuple, tuple] = {}
        self.attr_steps: dict[str, tuple] = {}
        self.loop_tuples: dict[tuple[int, ...], tuple[int, ...]] = {}

    # ----- scopes ---------------------------------------------------------------------------
    def run(self, tree: ast.Module) -> dict[str, dict[str, Any]]:
        self._enter(MODULE)
        self.body(tree.body)
        self._exit()
        return {q: f for q, f in self.functions.items() if f["uses"] or f["returns"] or f["loops"]}

    def _enter(self, qualname: str) -> None:
        self.fn = _FnFacts(qualname)
        self.stack.append(self.fn)

    def _exit(self) -> None:
        stack = self.stack
        f = stack.pop()
        if stack:
            self.fn = stack[-1]
        self.functions[f.qualname] = f.freeze()

    def _qualname(self, name: str) -> str:
        if not self.defs:
            return name
        kind, outer = self.defs[-1]
        return f"{outer}.{name}" if kind == "class" else f"{outer}.<locals>.{name}"

    def _loops(self) -> tuple[int, ...]:
        return self.fn.open_loops

    def _new_loop(self) -> int:
        fn = self.fn
        fn.n_loops += 1
        return fn.n_loops

    def _shared_loops(self, loops: tuple[int, ...]) -> tuple[int, ...]:
        return self.loop_tuples.setdefault(loops, loops)

    def _new_attr_steps(self, attr: str) -> tuple:
        """`(("a", attr),)`: the steps of `name.attr`; its one element is the shared attribute step."""
        steps = self.attr_steps[attr] = (("a", attr),)
        return steps

    def _new_arg_context(self, fname: str) -> str:
        actx = self.arg_ctx[fname] = sys.intern(f"{ARG}:{fname}")  # one string per name: a smaller pickle
        return actx

    # ----- statements -------------------------------------------------------------------------
    def body(self, stmts: list[ast.stmt]) -> None:
        handlers = _STMT
        other = Collector._stmt_other
        for s in stmts:
            handlers.get(type(s), other)(self, s)

    def stmt(self, node: ast.stmt) -> None:
        _STMT.get(type(node), Collector._stmt_other)(self, node)

    def _stmt_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for d in node.decorator_list:
            self.expr(d, OTHER)
        q = self._qualname(node.name)
        self.defs.append(("func", q))
        self._enter(q)
        self.body(node.body)
        self._exit()
        self.defs.pop()

    def _stmt_class(self, node: ast.ClassDef) -> None:
        for b in node.bases:
            self.expr(b, OTHER)
        q = self._qualname(node.name)
        if any(type(b) is Call for b in node.bases):
            self.bases[q] = tuple([self.value(b) for b in node.bases])
        attrs = self.classes.setdefault(q, {})
        for stmt in node.body:
            ts = type(stmt)
            if ts is ast.Assign and stmt.value is not None:
                for t in stmt.targets:
                    if type(t) is Name:
                        attrs[t.id] = (self.value(stmt.value), stmt.lineno)
            elif ts is ast.AnnAssign and stmt.value is not None and type(stmt.target) is Name:
                attrs[stmt.target.id] = (self.value(stmt.value), stmt.lineno)
        self.defs.append(("class", q))
        self.body(node.body)
        self.defs.pop()

    def _stmt_assign(self, node: ast.Assign) -> None:
        value = node.value
        self.expr(value, ASSIGN)
        end = node.end_lineno or node.lineno
        for t in node.targets:
            self._target(t, value, end)

    def _stmt_ann_assign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.expr(node.value, ASSIGN)
            self._target(node.target, node.value, node.end_lineno or node.lineno)

    def _stmt_aug_assign(self, node: ast.AugAssign) -> None:
        self.expr(node.value, OTHER)
        self.expr(node.target, OTHER)

    def _stmt_for(self, node: ast.For | ast.AsyncFor) -> None:
        it = node.iter
        self.expr(it, ITER)
        fn = self.fn
        lid = self._new_loop()
        has_exit = _is_range(it) and any(isinstance(n, (ast.Break, ast.Return))
                                         for s in node.body for n in ast.walk(s))
        fn.loops.append((lid, self.value(it), _targets(node.target), node.lineno,
                         node.end_lineno or node.lineno, False, has_exit, it.lineno))
        outer = fn.open_loops
        fn.open_loops = self._shared_loops(outer + (lid,))
        self._target_uses(node.target)
        self.body(node.body)
        fn.open_loops = outer
        self.body(node.orelse)

    def _stmt_test(self, node: ast.While | ast.If) -> None:
        self.expr(node.test, TEST)
        self.body(node.body)
        self.body(node.orelse)

    def _stmt_with(self, node: ast.With | ast.AsyncWith) -> None:
        is_async = type(node) is ast.AsyncWith
        for item in node.items:
            ce = item.context_expr
            bound = item.optional_vars
            if is_async:
                self.awaited.add(id(ce))
            self.expr(ce, ASSIGN if bound is not None else OTHER)
            if type(bound) is Name:
                self.fn.assigns.append((bound.id, self.value(ce), ce.end_lineno or node.lineno, self.fn.open_loops))
        self.body(node.body)

    def _stmt_return(self, node: ast.Return) -> None:
        if node.value is not None:
            self.expr(node.value, RET)
            self.fn.returns.append((self.value(node.value), node.lineno))

    def _stmt_expr(self, node: ast.Expr) -> None:
        self.expr(node.value, STMT)

    def _stmt_try(self, node: ast.Try) -> None:
        self.body(node.body)
        for h in node.handlers:
            self.body(h.body)
        self.body(node.orelse)
        self.body(node.finalbody)

    def _stmt_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if len(self.stack) > 1:  # a function-level import binds a local name
            line = node.end_lineno or node.lineno
            if type(node) is ast.ImportFrom:
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

    def _stmt_match(self, node: ast.Match) -> None:
        self.expr(node.subject, OTHER)
        for case in node.cases:
            self.body(case.body)

    def _stmt_raise(self, node: ast.Raise) -> None:
        self.expr(node.exc, OTHER)
        self.expr(node.cause, OTHER)

    def _stmt_assert(self, node: ast.Assert) -> None:
        self.expr(node.test, OTHER)
        self.expr(node.msg, OTHER)

    def _stmt_delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            self.expr(t, OTHER)

    def _stmt_nothing(self, node: ast.stmt) -> None:
        pass  # pass, break, continue, global, nonlocal: no expressions

    def _stmt_other(self, node: ast.stmt) -> None:
        """Statements without a handler (newer grammar): every direct child expression and statement."""
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child, OTHER)
            elif isinstance(child, ast.stmt):
                self.stmt(child)

    def _target(self, target: ast.AST, value: ast.AST, line: int) -> None:
        tt = type(target)
        if tt is Name:
            self.fn.assigns.append((target.id, self.value(value), line, self.fn.open_loops))
        elif tt is ast.Tuple or tt is ast.List:
            fn = self.fn
            for elt in target.elts:
                if type(elt) is Name:
                    fn.assigns.append((elt.id, UNKNOWN, line, fn.open_loops))
        elif tt is Attribute:
            # `row.author = x` writes the attribute: only the object it is set on is used (read)
            self.expr(target.value, OTHER)
        elif tt is Subscript:
            self.expr(target.value, OTHER)
            self.expr(target.slice, OTHER)
            key = target.slice
            if type(key) is Constant and isinstance(key.value, str):
                links, root, _ = _walk_chain(target)
                if type(root) is Name and len(links) == 1:  # `name["key"] = ...`
                    self.fn.assigns.append((f"{root.id}[{key.value}]", self.value(value), line, self._loops()))

    def _target_uses(self, target: ast.AST) -> None:
        tt = type(target)
        if tt is not Name and tt is not ast.Tuple and tt is not ast.List:
            self.expr(target, OTHER)

    # ----- expressions --------------------------------------------------------------------------
    def expr(self, node: ast.AST | None, ctx: str) -> None:
        t = type(node)
        if t is Name:
            fn = self.fn
            fn.uses.append((node.id, (), node.lineno, node.col_offset, node.end_lineno or node.lineno,
                            node.end_col_offset or node.col_offset, fn.open_loops, ctx,
                            id(node) in self.awaited, False))
        elif t is Attribute or t is Call or t is Subscript:
            self._chain_use(node, ctx)
        elif t is not Constant:
            _EXPR.get(t, Collector._expr_other)(self, node, ctx)

    def _chain_use(self, node: ast.Attribute | ast.Call | ast.Subscript, ctx: str) -> None:
        """A maximal chain: one use of the whole, then the call arguments and subscripts inside it."""
        links, root, has_call = _walk_chain(node)
        if type(root) is not Name:  # not rooted at a name (`f()(x)`, `"".join(x)`): its parts are used alone
            self._parts(node)
            return
        # `self.value(node)`, reusing the walk above when the value is not memoised yet
        memo = self.memo
        v = memo.get(id(node))
        if v is None:
            v = memo[id(node)] = self._chain_value(node, root, links, 0)
        fn = self.fn
        fn.uses.append((
            v[1], v[2], node.lineno, node.col_offset,
            node.end_lineno or node.lineno, node.end_col_offset or node.col_offset,
            fn.open_loops, ctx, id(node) in self.awaited, has_call,
        ))
        for link in links:
            tl = type(link)
            if tl is Call:
                f = link.func
                tf = type(f)
                fname = f.id if tf is Name else (f.attr if tf is Attribute else "")
                actx = self.arg_ctx.get(fname) or self._new_arg_context(fname)  # the context `arg:<callee>`
                for a in link.args:
                    if type(a) is Starred:
                        a = a.value
                    if type(a) is not Constant:  # `expr` ignores constants: skipping them saves a call
                        self.expr(a, actx)
                for k in link.keywords:
                    if type(k.value) is not Constant:
                        self.expr(k.value, actx)
            elif tl is Subscript:
                self.expr(link.slice, OTHER)

    def _parts(self, node: ast.Attribute | ast.Call | ast.Subscript) -> None:
        """The child expressions of an attribute/call/subscript, each used on its own."""
        t = type(node)
        if t is Attribute:
            self.expr(node.value, OTHER)
        elif t is Call:
            self.expr(node.func, OTHER)
            for a in node.args:
                self.expr(a, OTHER)
            for k in node.keywords:
                self.expr(k.value, OTHER)
        else:
            self.expr(node.value, OTHER)
            self.expr(node.slice, OTHER)

    def _expr_await(self, node: ast.Await, ctx: str) -> None:
        self.awaited.add(id(node.value))
        self.expr(node.value, ctx)

    def _expr_nothing(self, node: ast.AST | None, ctx: str) -> None:
        pass  # None, and lambdas: their own scope, rarely where N+1 hides

    def _expr_named(self, node: ast.NamedExpr, ctx: str) -> None:
        self.expr(node.value, ASSIGN)
        self.fn.assigns.append((node.target.id, self.value(node.value), node.lineno, self.fn.open_loops))

    def _expr_bool_op(self, node: ast.BoolOp, ctx: str) -> None:
        sub = TEST if ctx == TEST else OTHER
        for v in node.values:
            self.expr(v, sub)

    def _expr_unary_op(self, node: ast.UnaryOp, ctx: str) -> None:
        self.expr(node.operand, TEST if ctx == TEST else OTHER)

    def _expr_compare(self, node: ast.Compare, ctx: str) -> None:
        sub = "cmp" if ctx == TEST else OTHER
        self.expr(node.left, sub)
        for c in node.comparators:
            self.expr(c, sub)

    def _expr_if_exp(self, node: ast.IfExp, ctx: str) -> None:
        self.expr(node.test, TEST)
        self.expr(node.body, ctx)
        self.expr(node.orelse, ctx)

    def _expr_elts(self, node: ast.List | ast.Tuple | ast.Set, ctx: str) -> None:
        for e in node.elts:
            self.expr(e, OTHER)

    def _expr_dict(self, node: ast.Dict, ctx: str) -> None:
        for k in node.keys:  # all keys, then all values (the order of the fields)
            if k is not None:
                self.expr(k, OTHER)
        for v in node.values:
            self.expr(v, OTHER)

    def _expr_joined_str(self, node: ast.JoinedStr, ctx: str) -> None:
        for v in node.values:
            self.expr(v, OTHER)

    def _expr_parts(self, node: ast.expr, ctx: str) -> None:
        for field in _PARTS[type(node)]:
            self.expr(getattr(node, field), OTHER)

    def _expr_other(self, node: ast.AST, ctx: str) -> None:
        """Expressions without a handler (newer grammar): every direct child expression."""
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child, OTHER)
            elif isinstance(child, ast.keyword):
                self.expr(child.value, OTHER)

    def _comprehension(self, node, ctx: str) -> None:
        gens = node.generators
        self.expr(gens[0].iter, ITER)
        fn = self.fn
        outer = fn.open_loops
        for i, gen in enumerate(gens):
            if i:
                self.expr(gen.iter, ITER)
            lid = self._new_loop()
            fn.loops.append((lid, self.value(gen.iter), _targets(gen.target), node.lineno,
                             node.end_lineno or node.lineno, True, False, gen.iter.lineno))
            fn.open_loops = self._shared_loops(fn.open_loops + (lid,))
            for cond in gen.ifs:
                self.expr(cond, TEST)
        if type(node) is ast.DictComp:
            self.expr(node.key, OTHER)
            self.expr(node.value, OTHER)
        else:
            self.expr(node.elt, OTHER)
        fn.open_loops = outer

    # ----- values -------------------------------------------------------------------------------
    def value(self, node: ast.AST | None, depth: int = 0) -> tuple:
        if node is None or depth > MAX_DEPTH:
            return UNKNOWN
        t = type(node)
        # Constants and names are not memoised: their values depend on nothing else, equal constants
        # share one value anyway, and the value of a name is asked for about once
        if t is Constant:
            return self._value_constant(node)
        if t is Name:
            return ("ch", node.id, (), node.lineno, node.col_offset)
        key = id(node)
        memo = self.memo.get(key)
        if memo is not None:
            return memo
        v = _VALUE.get(t, _value_unknown)(self, node, depth)
        if depth < MAX_DEPTH - 2:
            self.memo[key] = v
        return v

    def _value_constant(self, node: ast.Constant) -> tuple:
        c = node.value
        tc = type(c)
        if tc is str:
            v = self.strings.get(c)
            if v is None:
                v = self.strings[c] = ("s", c)
            return v
        if tc is int or tc is float or tc is bool or c is None:
            key = (tc, c)  # the type too: 1, 1.0 and True are equal keys
            v = self.scalars.get(key)
            if v is None:
                v = self.scalars[key] = ("k", c)
            return v
        return UNKNOWN

    def _value_await(self, node: ast.Await, depth: int) -> tuple:
        return self.value(node.value, depth)

    def _value_chain(self, node: ast.Attribute | ast.Call | ast.Subscript, depth: int) -> tuple:
        links, root, _ = _walk_chain(node)
        if type(root) is not Name:
            return UNKNOWN
        return self._chain_value(node, root, links, depth)

    def _chain_value(self, node: ast.AST, root: ast.Name, links: list[ast.AST], depth: int) -> tuple:
        """`("ch", root, steps, line, col)` of a chain; `links` are its attributes, calls and subscripts,
        outermost first."""
        attr_steps = self.attr_steps
        if len(links) == 1 and type(links[0]) is Attribute:  # `name.attr`, the commonest chain
            attr = links[0].attr
            steps = attr_steps.get(attr) or self._new_attr_steps(attr)
            return ("ch", root.id, steps, node.lineno, node.col_offset)
        value = self.value
        d = depth + 1
        steps = []
        for link in reversed(links):  # from the root outwards, the order the values were always made in
            tl = type(link)
            if tl is Attribute:
                attr = link.attr
                steps.append((attr_steps.get(attr) or self._new_attr_steps(attr))[0])
            elif tl is Call:
                args = link.args
                kws = link.keywords
                if args or kws:
                    steps.append((
                        "c",
                        tuple([value(a.value if type(a) is Starred else a, d) for a in args]) if args else (),
                        tuple([(k.arg, value(k.value, d)) for k in kws if k.arg]) if kws else (),
                    ))
                else:
                    steps.append(_CALL_NO_ARGS)
            else:
                sl = link.slice
                steps.append(("i", value(sl, d) if type(sl) is Constant else UNKNOWN))
        return ("ch", root.id, tuple(steps), node.lineno, node.col_offset)

    def _value_list(self, node: ast.List | ast.Tuple | ast.Set, depth: int) -> tuple:
        if not node.elts:
            return _EMPTY_LIST
        d = depth + 1
        return ("list", tuple([self.value(e.value if type(e) is Starred else e, d) for e in node.elts]))

    def _value_dict(self, node: ast.Dict, depth: int) -> tuple:
        if not node.keys:
            return _EMPTY_DICT
        d = depth + 1
        value = self.value
        return ("dict", tuple([(value(k, d) if k is not None else UNKNOWN, value(v, d))
                               for k, v in zip(node.keys, node.values)]))

    def _value_comp(self, node: ast.ListComp | ast.GeneratorExp | ast.SetComp, depth: int) -> tuple:
        return ("comp", self.value(node.generators[0].iter, depth + 1))

    def _value_bool_op(self, node: ast.BoolOp, depth: int) -> tuple:
        d = depth + 1
        return ("or", tuple([self.value(v, d) for v in node.values]))

    def _value_if_exp(self, node: ast.IfExp, depth: int) -> tuple:
        return ("or", (self.value(node.body, depth + 1), self.value(node.orelse, depth + 1)))


def _value_unknown(collector: Collector, node: ast.AST, depth: int) -> tuple:
    return UNKNOWN


def _value_fstr(collector: Collector, node: ast.AST, depth: int) -> tuple:
    return ("fstr",)


def _value_binop(collector: Collector, node: ast.AST, depth: int) -> tuple:
    return ("binop",)


def _table(entries: dict[Any, Callable]) -> dict[type, Callable]:
    """A dispatch table by exact node class; a tuple key gives several classes one handler."""
    out: dict[type, Callable] = {}
    for key, handler in entries.items():
        for cls in key if isinstance(key, tuple) else (key,):
            if cls is not None:
                out[cls] = handler
    return out


#: the child expressions (field names, in field order) of the expressions `Collector._expr_parts`
#: handles, each used in the context OTHER
_PARTS: dict[type, tuple[str, ...]] = {
    ast.BinOp: ("left", "right"),
    Starred: ("value",),
    ast.Yield: ("value",),
    ast.YieldFrom: ("value",),
    ast.FormattedValue: ("value", "format_spec"),
    ast.Slice: ("lower", "upper", "step"),
}
C = Collector
_STMT = _table({
    (ast.FunctionDef, ast.AsyncFunctionDef): C._stmt_def,
    ast.ClassDef: C._stmt_class,
    ast.Assign: C._stmt_assign,
    ast.AnnAssign: C._stmt_ann_assign,
    ast.AugAssign: C._stmt_aug_assign,
    (ast.For, ast.AsyncFor): C._stmt_for,
    (ast.While, ast.If): C._stmt_test,
    (ast.With, ast.AsyncWith): C._stmt_with,
    ast.Return: C._stmt_return,
    ast.Expr: C._stmt_expr,
    (ast.Try, getattr(ast, "TryStar", None)): C._stmt_try,
    (ast.Import, ast.ImportFrom): C._stmt_import,
    ast.Match: C._stmt_match,
    ast.Raise: C._stmt_raise,
    ast.Assert: C._stmt_assert,
    ast.Delete: C._stmt_delete,
    (ast.Pass, ast.Break, ast.Continue, ast.Global, ast.Nonlocal): C._stmt_nothing,
})
#: expression handlers other than Name, Constant, Attribute, Call and Subscript (`Collector.expr`)
_EXPR = _table({
    Await: C._expr_await,
    (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp): C._comprehension,
    (type(None), ast.Lambda): C._expr_nothing,
    ast.NamedExpr: C._expr_named,
    ast.BoolOp: C._expr_bool_op,
    ast.UnaryOp: C._expr_unary_op,
    ast.Compare: C._expr_compare,
    ast.IfExp: C._expr_if_exp,
    (ast.List, ast.Tuple, ast.Set): C._expr_elts,
    ast.Dict: C._expr_dict,
    ast.JoinedStr: C._expr_joined_str,
    tuple(_PARTS): C._expr_parts,
})
#: value handlers other than Constant and Name (`Collector.value`)
_VALUE = _table({
    Await: C._value_await,
    (Attribute, Call, Subscript): C._value_chain,
    (ast.List, ast.Tuple, ast.Set): C._value_list,
    ast.Dict: C._value_dict,
    (ast.ListComp, ast.GeneratorExp, ast.SetComp): C._value_comp,
    ast.BoolOp: C._value_bool_op,
    ast.IfExp: C._value_if_exp,
    ast.JoinedStr: _value_fstr,
    ast.BinOp: _value_binop,
})
del C


def _targets(target: ast.AST) -> tuple:
    """A loop target: ("n", name) or ("t", (name-or-None, ...)) for tuple unpacking."""
    tt = type(target)
    if tt is Name:
        return ("n", target.id)
    if tt is ast.Tuple or tt is ast.List:
        return ("t", tuple([e.id if type(e) is Name else None for e in target.elts]))
    return UNKNOWN


def collect_python(tree: ast.Module) -> dict[str, Any]:
    c = Collector()
    functions = c.run(tree)
    return {"functions": functions, "classes": {q: a for q, a in c.classes.items() if a}, "bases": c.bases}


def _is_range(node: ast.AST) -> bool:
    return type(node) is Call and type(node.func) is Name and node.func.id == "range"
