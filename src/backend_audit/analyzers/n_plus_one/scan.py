"""One pass over every use the collector recorded, for the analysis steps that each look at all of
them: per-row queries in loops and calls of helpers that loop over a parameter (`loops`), render
and serializer calls (`views`), eager loading outside loops (`unused`).

Reading ~100k use tuples costs about the same in every pass (the Python-level tuple access, not the
tests), so the project is read once. Each step gets its candidates in the order its own loop over
the facts (files, then functions, then uses) would have met them: the evaluator memoises values,
so the order of evaluation is part of the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .querysets import Evaluator, FnCtx

MODULE = "<module>"
#: calls that render a template (or get one to render)
RENDER_NAMES = frozenset({"render", "render_to_response", "TemplateResponse", "SimpleTemplateResponse",
                          "render_to_string", "render_template", "get_template", "select_template"})
EAGER = ("select_related", "prefetch_related")

#: (path, module, qualname, the function's facts, every function's facts of the file): one per
#: function with candidates, shared by its entries (steps compare it by identity to group them)
FunctionKey = tuple[str, str, str, dict, dict]


def skip_path(path: str) -> bool:
    """Tests and migrations loop over fixtures and historical models on purpose."""
    parts = path.split("/")
    name = parts[-1]
    return "migrations" in parts[:-1] or "tests" in parts[:-1] or name.startswith("test_") \
        or name.endswith("_test.py") or name == "conftest.py"


def eager_paths(steps: tuple) -> list[tuple[str, str]]:
    """(method, lookup) of each literal `select_related`/`prefetch_related` lookup in a chain;
    nothing when one of them has a non-literal argument or none."""
    out = []
    for i, s in enumerate(steps[:-1]):
        if s[0] == "a" and s[1] in EAGER and steps[i + 1][0] == "c":
            args = steps[i + 1][1]
            if not args or any(a[0] != "s" for a in args):
                return []
            out.extend((s[1], a[1]) for a in args)
    return out


@dataclass
class ProjectUses:
    #: looping helper name -> (path, qualified name, function, its parameters it loops over)
    helpers: dict[str, list[tuple[str, str, FnCtx, list[str]]]] = field(default_factory=dict)
    #: uses inside a loop of a function with loops, that can run a query per iteration
    loop_uses: list[tuple[FunctionKey, tuple]] = field(default_factory=list)
    #: calls (`helper(...)`, `x.helper(...)`) of a name in `helpers`: (function, use, name)
    helper_calls: list[tuple[FunctionKey, tuple, str]] = field(default_factory=list)
    #: uses with a call whose names (root, attributes) include a render call name, a name containing
    #: "Serializer" or `get_serializer`: (function, use, render, serializer, get_serializer)
    view_calls: list[tuple[FunctionKey, tuple, bool, bool, bool]] = field(default_factory=list)
    #: uses outside loops in a (non-module) function with loops that load eagerly: (function, use, paths)
    eager_uses: list[tuple[FunctionKey, tuple, list[tuple[str, str]]]] = field(default_factory=list)


def project_uses(ev: Evaluator) -> ProjectUses:
    """The candidates of every step (memoised on the evaluator)."""
    got = getattr(ev, "_project_uses", None)
    if got is None:
        got = ev._project_uses = _scan(ev)  # type: ignore[attr-defined]
    return got


def _files(ev: Evaluator) -> list[tuple[str, str, dict]]:
    """(path, module, facts) of every analysed file, tests and migrations aside."""
    module_of = ev.index.module_of
    out = []
    for path, facts in ev.facts.items():
        if skip_path(path):
            continue
        module = module_of.get(path)
        if module is not None:
            out.append((path, module, facts))
    return out


def _helpers(ev: Evaluator, files: list[tuple[str, str, dict]]) -> dict[str, list[tuple[str, str, FnCtx, list[str]]]]:
    """Functions that loop over one of their parameters, by name."""
    helpers: dict[str, list[tuple[str, str, FnCtx, list[str]]]] = {}
    functions = ev.index.functions
    for path, module, facts in files:
        for qual, f in facts["functions"].items():
            if qual == MODULE or not f["loops"]:
                continue
            fq = f"{module}.{qual}"
            info = functions.get(fq)  # (`ev.fn(fq)` is None exactly when this is)
            if info is None or not info.summary.params:
                continue
            iter_roots = {lp[1][1] for lp in f["loops"] if lp[1][0] == "ch"}
            looped = [p.name for p in info.summary.params if p.name in iter_roots]
            if looped:
                helpers.setdefault(info.summary.name, []).append((path, fq, ev.fn(fq), looped))  # type: ignore[arg-type]
    return helpers


def _scan(ev: Evaluator) -> ProjectUses:
    files = _files(ev)
    out = ProjectUses(helpers=_helpers(ev, files))
    helpers = out.helpers
    add_loop, add_helper = out.loop_uses.append, out.helper_calls.append
    add_view, add_eager = out.view_calls.append, out.eager_uses.append
    render_names = RENDER_NAMES
    for path, module, facts in files:
        functions = facts["functions"]
        for qual, f in functions.items():
            key: FunctionKey | None = None
            has_loops = bool(f["loops"])
            eager = has_loops and qual != MODULE
            for u in f["uses"]:
                in_loop = u[6]
                if in_loop and has_loops and (u[1] or u[7] == "iter" or u[7] == "test" or u[7].startswith("arg:")):
                    key = key or (path, module, qual, f, functions)
                    add_loop((key, u))
                if not u[9]:  # no call in the chain (`has_call`): nothing below applies
                    continue
                steps = u[1]
                root = u[0]
                if helpers and steps[-1][0] == "c":
                    if len(steps) == 1:  # `helper(...)`
                        name = root
                    else:  # `x.helper(...)`
                        prev = steps[-2]
                        name = prev[1] if prev[0] == "a" else None
                    if name and name in helpers:
                        key = key or (path, module, qual, f, functions)
                        add_helper((key, u, name))
                # the names in the chain (root and attributes): a render call? a serializer? eager loading?
                render = root in render_names
                serializer = "Serializer" in root
                get_serializer = root == "get_serializer"
                eager_attr = False
                for st in steps:
                    if st[0] == "a":
                        a = st[1]
                        if a in render_names:
                            render = True
                        elif "Serializer" in a:
                            serializer = True
                        elif a == "get_serializer":
                            get_serializer = True
                        elif a in EAGER:
                            eager_attr = True
                if render or serializer or get_serializer:
                    key = key or (path, module, qual, f, functions)
                    add_view((key, u, render, serializer, get_serializer))
                # (eager loading is `.select_related(...)`, a call: only in uses with a call)
                if eager_attr and eager and not in_loop:
                    paths = eager_paths(steps)
                    if paths:
                        key = key or (path, module, qual, f, functions)
                        add_eager((key, u, paths))
    return out
