"""BA114: eager loading that no code reached from the queryset uses (Bullet's "unused eager loading").

Precision first: only a queryset whose every use is visible is judged. It must be iterated
directly, or bound to a local name whose only uses are loops in the same function (not returned,
stored, passed to a template, a serializer or any call, not captured by a nested function), and
each loop variable may only be used through attribute access (a bare use such as `out.append(row)`
or `str(row)` could reach any relation). A path counts as used when its first segment is read.
"""

from __future__ import annotations

from backend_audit.findings import Finding, Related

from .querysets import Evaluator
from .scan import project_uses
from .values import QS


def analyze_unused(ev: Evaluator, ctx, findings: list[Finding], seen: set) -> None:
    # uses outside loops, with literal eager loading, in the (non-module) functions with loops
    for key, u, paths in project_uses(ev).eager_uses:
        path, module, qual, f, functions = key
        fq = f"{module}.{qual}"
        fn = ev.fn(fq)
        if fn is None:
            continue
        try:
            v = ev.chain(fn, u[0], u[1], u[2], u[6], 0, None, None)
        except RecursionError:  # pragma: no cover
            continue
        if v.kind != QS or v.uncertain or not v.model:
            continue
        loops = _consuming_loops(qual, functions, f, u)
        if not loops:
            continue
        used = _attrs_read(f, loops)
        if used is None:
            continue
        model = ev.orm.models.get(v.model)
        if model is None or any(n not in model.fields and n not in model.reverse and not n.endswith("_id")
                                and n not in ("pk", "id") for n in used):
            continue  # a property or method may read any relation
        for method, p in paths:
            head = p.split("__", 1)[0]
            if head in used:
                continue
            found = (path, u[2], "BA114")
            if found in seen:
                continue
            seen.add(found)
            findings.append(ctx.finding(
                "BA114", path, u[2], u[3], u[4], u[5],
                f"Unused eager loading: {method}(\"{p}\") on {model.name} but no code that uses this "
                f"queryset reads `{head}`; remove it (a wasted {'join' if method == 'select_related' else 'query'})",
                related=[Related(path, lp[3], "the only loop over this queryset") for lp in loops[:2]],
                symbol=qual,
                context={"model": model.name, "relation": head, "path": p, "fix": f"remove \"{p}\" from {method}()",
                         "call": method, "queryset_path": path, "queryset_line": u[2]}))


def _consuming_loops(qual: str, functions: dict, f: dict, u: tuple) -> list[tuple] | None:
    if u[7] == "iter":
        return [lp for lp in f["loops"] if lp[1][0] == "ch" and lp[1][3] == u[2] and lp[1][4] == u[3]
                and lp[1][1] == u[0]] or None
    if u[7] != "assign":
        return None
    names = [a for a in f["assigns"] if a[1][0] == "ch" and a[1][3] == u[2] and a[1][4] == u[3]]
    if len(names) != 1:
        return None
    var, _, line, _ = names[0]
    if sum(1 for a in f["assigns"] if a[0] == var) != 1:
        return None
    for other_q, other in functions.items():  # captured by a nested function
        if other_q.startswith(qual + ".<locals>.") and any(x[0] == var for x in other["uses"]):
            return None
    loops = []
    for x in f["uses"]:
        if x[0] != var or x[2] < line:
            continue
        if x[1] or x[7] != "iter":
            return None
        lp = next((lp for lp in f["loops"] if lp[1] == ("ch", var, (), x[2], x[3])), None)
        if lp is None:
            return None
        loops.append(lp)
    return loops or None


def _attrs_read(f: dict, loops: list[tuple]) -> set[str] | None:
    """First attribute names read on the loop variables; None when a variable escapes."""
    used: set[str] = set()
    for lp in loops:
        if lp[2][0] != "n":
            return None
        var = lp[2][1]
        for x in f["uses"]:
            if x[0] != var or lp[0] not in x[6]:
                continue
            if not x[1] or x[1][0][0] != "a":
                return None
            if len(x[1]) > 1 and x[1][1][0] == "c":
                return None  # a method call on the row may read anything
            used.add(x[1][0][1])
    return used
