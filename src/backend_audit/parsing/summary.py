"""The per-file summary: what the project index and the analyzers know of one Python file.

Built by one pass over the standard-library `ast` of the file. It is a pure function of the file's
text: nothing in it depends on the file's path or module name, so the cache can key it on content.

Names are recorded as *refs*, dotted strings in which the head name has been resolved against
the file's own bindings:

* `requests.Session().get()`   an imported (absolute) name, `()` marks a call result / instance
* `.models.Book.objects`       a relative import, leading dots as in Python's syntax
* `@helper`, `@Cls.method`     a name bound at module level in this file (qualname after `@`);
                               nested functions and lambdas are `@outer.<locals>.inner`,
                               `@outer.<lambda:LINE:COL>`
* `@Cls()`                     `self` inside a method of `Cls` (an instance of the class)
* `$name.attr`                 a parameter or local variable whose value is not known
* `builtins.open`              a builtin that the file does not shadow
* `x[]`                        a subscript of x

`ProjectIndex.resolve()` turns the module-relative forms into project-wide qualified names.

Expressions that analyzers need in more detail are kept as *value descriptors* (see `describe`):
small tuples such as ("const", 3), ("ref", "django.db.models.CASCADE"),
("call", "django.db.models.ForeignKey", [args], {kwargs}), ("list", [...]), ("dict", [(k, v)...]),
("fstr", [...]), ("binop", "+", left, right), ("?",).
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field
from typing import Any

from backend_audit.pickling import positional_pickle

BUILTIN_NAMES = frozenset(dir(builtins))
MAX_DESCRIBE_DEPTH = 6

Value = tuple  # a value descriptor, see module docstring


@positional_pickle
@dataclass
class Param:
    name: str
    kind: str  # "posonly", "arg", "vararg", "kwonly", "kwarg"
    annotation: str | None  # the annotation as a ref (or source text for complex ones)
    default: Value | None


@positional_pickle
@dataclass
class CallSite:
    ref: str | None
    line: int
    col: int  # 0-based, characters
    end_line: int
    end_col: int
    awaited: bool
    loop_depth: int  # enclosing for/while/comprehension loops inside the same function
    args: list[Value]
    kwargs: dict[str, Value]
    star_kwargs: bool = False  # called with **something


@positional_pickle
@dataclass
class Decorator:
    ref: str | None
    args: list[Value]
    kwargs: dict[str, Value]
    is_call: bool


@positional_pickle
@dataclass
class FunctionSummary:
    qualname: str
    name: str
    line: int
    end_line: int
    col: int
    is_async: bool
    decorators: list[Decorator]
    params: list[Param]
    class_qualname: str | None  # set for methods (the directly enclosing class)
    parent: str | None  # the enclosing function's qualname, for nested defs and lambdas
    calls: list[CallSite] = field(default_factory=list)
    returns: list[Value] = field(default_factory=list)
    is_lambda: bool = False
    is_generator: bool = False
    #: local name -> ref of the value it was (last) bound to, when known
    bindings: dict[str, str] = field(default_factory=dict)


@positional_pickle
@dataclass
class ClassAttr:
    value: Value
    line: int
    annotation: str | None = None


@positional_pickle
@dataclass
class ClassSummary:
    qualname: str
    name: str
    line: int
    end_line: int
    bases: list[str | None]
    keywords: dict[str, Value]
    decorators: list[Decorator]
    #: class-body assignments (fields, Meta options, managers, `queryset = ...`)
    attrs: dict[str, ClassAttr] = field(default_factory=dict)
    #: `self.x = value` in any method: x -> value
    instance_attrs: dict[str, ClassAttr] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)  # function qualnames
    nested_classes: list[str] = field(default_factory=list)  # class qualnames (e.g. Meta)
    parent: str | None = None


@positional_pickle
@dataclass
class ModuleSummary:
    """Everything about one Python file that the index and the generic analyses need."""

    imports: dict[str, str] = field(default_factory=dict)  # local name -> ref
    star_imports: list[str] = field(default_factory=list)
    #: module-level `name = value` (aliases, clients, settings)
    assigns: dict[str, ClassAttr] = field(default_factory=dict)
    functions: dict[str, FunctionSummary] = field(default_factory=dict)
    classes: dict[str, ClassSummary] = field(default_factory=dict)
    #: `__all__` when it is a literal list
    all_names: list[str] | None = None
    #: comments of the form `# backend-audit: ignore[...]`: line -> rule ids (empty = all rules)
    suppressions: dict[int, list[str]] = field(default_factory=dict)
    line_count: int = 0


MODULE_SCOPE = "<module>"


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class _Scope:
    """Name bindings of one function (or the module)."""

    __slots__ = ("func", "locals", "params", "class_ref", "class_qualname")

    def __init__(self, func: FunctionSummary | None, class_qualname: str | None = None):
        self.func = func
        self.locals: dict[str, str] = {}
        self.params: set[str] = set()
        self.class_qualname = class_qualname


_DISPATCH: dict[type, dict[type, Any]] = {}

# Node classes as module globals: the hot paths below compare `type(node) is _Name` (one global
# lookup) instead of `isinstance(node, ast.Name)` (a global, an attribute and a call). `ast.parse`
# only builds these exact classes; anything else (a subclass) falls through to the isinstance code.
_Name, _Attribute, _Call, _Constant = ast.Name, ast.Attribute, ast.Call, ast.Constant
_Subscript, _BinOp, _Tuple, _List, _Set = ast.Subscript, ast.BinOp, ast.Tuple, ast.List, ast.Set
#: nodes the visitor records nothing for: the hottest visitors skip them without calling `visit`
_LEAVES = frozenset({ast.Name, ast.Constant})
#: constant value types `describe` keeps as-is (bool is an int, but is tested first by type here)
_PLAIN_CONSTANTS = frozenset({str, int, float, bool, type(None)})
#: expression types `describe` never describes: checked before the isinstance chain would fail
_OPAQUE_EXPRS = frozenset({ast.Starred, ast.GeneratorExp, ast.BoolOp, ast.IfExp, ast.ListComp, ast.Compare,
                           ast.DictComp, ast.SetComp, ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Slice})


class Summarizer(ast.NodeVisitor):
    """One pass over a module's tree that fills a `ModuleSummary`."""

    def __init__(self, tree: ast.Module, line_offsets: "LineIndex"):
        self.summary = ModuleSummary()
        self.lines = line_offsets
        self.module_bound: set[str] = set()
        self.scopes: list[_Scope] = []
        self.class_stack: list[ClassSummary] = []
        self.func_stack: list[FunctionSummary] = []
        self.loop_depth: list[int] = [0]
        self.awaited: set[int] = set()
        #: ("class"|"func", qualname) of the enclosing definitions, innermost last
        self.def_stack: list[tuple[str, str]] = []
        self._collect_module_bindings(tree)
        module_func = FunctionSummary(
            qualname=MODULE_SCOPE, name=MODULE_SCOPE, line=1, end_line=max(1, line_offsets.count),
            col=0, is_async=False, decorators=[], params=[], class_qualname=None, parent=None,
        )
        self.summary.functions[MODULE_SCOPE] = module_func
        self.func_stack.append(module_func)
        self.scopes.append(_Scope(module_func))
        self.visit(tree)

    # ----- traversal -----------------------------------------------------------------------
    def visit(self, node: ast.AST) -> None:
        """`NodeVisitor.visit` with the method lookup cached per (visitor class, node type)."""
        try:
            method = _DISPATCH[type(self)][type(node)]
        except KeyError:
            method = _dispatch_entry(type(self), type(node))
        # leaves (names, constants: a third of all nodes) cost one lookup here, not a call
        if method is not _VISIT_NOTHING:
            method(self, node)

    def _visit_nothing(self, node: ast.AST) -> None:
        pass

    visit_Name = visit_Constant = visit_Pass = _visit_nothing
    visit_Break = visit_Continue = visit_Nonlocal = _visit_nothing
    # expression contexts: `generic_visit` of these field-less nodes does nothing either
    visit_Load = visit_Store = visit_Del = _visit_nothing

    def visit_Attribute(self, node: ast.Attribute) -> None:
        # `a.b.c`: only the head of the chain can hold calls; attributes record nothing
        value = node.value
        while type(value) is _Attribute:
            value = value.value
        if type(value) is not _Name:
            self.visit(value)

    # The visitors below replace `generic_visit` (field by field, in `_fields` order) for the
    # node types that are common in real code.
    def visit_Module(self, node: ast.Module) -> None:
        visit = self.visit
        for stmt in node.body:
            visit(stmt)

    def _visit_try(self, node: ast.Try) -> None:
        visit = self.visit
        for stmt in node.body:
            visit(stmt)
        for handler in node.handlers:
            visit(handler)
        for stmt in node.orelse:
            visit(stmt)
        for stmt in node.finalbody:
            visit(stmt)

    visit_Try = visit_TryStar = _visit_try  # `try ... except*` has the same fields

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        visit = self.visit
        if node.type is not None:
            visit(node.type)
        for stmt in node.body:
            visit(stmt)

    def visit_Raise(self, node: ast.Raise) -> None:
        if node.exc is not None:
            self.visit(node.exc)
        if node.cause is not None:
            self.visit(node.cause)

    def visit_Dict(self, node: ast.Dict) -> None:
        visit = self.visit
        for k in node.keys:
            if k is not None:  # `**mapping` has no key
                visit(k)
        for v in node.values:
            visit(v)

    def visit_Starred(self, node: ast.Starred) -> None:
        self.visit(node.value)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit(node.test)
        self.visit(node.body)
        self.visit(node.orelse)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        self.visit(node.value)
        if node.format_spec is not None:
            self.visit(node.format_spec)

    def visit_Slice(self, node: ast.Slice) -> None:
        visit = self.visit
        if node.lower is not None:
            visit(node.lower)
        if node.upper is not None:
            visit(node.upper)
        if node.step is not None:
            visit(node.step)

    def visit_Import(self, node: ast.Import) -> None:
        """Module-level imports are read up front; a function's own imports bind its locals."""
        if self.func_stack[-1].qualname == MODULE_SCOPE:
            return
        for alias in node.names:
            if alias.asname:
                self.scopes[-1].locals[alias.asname] = alias.name
            else:
                head = alias.name.split(".")[0]
                self.scopes[-1].locals[head] = head

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if self.func_stack[-1].qualname == MODULE_SCOPE:
            return
        base = "." * (node.level or 0) + (node.module or "")
        for alias in node.names:
            if alias.name != "*":
                sep = "" if base.endswith(".") or not base else "."
                self.scopes[-1].locals[alias.asname or alias.name] = f"{base}{sep}{alias.name}"

    def visit_Expr(self, node: ast.Expr) -> None:
        self.visit(node.value)

    def visit_If(self, node: ast.If) -> None:
        visit = self.visit
        visit(node.test)
        for stmt in node.body:
            visit(stmt)
        for stmt in node.orelse:
            visit(stmt)

    def visit_Compare(self, node: ast.Compare) -> None:
        visit = self.visit
        visit(node.left)
        for c in node.comparators:
            visit(c)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.visit(node.value)
        self.visit(node.slice)

    def _visit_elts(self, node: ast.Tuple | ast.List | ast.Set) -> None:
        visit = self.visit
        for e in node.elts:
            visit(e)

    visit_Tuple = visit_List = visit_Set = _visit_elts

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self.visit(node.left)
        self.visit(node.right)

    def _visit_values(self, node: ast.BoolOp | ast.JoinedStr) -> None:
        visit = self.visit
        for v in node.values:
            visit(v)

    visit_BoolOp = visit_JoinedStr = _visit_values

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        self.visit(node.operand)

    # ----- names ---------------------------------------------------------------------------
    def _collect_module_bindings(self, tree: ast.Module) -> None:
        """Module-level names first, so a function can refer to a helper defined below it."""
        for node in _toplevel_statements(tree.body):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.module_bound.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if type(t) is _Name:  # the common case, without walking the target
                        self.module_bound.add(t.id)
                        continue
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            self.module_bound.add(n.id)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.summary.imports[alias.asname] = alias.name
                    else:
                        head = alias.name.split(".")[0]
                        self.summary.imports[head] = head
            elif isinstance(node, ast.ImportFrom):
                base = "." * (node.level or 0) + (node.module or "")
                for alias in node.names:
                    if alias.name == "*":
                        self.summary.star_imports.append(base)
                        continue
                    sep = "" if base.endswith(".") or not base else "."
                    self.summary.imports[alias.asname or alias.name] = f"{base}{sep}{alias.name}"

    def name_ref(self, name: str) -> str:
        scopes = self.scopes
        i = len(scopes)
        while i:  # innermost scope first, up to the module's
            i -= 1
            scope = scopes[i]
            func = scope.func
            if func is not None and func.qualname == MODULE_SCOPE:
                break
            local = scope.locals
            if name in local:
                return local[name]
            if name in scope.params:
                return "$" + name
        imports = self.summary.imports
        if name in imports:
            return imports[name]
        if name in self.module_bound:
            return "@" + name
        if name in BUILTIN_NAMES:
            return "builtins." + name
        return "$" + name

    def ref(self, node: ast.AST) -> str | None:
        """The ref of an expression (names, attributes, calls, subscripts), else None."""
        if isinstance(node, ast.Name):
            return self.name_ref(node.id)
        if isinstance(node, ast.Attribute):
            base = self.ref(node.value)
            return None if base is None else f"{base}.{node.attr}"
        if isinstance(node, ast.Call):
            base = self.ref(node.func)
            return None if base is None else f"{base}()"
        if isinstance(node, ast.Subscript):
            base = self.ref(node.value)
            return None if base is None else f"{base}[]"
        if isinstance(node, ast.Await):
            return self.ref(node.value)
        if isinstance(node, ast.Lambda):
            return f"@{self._lambda_qualname(node)}"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            # `Path(base) / name` is still a Path (`__truediv__` returns the left operand's type)
            return self.ref(node.left)
        return None

    def describe(self, node: ast.AST | None, depth: int = 0) -> Value:
        """A compact, picklable description of an expression (see module docstring)."""
        if node is None:
            return ("const", None)
        if depth > MAX_DESCRIBE_DEPTH:
            return ("?",)
        # fast paths by exact class, most frequent first; `_describe_generic` has the definition
        t = type(node)
        if t is _Name:
            r = self.name_ref(node.id)
            return ("ref", r) if r else ("?",)
        if t is _Constant:
            v = node.value
            if type(v) in _PLAIN_CONSTANTS:
                return ("const", v)
        elif t is _Attribute or t is _Subscript:
            r = self.ref(node)
            return ("ref", r) if r else ("?",)
        elif t is _Call:
            describe = self.describe
            depth += 1
            args = []
            for a in node.args:
                args.append(describe(a, depth))
            kwargs = {}
            for k in node.keywords:
                if k.arg:
                    kwargs[k.arg] = describe(k.value, depth)
            return ("call", self.ref(node.func), args, kwargs)
        elif t in _OPAQUE_EXPRS:
            return ("?",)
        elif t is _Tuple or t is _List or t is _Set:
            describe = self.describe
            depth += 1
            items = []
            for e in node.elts:
                items.append(describe(e, depth))
            return ("list", items)
        elif t is _BinOp:
            return ("binop", type(node.op).__name__, self.describe(node.left, depth + 1),
                    self.describe(node.right, depth + 1))
        return self._describe_generic(node, depth)

    def _describe_generic(self, node: ast.AST, depth: int) -> Value:
        """`describe` by isinstance tests, for a node that is not None and not too deep."""
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, (str, int, float, bool)) or v is None:
                return ("const", v)
            return ("?",)
        if isinstance(node, ast.Call):
            return (
                "call", self.ref(node.func),
                [self.describe(a, depth + 1) for a in node.args],
                {k.arg: self.describe(k.value, depth + 1) for k in node.keywords if k.arg},
            )
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Lambda)):
            r = self.ref(node)
            return ("ref", r) if r else ("?",)
        if isinstance(node, ast.Await):
            return self.describe(node.value, depth)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return ("list", [self.describe(e, depth + 1) for e in node.elts])
        if isinstance(node, ast.Dict):
            return ("dict", [(self.describe(k, depth + 1) if k else ("?",), self.describe(v, depth + 1))
                             for k, v in zip(node.keys, node.values)])
        if isinstance(node, ast.JoinedStr):
            return ("fstr", [self.describe(v.value if isinstance(v, ast.FormattedValue) else v, depth + 1)
                             for v in node.values])
        if isinstance(node, ast.BinOp):
            return ("binop", type(node.op).__name__, self.describe(node.left, depth + 1),
                    self.describe(node.right, depth + 1))
        if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
            if isinstance(node.op, ast.USub) and isinstance(node.operand.value, (int, float)):
                return ("const", -node.operand.value)
        return ("?",)

    def _annotation(self, node: ast.AST | None) -> str | None:
        """A plain type annotation as a ref; a generic one (`Mapped[list["Book"]]`) as source text."""
        if node is None:
            return None
        r = None if isinstance(node, ast.Subscript) else self.ref(node)
        if r is not None:
            return r
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        try:
            return ast.unparse(node)
        except Exception:  # pragma: no cover - unparse of odd nodes
            return None

    # ----- definitions -----------------------------------------------------------------------
    def _qualname(self, name: str) -> str:
        if not self.def_stack:
            return name
        kind, outer = self.def_stack[-1]
        return f"{outer}.{name}" if kind == "class" else f"{outer}.<locals>.{name}"

    def _lambda_qualname(self, node: ast.Lambda) -> str:
        func = self.func_stack[-1]
        tag = f"<lambda:{node.lineno}:{node.col_offset}>"
        return tag if func.qualname == MODULE_SCOPE else f"{func.qualname}.{tag}"

    def _decorators(self, nodes: list[ast.expr]) -> list[Decorator]:
        out = []
        for d in nodes:
            if isinstance(d, ast.Call):
                out.append(Decorator(self.ref(d.func), [self.describe(a) for a in d.args],
                                     {k.arg: self.describe(k.value) for k in d.keywords if k.arg}, True))
            else:
                out.append(Decorator(self.ref(d), [], {}, False))
        return out

    def _params(self, args: ast.arguments) -> list[Param]:
        out: list[Param] = []
        append = out.append
        annotation = self._annotation
        describe = self.describe
        posonly = args.posonlyargs
        positional = posonly + args.args if posonly else args.args
        defaults = args.defaults
        first_default = len(positional) - len(defaults)  # defaults belong to the last positionals
        kind = "posonly"
        for i, a in enumerate(positional):
            if i == len(posonly):
                kind = "arg"
            ann = a.annotation
            if ann is not None:
                ann = annotation(ann)
            if i < first_default:
                append(Param(a.arg, kind, ann, None))
            else:
                d = defaults[i - first_default]
                append(Param(a.arg, kind, ann, describe(d) if d else None))
        vararg = args.vararg
        if vararg:
            append(Param(vararg.arg, "vararg", annotation(vararg.annotation), None))
        for a, d in zip(args.kwonlyargs, args.kw_defaults):
            append(Param(a.arg, "kwonly", annotation(a.annotation), describe(d) if d else None))
        kwarg = args.kwarg
        if kwarg:
            append(Param(kwarg.arg, "kwarg", annotation(kwarg.annotation), None))
        return out

    def _enter_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> FunctionSummary:
        is_lambda = isinstance(node, ast.Lambda)
        def_stack = self.def_stack
        if is_lambda:
            qualname = self._lambda_qualname(node)
            name = qualname.rsplit(".", 1)[-1]
        else:
            name = node.name
            qualname = self._qualname(name)
        in_class = not is_lambda and bool(def_stack) and def_stack[-1][0] == "class"
        class_qualname = def_stack[-1][1] if in_class else None
        parent = self.func_stack[-1].qualname
        params = self._params(node.args)
        func = FunctionSummary(  # positional: a dataclass __init__ with keywords costs twice as much
            qualname, name, node.lineno, node.end_lineno or node.lineno, node.col_offset,
            isinstance(node, ast.AsyncFunctionDef),
            self._decorators(node.decorator_list) if not is_lambda and node.decorator_list else [],
            params, class_qualname, None if parent == MODULE_SCOPE else parent, [], [], is_lambda,
        )
        summary = self.summary
        summary.functions[qualname] = func
        if in_class:
            summary.classes[class_qualname].methods.append(qualname)
        scope = _Scope(func, class_qualname)
        scope_params = scope.params
        scope_locals = scope.locals
        for p in params:
            scope_params.add(p.name)
            ann = p.annotation
            if ann and ann[0] != "$" and ann != "str" and ann != "int" and _looks_like_type_ref(ann):
                scope_locals[p.name] = f"{ann}()"
        if in_class and params:
            first = params[0].name
            deco_refs = [d.ref for d in func.decorators] if func.decorators else ()
            if "builtins.staticmethod" in deco_refs:
                pass
            elif "builtins.classmethod" in deco_refs:
                scope_locals[first] = f"@{class_qualname}"
            elif params[0].kind in ("posonly", "arg"):
                scope_locals[first] = f"@{class_qualname}()"
        if not is_lambda:
            # the name is bound in the enclosing scope (nested defs become local bindings)
            if parent != MODULE_SCOPE and not in_class:
                self.scopes[-1].locals[name] = f"@{qualname}"
        self.func_stack.append(func)
        self.scopes.append(scope)
        self.loop_depth.append(0)
        def_stack.append(("func", qualname))
        return func

    def _exit_function(self) -> None:
        scope = self.scopes.pop()
        self.func_stack.pop()
        self.def_stack.pop()
        self.loop_depth.pop()
        if scope.func is not None:
            bindings = {}
            for k, v in scope.locals.items():
                if not v.startswith("$"):
                    bindings[k] = v
            scope.func.bindings = bindings

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        visit = self.visit
        for d in node.decorator_list:
            visit(d)
        args = node.args
        for d in args.defaults:
            visit(d)
        for d in args.kw_defaults:
            if d is not None:
                visit(d)
        self._enter_function(node)
        for stmt in node.body:
            visit(stmt)
        self._exit_function()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._enter_function(node)
        self.summary.functions[self.func_stack[-1].qualname].returns.append(self.describe(node.body))
        self.visit(node.body)
        self._exit_function()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for d in node.decorator_list:
            self.visit(d)
        qualname = self._qualname(node.name)
        parent_cls = self.def_stack[-1][1] if self.def_stack and self.def_stack[-1][0] == "class" else None
        cls = ClassSummary(  # positional: a dataclass __init__ with keywords costs twice as much
            qualname, node.name, node.lineno, node.end_lineno or node.lineno, [self.ref(b) for b in node.bases],
            {k.arg: self.describe(k.value) for k in node.keywords if k.arg}, self._decorators(node.decorator_list),
            {}, {}, [], [], parent_cls,
        )
        if parent_cls:
            self.class_stack[-1].nested_classes.append(qualname)
        elif self.func_stack[-1].qualname != MODULE_SCOPE:
            self.scopes[-1].locals[node.name] = f"@{qualname}"
        self.summary.classes[qualname] = cls
        self.class_stack.append(cls)
        self.def_stack.append(("class", qualname))
        visit = self.visit
        for stmt in node.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                is_assign = isinstance(stmt, ast.Assign)
                value = stmt.value
                for t in stmt.targets if is_assign else [stmt.target]:
                    if not isinstance(t, ast.Name):
                        continue
                    if value is not None:
                        ann = None if is_assign else self._annotation(stmt.annotation)
                        cls.attrs[t.id] = ClassAttr(self.describe(value), stmt.lineno, ann)
                    elif not is_assign:
                        cls.attrs[t.id] = ClassAttr(("?",), stmt.lineno, self._annotation(stmt.annotation))
                if value is not None:
                    visit(value)
            else:
                visit(stmt)
        self.class_stack.pop()
        self.def_stack.pop()

    # ----- statements ------------------------------------------------------------------------
    def _bind(self, target: ast.AST, value: ast.AST | None) -> None:
        scope = self.scopes[-1]
        func = self.func_stack[-1]
        if type(target) is _Name or isinstance(target, ast.Name):
            if func.qualname == MODULE_SCOPE:
                if value is not None:
                    self.summary.assigns[target.id] = ClassAttr(self.describe(value), target.lineno)
                    if target.id == "__all__" and isinstance(value, (ast.List, ast.Tuple)):
                        self.summary.all_names = [e.value for e in value.elts
                                                  if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                return
            r = self.ref(value) if value is not None else None
            scope.locals[target.id] = r if r is not None else f"${target.id}"
        elif isinstance(target, ast.Attribute) and value is not None:
            # self.x = value inside a method: an instance attribute of the class
            if (isinstance(target.value, ast.Name) and scope.class_qualname
                    and scope.locals.get(target.value.id) == f"@{scope.class_qualname}()"):
                cls = self.summary.classes.get(scope.class_qualname)
                if cls is not None:
                    desc = self.describe(value)
                    old = cls.instance_attrs.get(target.attr)
                    if old is None or old.value == ("const", None) or old.value[0] == "?":
                        cls.instance_attrs[target.attr] = ClassAttr(desc, target.lineno)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._bind(elt.value if isinstance(elt, ast.Starred) else elt, None)
        elif isinstance(target, ast.Starred):
            self._bind(target.value, None)

    def visit_Assign(self, node: ast.Assign) -> None:
        value = node.value
        if type(value) not in _LEAVES:
            self.visit(value)
        for t in node.targets:
            if type(t) is not _Name:  # a name target has nothing to visit
                self._visit_target(t)
            self._bind(t, value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self._visit_target(node.target)
        if node.value is not None:
            self._bind(node.target, node.value)
        if isinstance(node.target, ast.Name) and self.func_stack[-1].qualname != MODULE_SCOPE:
            # `x: T = value` / `x: T`: the declared type wins over a value that is not a constructor
            # call (`repo: Repo = request.app["repo"]`); `x: Base = Derived()` keeps the precise value
            known = self.scopes[-1].locals.get(node.target.id, "$")
            ann = self._annotation(node.annotation)
            if (known.startswith("$") or not known.endswith("()")) and ann and _looks_like_type_ref(ann):
                self.scopes[-1].locals[node.target.id] = f"{ann}()"

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self._visit_target(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target, node.value)

    def _visit_target(self, target: ast.AST) -> None:
        """Calls inside assignment targets (`d[f()] = x`) still count."""
        t = type(target)
        if t is _Name:
            return
        # the common targets field by field (their `ctx` child records nothing)
        if t is _Attribute:
            self.visit(target.value)
        elif t is _Subscript:
            self.visit(target.value)
            self.visit(target.slice)
        elif t is _Tuple or t is _List:
            for elt in target.elts:
                self.visit(elt)
        elif not isinstance(target, ast.Name):
            for child in ast.iter_child_nodes(target):
                self.visit(child)

    def _loop(self, node: ast.For | ast.AsyncFor | ast.While) -> None:
        if isinstance(node, ast.While):
            self.loop_depth[-1] += 1
            self.visit(node.test)
        else:
            self.visit(node.iter)
            it = self.ref(node.iter)
            if isinstance(node.target, ast.Name):
                self.scopes[-1].locals[node.target.id] = f"{it}[]" if it else f"${node.target.id}"
            else:
                self._bind(node.target, None)
            self.loop_depth[-1] += 1
        for stmt in node.body:
            self.visit(stmt)
        self.loop_depth[-1] -= 1
        for stmt in node.orelse:
            self.visit(stmt)

    visit_For = visit_AsyncFor = visit_While = _loop

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        gens = node.generators
        self.visit(gens[0].iter)  # evaluated once, outside the loop
        self.loop_depth[-1] += 1
        saved = dict(self.scopes[-1].locals)
        for i, gen in enumerate(gens):
            if i:
                self.visit(gen.iter)
            it = self.ref(gen.iter)
            if isinstance(gen.target, ast.Name):
                self.scopes[-1].locals[gen.target.id] = f"{it}[]" if it else f"${gen.target.id}"
            else:
                self._bind(gen.target, None)
            for cond in gen.ifs:
                self.visit(cond)
        if isinstance(node, ast.DictComp):
            self.visit(node.key)
            self.visit(node.value)
        else:
            self.visit(node.elt)
        self.loop_depth[-1] -= 1
        self.scopes[-1].locals = saved

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                r = self.ref(item.context_expr)
                if isinstance(item.optional_vars, ast.Name):
                    # `with open(p) as f`: f is what __enter__ returns; for most clients, the object
                    self.scopes[-1].locals[item.optional_vars.id] = r if r else f"${item.optional_vars.id}"
                else:
                    self._bind(item.optional_vars, None)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        if value is not None:
            self.visit(value)
            self.func_stack[-1].returns.append(self.describe(value))

    def visit_Yield(self, node: ast.Yield | ast.YieldFrom) -> None:
        self.func_stack[-1].is_generator = True
        if node.value is not None:
            self.visit(node.value)

    visit_YieldFrom = visit_Yield

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self.scopes[-1].locals.pop(name, None)

    # ----- expressions -----------------------------------------------------------------------
    def visit_Await(self, node: ast.Await) -> None:
        self.awaited.add(id(node.value))
        self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        visit = self.visit
        func = node.func
        if type(func) is _Attribute:  # a method call: as visit_Attribute, without two calls
            head = func.value
            while type(head) is _Attribute:
                head = head.value
            if type(head) is not _Name:
                visit(head)
        elif type(func) is not _Name:
            visit(func)
        args = node.args
        keywords = node.keywords
        for a in args:
            if type(a) not in _LEAVES:
                visit(a)
        for k in keywords:
            if type(k.value) not in _LEAVES:
                visit(k.value)
        lines = self.lines
        line = node.lineno
        col = node.col_offset
        end_line = node.end_lineno or line
        end_col = node.end_col_offset or col
        if not lines.all_ascii:  # byte columns are character columns in an ASCII file
            col = lines.char_col(line, col)
            end_col = lines.char_col(end_line, end_col)
        describe = self.describe
        arg_values: list[Value] = []
        for a in args:
            arg_values.append(describe(a))
        kwargs: dict[str, Value] = {}
        star_kwargs = False
        for k in keywords:
            if k.arg:
                kwargs[k.arg] = describe(k.value)
            elif k.arg is None:
                star_kwargs = True
        self.func_stack[-1].calls.append(CallSite(  # positional: see visit_ClassDef
            self.ref(func), line, col, end_line, end_col, id(node) in self.awaited, self.loop_depth[-1],
            arg_values, kwargs, star_kwargs,
        ))


def _dispatch_entry(cls: type, node_type: type) -> Any:
    """Fill `_DISPATCH` for (visitor class, node type): the `visit_<Type>` method, else generic_visit."""
    method = getattr(cls, "visit_" + node_type.__name__, cls.generic_visit)
    _DISPATCH.setdefault(cls, {})[node_type] = method
    return method


_VISIT_NOTHING = Summarizer._visit_nothing


def _looks_like_type_ref(annotation: str) -> bool:
    """A plain class reference (`httpx.Client`, `.services.Svc`, `@Repo`), not a builtin or a generic."""
    head = annotation.lstrip(".").split(".")[0]
    return bool(head) and (head[0] in "@$" or head[0].isalpha() or head[0] == "_") \
        and not head.startswith("$") and "[" not in annotation and not annotation.startswith("builtins.") \
        and " " not in annotation and "|" not in annotation


def _toplevel_statements(body: list[ast.stmt]):
    """Module-level statements, looking inside if/try blocks (conditional imports)."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _toplevel_statements(node.body)
            yield from _toplevel_statements(node.orelse)
        elif isinstance(node, ast.Try):
            yield from _toplevel_statements(node.body)
            for h in node.handlers:
                yield from _toplevel_statements(h.body)
            yield from _toplevel_statements(node.orelse)
            yield from _toplevel_statements(node.finalbody)


#: ASCII characters other than "\n" that `str.splitlines` ends a line at
_OTHER_ASCII_LINE_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e")


class LineIndex:
    """Convert the `ast` UTF-8 byte columns to character columns, cheaply for ASCII lines.

    Lines are `text.splitlines()`. Most files only need the line count and, being ASCII, no column
    conversion: for an ASCII text whose only line break is "\n" the count is read off the text and
    the split is made on the first `line()` call."""

    __slots__ = ("_text", "_split", "count", "all_ascii")

    def __init__(self, text: str):
        #: every line is ASCII: `char_col` is the identity
        self.all_ascii = text.isascii()
        self._text = text
        self._split: list[str] | None = None
        if self.all_ascii and not any(c in text for c in _OTHER_ASCII_LINE_BREAKS):
            self.count = text.count("\n") + (1 if text and text[-1] != "\n" else 0)
        else:
            self._split = text.splitlines()
            self.count = len(self._split)

    @property
    def _lines(self) -> list[str]:
        if self._split is None:
            self._split = self._text.splitlines()
        return self._split

    def char_col(self, line: int, byte_col: int) -> int:
        if self.all_ascii:
            return byte_col
        if 0 < line <= self.count:
            s = self._split[line - 1]  # a text that is not all ASCII is split up front
            if not s.isascii():
                return len(s.encode("utf-8")[:byte_col].decode("utf-8", "replace"))
        return byte_col

    def line(self, line: int) -> str:
        return self._lines[line - 1] if 0 < line <= self.count else ""


def summarize_module(tree: ast.Module, text: str, lines: LineIndex | None = None) -> ModuleSummary:
    lines = lines or LineIndex(text)
    summary = Summarizer(tree, lines).summary
    summary.line_count = lines.count
    summary.suppressions = find_suppressions(text)
    return summary


def find_suppressions(text: str) -> dict[int, list[str]]:
    """`# backend-audit: ignore` / `# backend-audit: ignore[BA101, BA102]` comments by line."""
    out: dict[int, list[str]] = {}
    if "backend-audit:" not in text:
        return out
    import re

    pattern = re.compile(r"#\s*backend-audit:\s*ignore(?:\[([A-Za-z0-9_,\s]*)\])?")
    for i, line in enumerate(text.splitlines(), 1):
        if "backend-audit:" in line:
            m = pattern.search(line)
            if m:
                out[i] = [r.strip().upper() for r in (m.group(1) or "").split(",") if r.strip()]
    return out


def iter_values(value: Value):
    """Every descriptor nested in `value`, itself included (for analyzers' searches)."""
    stack = [value]
    while stack:
        v = stack.pop()
        yield v
        kind = v[0]
        if kind == "call":
            stack.extend(v[2])
            stack.extend(v[3].values())
        elif kind in ("list", "fstr"):
            stack.extend(v[1])
        elif kind == "dict":
            for k, val in v[1]:
                stack.append(k)
                stack.append(val)
        elif kind == "binop":
            stack.append(v[2])
            stack.append(v[3])


def const_value(value: Value | None, default: Any = None) -> Any:
    """The Python value of a ("const", x) descriptor (lists of constants too), else `default`."""
    if value is None:
        return default
    if value[0] == "const":
        return value[1]
    if value[0] == "list":
        items = [const_value(v, _MISSING) for v in value[1]]
        return default if any(i is _MISSING for i in items) else items
    return default


_MISSING = object()
