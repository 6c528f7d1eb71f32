"""The project index: modules, imports, classes, functions and the call graph, across files.

Built once per scan from the per-file summaries (never by re-parsing). Analyzers ask it to turn a
module-relative ref (see `backend_audit.parsing.summary`) into a project-wide canonical ref:

    index.resolve("shop.views", "@Cart().client.get()")   ->  "httpx.Client().get()"
    index.resolve("shop.views", ".models.Book.objects")   ->  "shop.models.Book.objects"
    index.resolve("shop.views", "@helper()")              ->  "shop.services.helper()"  (re-export)

A canonical ref starts either with the qualified name of a project definition (module, class,
function) or with an external dotted name (`requests.get`, `django.db.models.Model`), and keeps
the `()` / `[]` markers of calls and subscripts. Refs to unknown locals keep their `$` head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from backend_audit.parsing.summary import (
    MODULE_SCOPE, CallSite, ClassSummary, FunctionSummary, ModuleSummary, Value,
)

MAX_RESOLVE_DEPTH = 24


def split_top_level(text: str, sep: str, opening: str, closing: str) -> list[str]:
    """Split `text` at `sep`, except inside `opening`...`closing` brackets (nested)."""
    if opening not in text and closing not in text:  # the common case; a hot path of resolution
        return text.split(sep)
    out: list[str] = []
    depth = 0
    cur = ""
    for ch in text:
        if ch == opening:
            depth += 1
        elif ch == closing:
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def split_ref(ref: str) -> list[str]:
    """`a.b().c[]` -> ["a", "b()", "c[]"]; `<locals>` and `<lambda:1:2>` stay whole."""
    return split_top_level(ref, ".", "<", ">")


_MARKERS = ("()", "[]")


def strip_markers(segment: str) -> tuple[str, str]:
    """"get()[]" -> ("get", "()[]")."""
    if segment[-1:] not in (")", "]"):  # the common case: no marker (a hot path of resolution)
        return segment, ""
    i = len(segment)
    while i >= 2 and segment[i - 2: i] in ("()", "[]"):
        i -= 2
    return segment[:i], segment[i:]


def _join(head: str, rest: list[str]) -> str:
    return ".".join([head, *rest]) if rest else head


def _text(key: str, kind: str) -> str:
    return f"{key}()" if kind == "instance" else key


@dataclass(slots=True)  # read on every hot path: slot access, no instance __dict__
class FunctionInfo:
    qualified: str
    module: str
    path: str
    summary: FunctionSummary

    @property
    def is_async(self) -> bool:
        return self.summary.is_async


@dataclass(slots=True)
class ClassInfo:
    qualified: str
    module: str
    path: str
    summary: ClassSummary
    bases: list[str] = field(default_factory=list)  # canonical refs


@dataclass(slots=True)
class ResolvedCall:
    site: CallSite
    target: str | None  # canonical ref of the callee (project qualified name or external)
    function: FunctionInfo | None  # the project function called, when the target is one


class ProjectIndex:
    def __init__(self, summaries: dict[str, ModuleSummary]):
        """`summaries` maps each Python file's path (relative, `/` separators) to its summary."""
        self.summaries = summaries
        self.module_of: dict[str, str] = {}
        self.path_of: dict[str, str] = {}
        self.packages: set[str] = set()
        self._resolved: dict[str, dict[str, str]] = {}  # module -> ref -> canonical ref (per index: a
        # class-level cache would keep it alive)
        self._by_absolute: dict[str, str] = {}  # absolute ref -> _canonical(ref, 0)
        self._assign_module_names()
        #: every module name in `path_of` and each of its dotted prefixes: a ref none of whose
        #: prefixes is in here cannot start with a module name (lets `_canonical` stop early)
        self._module_prefixes: set[str] = set()
        for name in self.path_of:
            self._module_prefixes.add(name)
            dot = name.find(".")
            while dot >= 0:
                self._module_prefixes.add(name[:dot])
                dot = name.find(".", dot + 1)
        self.functions: dict[str, FunctionInfo] = {}
        self.classes: dict[str, ClassInfo] = {}
        for path, summary in summaries.items():
            module = self.module_of[path]
            for qual, fn in summary.functions.items():
                q = module if qual == MODULE_SCOPE else f"{module}.{qual}"
                self.functions[q] = FunctionInfo(q, module, path, fn)
            for qual, cls in summary.classes.items():
                q = f"{module}.{qual}"
                self.classes[q] = ClassInfo(q, module, path, cls)
        self._subclasses: dict[str, list[str]] | None = None
        self._calls: dict[str, list[ResolvedCall]] = {}
        self._mro: dict[str, list[str]] = {}
        self._ancestors: dict[str, set[str]] = {}
        self._callers: dict[str, list[tuple[str, ResolvedCall]]] | None = None
        for info in self.classes.values():
            info.bases = [self.resolve(info.module, b) for b in info.summary.bases if b]
        # what was resolved while the bases were still being filled in may be incomplete
        self._mro.clear()
        self._ancestors.clear()
        self._resolved.clear()
        self._by_absolute.clear()

    # ----- modules ---------------------------------------------------------------------------
    def _assign_module_names(self) -> None:
        paths = set(self.summaries)
        init_dirs = {p.rsplit("/", 1)[0] if "/" in p else "" for p in paths if p.endswith("__init__.py")}
        for path in sorted(paths):  # where two files claim one module name, the same one always wins
            parts = path[:-3].split("/") if path.endswith(".py") else path.split("/")
            dirs = parts[:-1]
            # climb while the directory is a package
            start = len(dirs)
            while start > 0 and "/".join(dirs[:start]) in init_dirs:
                start -= 1
            mod_parts = parts[start:]
            is_init = mod_parts[-1] == "__init__"
            if is_init:
                mod_parts = mod_parts[:-1]
            module = ".".join(mod_parts) or parts[-2] if mod_parts or len(parts) > 1 else parts[-1]
            if not module:
                module = "__init__"
            self.module_of[path] = module
            self.path_of.setdefault(module, path)
            if is_init:
                self.packages.add(module)
            # also reachable by its full path (namespace packages, `src.` layouts)
            full = ".".join(p for p in parts if p != "__init__")
            self.path_of.setdefault(full, path)
            if full.startswith("src."):
                self.path_of.setdefault(full[4:], path)

    def module_summary(self, module: str) -> ModuleSummary | None:
        path = self.path_of.get(module)
        return self.summaries.get(path) if path else None

    def module_name(self, path: str) -> str:
        return self.module_of[path]

    def canonical_module(self, module: str) -> str:
        path = self.path_of.get(module)
        return self.module_of[path] if path else module

    def _absolute(self, module: str, ref: str) -> str:
        """Make a module-relative ref absolute (`@x`, `.x`)."""
        if ref.startswith("@"):
            return f"{module}.{ref[1:]}"
        if ref.startswith("."):
            level = len(ref) - len(ref.lstrip("."))
            rest = ref[level:]
            package = module if module in self.packages else module.rpartition(".")[0]
            for _ in range(level - 1):
                package = package.rpartition(".")[0]
            return f"{package}.{rest}" if package and rest else (package or rest)
        return ref

    # ----- resolution ------------------------------------------------------------------------
    def resolve(self, module: str, ref: str | None) -> str | None:
        """The canonical ref of `ref` as written in `module` (see module docstring)."""
        if ref is None:
            return None
        if ref[:1] == "$":
            return ref
        # memo per module, then per ref: no (module, ref) tuple to build and hash on every call
        memo = self._resolved.get(module)
        if memo is None:
            memo = self._resolved[module] = {}
        out = memo.get(ref)
        if out is None:
            head = ref[:1]
            if head != "@" and head != "." and "<" not in ref and ">" not in ref \
                    and ref.partition(".")[0] not in self._module_prefixes:
                out = ref  # already absolute, and its first segment starts no module name: external
            else:
                # many modules import the same absolute ref: canonicalise each one once
                absolute = self._absolute(module, ref)
                out = self._by_absolute.get(absolute)
                if out is None:
                    # `@name` in a module: the ref starts with that module's name (skip finding it)
                    known = module if head == "@" and module in self.path_of and "<" not in module \
                        and ">" not in module and module[-2:] not in _MARKERS else ""
                    out = self._by_absolute[absolute] = self._canonical(absolute, 0, known)
            memo[ref] = out
        return out

    def _canonical(self, ref: str, depth: int, module: str = "") -> str:
        """`module`: a project module name (in `path_of`, without markers or brackets) that `ref`
        starts with, followed by a dot, when the caller knows it."""
        if depth > MAX_RESOLVE_DEPTH:
            return ref
        segments = split_ref(ref)
        # the longest prefix that names a project module (`".".join(segments[:i + 1])` is `ref[:end]`)
        path_of = self.path_of
        prefixes = self._module_prefixes
        if module:  # its segments come first, and it is the longest module prefix so far
            start = mod_end = module.count(".") + 1
            mod_len = end = len(module)
        else:
            start = mod_end = mod_len = 0
            end = -1
        for i in range(start, len(segments)):
            seg = segments[i]
            end += len(seg) + 1
            prefix = ref[:end]
            if prefix not in prefixes:
                break  # no longer prefix can name a module either
            if seg[-2:] not in _MARKERS and prefix in path_of:
                mod_end, mod_len = i + 1, end
        if mod_end == 0:
            return ref  # external
        key, kind = self.canonical_module(ref[:mod_len]), "module"
        member = self._member
        for i in range(mod_end, len(segments)):
            seg = segments[i]
            name, markers = strip_markers(seg) if seg[-1:] in (")", "]") else (seg, "")
            step = member(kind, key, name, depth)
            if step is None:
                return _join(_text(key, kind) + "." + seg, segments[i + 1:])
            key, kind = step
            if kind == "ref":  # an alias of something else: substitute it and start over
                return self._canonical(_join(key + markers, segments[i + 1:]), depth + 1)
            if not markers:
                continue
            for j in range(0, len(markers), 2):
                step = self._apply_marker(kind, key, markers[j:j + 2], depth)
                if step is None:
                    return _join(_text(key, kind) + markers[j:], segments[i + 1:])
                key, kind = step
                if kind == "ref":
                    return self._canonical(_join(key + markers[j + 2:], segments[i + 1:]), depth + 1)
        return _text(key, kind)

    def _member(self, kind: str, current: str, name: str, depth: int) -> tuple[str, str] | None:
        """Look `name` up in a module, a class or an instance. Returns (ref, kind)."""
        if kind == "module":
            q = f"{current}.{name}"
            if q in self.classes:
                return q, "class"
            if q in self.functions:
                return q, "function"
            summary = self.module_summary(current)
            if summary is not None:
                if name in summary.imports:
                    return self._absolute(current, summary.imports[name]), "ref"
                if name in summary.assigns:
                    v = summary.assigns[name].value
                    if v[0] == "ref" and v[1]:
                        return self._absolute(current, v[1]), "ref"
                    if v[0] == "call" and v[1]:
                        return self._absolute(current, v[1]) + "()", "ref"
                if q in self.path_of:
                    return self.canonical_module(q), "module"
                # `from x import *` chains may loop (a -> b -> c -> a): bounded like alias chains
                for star in summary.star_imports if depth < MAX_RESOLVE_DEPTH else ():
                    base = self._absolute(current, star if not star.endswith(".") else star.rstrip("."))
                    base = self.canonical_module(base)
                    if base in self.path_of and base != current:
                        found = self._member("module", base, name, depth + 1)
                        if found is not None:
                            return found
            if q in self.path_of:
                return self.canonical_module(q), "module"
            return None
        if kind in ("class", "instance"):
            for cls in self.mro(current):
                q = f"{cls}.{name}"
                if q in self.functions:
                    return q, "function"
                if q in self.classes:
                    return q, "class"
                info = self.classes[cls]
                attr = info.summary.attrs.get(name)
                if attr is None and kind == "instance":
                    attr = info.summary.instance_attrs.get(name)
                if attr is not None:
                    v = attr.value
                    if v[0] == "ref" and v[1] and not v[1].startswith("$"):
                        return self._absolute(info.module, v[1]), "ref"
                    if v[0] == "call" and v[1] and not v[1].startswith("$"):
                        return self._absolute(info.module, v[1]) + "()", "ref"
                    if attr.annotation and not attr.annotation.startswith("$"):
                        return self._absolute(info.module, attr.annotation) + "()", "ref"
                    return None
            return None
        return None

    def _apply_marker(self, kind: str, current: str, marker: str, depth: int) -> tuple[str, str] | None:
        if marker == "()":
            if kind == "class":
                return current, "instance"
            if kind == "function":
                ret = self.return_ref(current)
                if ret is not None:
                    return ret, "ref"
            return None
        return None  # subscripts of project objects: unknown

    def return_ref(self, function: str) -> str | None:
        """What a project function returns, when every `return` agrees on one ref."""
        info = self.functions.get(function)
        if info is None or info.summary.is_async or info.summary.is_generator:
            return None
        refs = set()
        for v in info.summary.returns:
            if v[0] == "ref" and v[1] and not v[1].startswith("$"):
                refs.add(v[1])
            elif v[0] == "call" and v[1] and not v[1].startswith("$"):
                refs.add(v[1] + "()")
            else:
                return None
        if len(refs) != 1:
            return None
        return self._absolute(info.module, refs.pop())

    # ----- classes ---------------------------------------------------------------------------
    def mro(self, cls: str) -> list[str]:
        """Project classes in method resolution order (depth-first, no duplicates; memoised)."""
        cached = self._mro.get(cls)
        if cached is None:
            cached = self._mro[cls] = self._compute_mro(cls)
        return cached

    def _compute_mro(self, cls: str) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()  # = set(out)
        classes = self.classes
        stack = [cls]
        while stack:
            c = stack.pop(0)
            if c in seen or c not in classes:
                continue
            out.append(c)
            seen.add(c)
            stack[0:0] = [b for b in classes[c].bases if b in classes]
        return out

    def ancestors(self, cls: str) -> set[str]:
        """Every base, project or external, transitively (canonical refs; memoised, do not mutate)."""
        cached = self._ancestors.get(cls)
        if cached is None:
            cached = self._ancestors[cls] = self._compute_ancestors(cls)
        return cached

    def _compute_ancestors(self, cls: str) -> set[str]:
        seen: set[str] = set()
        stack = [cls]
        while stack:
            c = stack.pop()
            info = self.classes.get(c)
            if info is None:
                continue
            for b in info.bases:
                if b not in seen:
                    seen.add(b)
                    stack.append(b)
        return seen

    def is_subclass(self, cls: str, bases: str | tuple[str, ...] | frozenset[str] | set[str]) -> bool:
        wanted = {bases} if isinstance(bases, str) else set(bases)
        return cls in wanted or bool(self.ancestors(cls) & wanted)

    def subclasses(self, bases: str | tuple[str, ...] | frozenset[str] | set[str]) -> list[str]:
        """Project classes deriving (transitively) from any of `bases`."""
        wanted = {bases} if isinstance(bases, str) else set(bases)
        return [c for c in self.classes if self.ancestors(c) & wanted]

    def class_of_instance(self, ref: str | None) -> str | None:
        """`shop.models.Book()` -> `shop.models.Book` when that is a project class."""
        if ref and ref.endswith("()") and ref[:-2] in self.classes:
            return ref[:-2]
        return None

    # ----- functions and calls ----------------------------------------------------------------
    def function_at(self, path: str, qualname: str) -> FunctionInfo | None:
        module = self.module_of.get(path)
        if module is None:
            return None
        return self.functions.get(module if qualname == MODULE_SCOPE else f"{module}.{qualname}")

    def iter_functions(self) -> Iterator[FunctionInfo]:
        return iter(self.functions.values())

    def calls(self, function: str) -> list[ResolvedCall]:
        """The call sites of a function with their callees resolved (memoised)."""
        cached = self._calls.get(function)
        if cached is not None:
            return cached
        functions = self.functions
        info = functions.get(function)
        out: list[ResolvedCall] = []
        if info is not None:
            resolve, module = self.resolve, info.module
            for site in info.summary.calls:
                ref = site.ref
                target = resolve(module, ref) if ref else None
                fn = functions.get(target) if target else None
                if fn is None and target and target in self.classes:
                    # calling a class runs its __init__
                    init = self._member("class", target, "__init__", 0)
                    if init and init[1] == "function":
                        fn = self.functions.get(init[0])
                out.append(ResolvedCall(site, target, fn))
        self._calls[function] = out
        return out

    def callers(self, function: str) -> list[tuple[str, ResolvedCall]]:
        """(caller qualified name, call) pairs for every project call of `function`."""
        if self._callers is None:
            self._callers = {}
            for q in self.functions:
                for call in self.calls(q):
                    if call.function is not None:
                        self._callers.setdefault(call.function.qualified, []).append((q, call))
        return self._callers.get(function, [])

    def resolve_value(self, module: str, value: Value) -> str | None:
        """The canonical ref of a ("ref", r) or ("call", r, ...) descriptor (calls get `()`)."""
        if value[0] == "ref" and value[1]:
            return self.resolve(module, value[1])
        if value[0] == "call" and value[1]:
            return self.resolve(module, value[1] + "()")
        return None
