"""Unvalidated input (BA3xx): request data reaching a dangerous sink with no validation on the way.

Interprocedural and cross-module: `collect()` builds per-function symbolic taint summaries
(collect.py) in the worker, `analyze()` links them over the project index to a fixpoint
(solve.py). The framework models (sources, sinks, sanitizers, guards) are data in
`rules/taint_*.toml`; rule docs in `rules/unvalidated_input.toml`.

`Finding.context` keys (for the advisor's remediation texts): `source` (the client data, e.g.
"request.args['q']"), `sink` (the call, e.g. "cursor.execute"), `sink_kind` (sql, shell, code,
path, redirect, ssrf, deserialize, template, mass_assignment, limit, regex), `validation` (what
is missing), `function` (where the sink is), `hops` (functions the data went through).
"""

from __future__ import annotations

import logging
from typing import Any

from backend_audit.analyzers.base import AnalysisContext, Analyzer, FileUnit
from backend_audit.findings import Finding, Related

__all__ = ["UnvalidatedInputAnalyzer"]

log = logging.getLogger(__name__)


class UnvalidatedInputAnalyzer(Analyzer):
    name = "unvalidated_input"
    category = "unvalidated-input"

    def collect(self, unit: FileUnit) -> Any:
        if unit.kind != "python" or unit.tree is None or unit.module is None:
            return None
        if "def " not in unit.text or _is_test_module(unit.module.imports.values()):
            return None
        from backend_audit.analyzers.unvalidated_input.collect import collect_facts
        from backend_audit.analyzers.unvalidated_input.models import load_models

        models = load_models(unit.catalog)  # a malformed catalog is the user's error: let it surface
        try:
            facts = collect_facts(unit.tree, unit.lines, unit.module, models, unit.text)
        except (RecursionError, MemoryError):
            return None  # pathologically deep code: no taint facts for this file
        except Exception:  # an analyzer bug must never stop a scan
            log.debug("unvalidated_input: collect failed", exc_info=True)
            return None
        return facts or None

    def analyze(self, ctx: AnalysisContext) -> list[Finding]:
        from backend_audit.analyzers.unvalidated_input.models import load_models
        from backend_audit.analyzers.unvalidated_input.solve import Solver

        facts = ctx.facts_of(self.name)
        if not facts:
            return []
        models = load_models(ctx.catalog)
        solver = Solver(ctx.index, facts, models)
        try:
            flows = solver.run()
        except Exception:  # an analyzer bug must never stop a scan: report what was proven so far
            log.warning("unvalidated_input: analysis stopped early", exc_info=True)
            flows = solver.partial()
        out: list[Finding] = []
        for flow in flows:
            kind = models.kinds.get(flow.kind)
            if kind is None or kind.rule not in ctx.catalog.rules:
                continue
            path, line, col, text = flow.sink
            hops = [s for s in flow.steps[1:] if s[3].startswith("passed to")]
            via = ""
            if hops:
                via = " (via " + ", ".join(_callee(h[3]) for h in hops[:3]) + ")"
            shown = text if text.endswith("]") else f"{text}()"
            message = f"{flow.source} reaches {kind.what} {shown}{via} with {kind.validation}"
            steps = [Related(p, ln, msg, column=c + 1) for p, ln, c, msg in flow.steps]
            others = [Related(p, ln, "also reaches this sink: " + msg.removeprefix("source: "), column=c + 1)
                      for p, ln, c, msg in flow.others]
            sink_step = Related(path, line, f"sink: {shown}", column=col + 1)
            out.append(ctx.finding(
                kind.rule, path, line, col, flow.sink_end[0], flow.sink_end[1], message,
                related=steps + others, flow=steps + [sink_step], symbol=_symbol(ctx, flow.function),
                context={"source": flow.source, "sink": text, "sink_kind": flow.kind,
                         "validation": kind.validation, "function": _symbol(ctx, flow.function),
                         "hops": [_callee(h[3]) for h in hops]},
            ))
        return out


_TEST_IMPORTS = ("pytest", "unittest", "django.test", "rest_framework.test", "hypothesis", "flask.testing",
                 "starlette.testclient", "fastapi.testclient", "aiohttp.test_utils", "pytest_django")


def _is_test_module(imports) -> bool:
    """Test code sends requests, it does not serve them: no taint facts (and a faster scan)."""
    return any(v == t or v.startswith(t + ".") for v in imports for t in _TEST_IMPORTS)


def _callee(step: str) -> str:
    """"passed to helper() as q" -> "helper()"."""
    return step.removeprefix("passed to ").split(" as ", 1)[0]


def _symbol(ctx: AnalysisContext, q: str) -> str:
    info = ctx.index.functions.get(q)
    return info.summary.qualname if info is not None else q
